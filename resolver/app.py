"""The resolver as an aiohttp app: the service, its routes and its lifecycle, wired once.

Owns: the wiring and the resolver process's tuning; the service (`resolver.service`)
and the HTTP handlers (`resolver.api`) know nothing of each other's construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from resolver.api import add_routes
from resolver.service import ResolverService
from urn.http import add_table_route
from urn.role import start_with_app
from urn.runtime import Tuning

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from prometheus_client import CollectorRegistry

    from resolver.settings import ResolverSettings
    from urn.clock import Clock
    from urn.push import Transport

__all__ = ["GIL_SWITCH_INTERVAL", "SERVICE", "TUNING", "app_for", "make_app"]

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

SERVICE = web.AppKey("resolver_service", ResolverService)


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

    `transport` is accepted for the shape every role's make_app has: the resolver
    pushes nothing.
    """
    del transport
    return app_for(
        ResolverService(settings, clock=clock, registry=registry, rng=rng, environ=environ)
    )


def app_for(service: ResolverService, *, client_max_size: int = 64 * 1024) -> web.Application:
    """The app around a built resolver service: for a variant of it (bench/edge)."""
    app = web.Application(client_max_size=client_max_size)
    app[SERVICE] = service
    add_routes(app, service)
    add_table_route(app, lambda: service.receiver)
    start_with_app(app, service)
    return app
