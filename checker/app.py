"""The checker as an aiohttp app: the service, its routes and its lifecycle, wired once.

Owns: the wiring and the checker process's tuning. The probe and push loops run inside
the app's lifecycle: starting the app builds the checker from its first good config
(StartupError without one) and starts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from checker.service import CheckerService
from urn.clock import SystemClock
from urn.http import add_observability_routes
from urn.metrics import CheckerMetrics
from urn.role import Running, start_role, wire
from urn.runtime import Tuning
from urn.source import ConfigLoader
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from checker.settings import CheckerSettings
    from urn.clock import Clock
    from urn.push import Transport
    from urn.source import Loaded

__all__ = ["GC_THRESHOLDS", "SERVICE", "TUNING", "build_service", "make_app"]

# Every probe allocates objects the cyclic collector tracks (its `_Probe` and response
# scanner), and in-flight ones survive into older generations, so at the default
# thresholds the collector would run every few hundred probes and traverse everything in
# flight (when each probe was a Task it was 11 % of the loop: docs/checker.md). Garbage
# cycles live a little longer; refcounting frees the rest at once.
GC_THRESHOLDS = (20_000, 20, 100)
# Every probe in flight holds a socket: the soft fd limit, raised to the hard one, sizes
# how many may run at once (CheckerSettings.fd_limit carries it to the service).
TUNING = Tuning(gc_thresholds=GC_THRESHOLDS, raise_fd_limit=True)

SERVICE = web.AppKey("checker_service", Running[CheckerService])


def make_app(
    settings: CheckerSettings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> web.Application:
    """The checker's app: /metrics, /healthz, /readyz, /ui and /v1/status; starting it
    loads the config and probes."""
    clock = clock or SystemClock()
    metrics = CheckerMetrics(registry if registry is not None else CollectorRegistry())
    loader = ConfigLoader(settings.config, clock, metrics, environ, needs={TableKind.CHECKER})
    running: Running[CheckerService] = Running()
    app = web.Application()
    app[SERVICE] = running
    add_observability_routes(
        app,
        metrics.registry,
        lambda: running.service.health(),
        lambda: running.service.readiness(),
        lambda: running.service.status.cache,
    )
    start_role(app, running, loader, _builder(settings, metrics, loader, transport))
    return app


async def build_service(
    settings: CheckerSettings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> CheckerService:
    """The checker service built from its first good config, its loops not started:
    for benchmarks and tests that drive the probe loop themselves."""
    metrics = CheckerMetrics(registry if registry is not None else CollectorRegistry())
    loader = ConfigLoader(
        settings.config, clock or SystemClock(), metrics, environ, needs={TableKind.CHECKER}
    )
    return await loader.load_first(_builder(settings, metrics, loader, transport))


def _builder(
    settings: CheckerSettings,
    metrics: CheckerMetrics,
    loader: ConfigLoader,
    transport: Transport | None,
) -> Callable[[Loaded], CheckerService]:
    def build(first: Loaded) -> CheckerService:
        wiring = wire(loader.clock, metrics, loader, transport, first.document.tls)
        return CheckerService(settings, first, wiring)

    return build
