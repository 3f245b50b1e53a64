"""The resolver as an aiohttp app: the service, its routes and its lifecycle, wired once.

Owns: nothing but the wiring; the service (`resolver.service`) and the HTTP handlers
(`resolver.api`) know nothing of each other's construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from resolver.api import add_routes
from resolver.service import ResolverService

if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator, Mapping

    from prometheus_client import CollectorRegistry

    from resolver.settings import ResolverSettings
    from urn.clock import Clock

__all__ = ["SERVICE", "make_app"]

SERVICE = web.AppKey("resolver_service", ResolverService)


def make_app(
    settings: ResolverSettings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    rng: random.Random | None = None,
    environ: Mapping[str, str] | None = None,
) -> web.Application:
    """The resolver's aiohttp app; starting it loads the config and opens the DNS port."""
    service = ResolverService(settings, clock=clock, registry=registry, rng=rng, environ=environ)
    app = web.Application(client_max_size=64 * 1024)
    app[SERVICE] = service
    add_routes(app, service)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)
    return app
