"""The resolver as an aiohttp app: its routes and lifecycle, wired once.

Owns: the wiring and the resolver process's tuning. Starting the app builds the
service from the first good config (StartupError without one) and opens the DNS port;
the service (`resolver.service`) and the HTTP handlers (`resolver.api`) know nothing
of each other's construction.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from resolver.api import add_routes
from resolver.doh import HttpAnswers
from resolver.h2server import H2Stats
from resolver.health import HealthSource
from resolver.https import DohListener, H2Collector
from resolver.service import ResolverService
from urn.clock import SystemClock
from urn.http import add_table_route
from urn.metrics import ResolverMetrics
from urn.role import LISTENER, Running, start_role, wire
from urn.runtime import Tuning
from urn.source import ConfigLoader
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Mapping

    from resolver.settings import ResolverSettings
    from urn.clock import Clock
    from urn.push import Transport
    from urn.source import Loaded

__all__ = ["GIL_SWITCH_INTERVAL", "HEALTH_SOURCE", "SERVICE", "TUNING", "make_app"]

# Each config pass compiles every record in a worker thread. Whenever it holds the GIL,
# a query waits for the switch interval (5 ms by default) before the loop gets it back:
# at 0.5 ms a pass costs queries well under a millisecond. With one thread running the
# interval costs nothing.
GIL_SWITCH_INTERVAL = 0.0005
# freeze_after_start: everything allocated by the time the resolver has started
# (modules, compiled records) lives as long as the process; out of the collector's
# sight, the young-generation collections that the per-query tuples trigger stay short.
# The fd limit: every DNS/TCP and HTTP connection holds a descriptor.
TUNING = Tuning(switch_interval=GIL_SWITCH_INTERVAL, raise_fd_limit=True, freeze_after_start=True)

SERVICE = web.AppKey("resolver_service", Running[ResolverService])
# What answers read their health from, when not the held tables: a variant's own source.
HealthSourceFactory = Callable[[ResolverService], HealthSource]
HEALTH_SOURCE: web.AppKey[HealthSourceFactory] = web.AppKey("health_source")


def make_app(
    settings: ResolverSettings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
    rng: random.Random | None = None,
) -> web.Application:
    """The resolver's aiohttp app; starting it loads the config and opens the DNS port.

    Served by `urn.role.serve_role`, its port speaks HTTP/2 as well (`LISTENER`, see
    `resolver.https`).

    `transport` is accepted for the shape every role's make_app has: the resolver
    pushes nothing. A variant's health (bench/edge) goes under `HEALTH_SOURCE` before
    the app starts.
    """
    clock = clock or SystemClock()
    metrics = ResolverMetrics(registry if registry is not None else CollectorRegistry())
    loader = ConfigLoader(settings.config, clock, metrics, environ, needs={TableKind.AGGREGATE})
    running: Running[ResolverService] = Running()
    draws = rng or random.Random()
    app = web.Application()

    async def build(first: Loaded) -> ResolverService:
        wiring = wire(clock, metrics, loader, transport, first.document.tls)
        source = app.get(HEALTH_SOURCE)
        return await ResolverService.build(settings, first, wiring, rng=draws, source=source)

    app[SERVICE] = running
    answers = HttpAnswers(lambda: running.service)
    h2_stats = H2Stats()
    metrics.registry.register(H2Collector(h2_stats))
    app[LISTENER] = DohListener(answers, h2_stats)
    add_routes(app, running, metrics.registry, answers)
    add_table_route(app, lambda: running.service.receiver)
    start_role(app, running, loader, build)
    return app
