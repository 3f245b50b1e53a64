"""The aggregator as an aiohttp app: its routes and lifecycle, wired once.

Owns: the wiring. Starting the app builds the service from the first good config
(StartupError without one), then runs the config loop and the ticker until the app is
cleaned up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from aggregator.service import Aggregator
from urn.clock import SystemClock
from urn.http import add_observability_routes, add_table_route
from urn.metrics import AggregatorMetrics
from urn.role import Running, start_role, wire
from urn.runtime import Tuning
from urn.source import ConfigLoader

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aggregator.settings import AggregatorSettings
    from urn.clock import Clock
    from urn.push import Transport
    from urn.source import Loaded

__all__ = ["SERVICE", "TUNING", "make_app"]

# Nothing process-wide to change: a tick allocates nothing per slot, and the aggregator
# holds a few sockets per peer.
TUNING = Tuning()

SERVICE = web.AppKey("aggregator", Running[Aggregator])


def make_app(
    settings: AggregatorSettings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> web.Application:
    """The aggregator's app: tables in, /v1/slots/N, /healthz, /readyz, /metrics, /ui and
    /v1/status."""
    clock = clock or SystemClock()
    metrics = AggregatorMetrics(registry if registry is not None else CollectorRegistry())
    loader = ConfigLoader(settings.config, clock, metrics, environ)
    running: Running[Aggregator] = Running()

    def build(first: Loaded) -> Aggregator:
        wiring = wire(clock, metrics, loader, transport, first.document.tls)
        return Aggregator(settings, first, wiring)

    async def slot(request: web.Request) -> web.Response:
        return await running.service.handle_slot(request)

    app = web.Application()
    app[SERVICE] = running
    add_table_route(app, lambda: running.service.receiver)
    app.router.add_get("/v1/slots/{slot}", slot)
    add_observability_routes(
        app,
        metrics.registry,
        lambda: running.service.health(),
        lambda: running.service.readiness(),
        lambda: running.service.status.cache,
    )
    start_role(app, running, loader, build)
    return app
