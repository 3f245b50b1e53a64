"""The aggregator as an aiohttp app: the service, its routes and its lifecycle, wired once.

Owns: the wiring. Starting the app loads the first config (StartupError without one),
then runs the config loop and the ticker until the app is cleaned up.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from aggregator.service import Aggregator
from urn.http import add_observability_routes, add_table_route
from urn.runtime import Tuning, cancel_and_wait

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from prometheus_client import CollectorRegistry

    from aggregator.settings import AggregatorSettings
    from urn.clock import Clock
    from urn.push import Transport

__all__ = ["SERVICE", "TUNING", "make_app"]

# Nothing process-wide to change: a tick allocates nothing per slot, and the aggregator
# holds a few sockets per peer.
TUNING = Tuning()

SERVICE = web.AppKey("aggregator", Aggregator)


def make_app(
    settings: AggregatorSettings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> web.Application:
    """The aggregator's app: tables in, /v1/slots/N, /healthz, /metrics."""
    service = Aggregator(
        settings, clock=clock, registry=registry, transport=transport, environ=environ
    )
    app = web.Application()
    app[SERVICE] = service
    add_table_route(app, lambda: service.receiver)
    app.router.add_get("/v1/slots/{slot}", service.handle_slot)
    add_observability_routes(app, service.registry, service.health)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    await service.start()
    tasks = [
        asyncio.create_task(service.loader.run(), name="config"),
        asyncio.create_task(service.run_ticks(), name="ticks"),
    ]
    yield
    await cancel_and_wait(tasks)
    await service.close()
