"""The checker as an aiohttp app: the service, its routes and its lifecycle, wired once.

Owns: the wiring and the checker process's tuning. The probe and push loops run inside
the app's lifecycle, so starting the app starts the checker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from checker.service import CheckerService
from urn.clock import SystemClock
from urn.http import add_observability_routes
from urn.metrics import CheckerMetrics
from urn.role import start_with_app
from urn.runtime import Tuning

if TYPE_CHECKING:
    from collections.abc import Mapping

    from checker.settings import CheckerSettings
    from urn.clock import Clock
    from urn.push import Transport

__all__ = ["GC_THRESHOLDS", "SERVICE", "TUNING", "make_app"]

# Every probe allocates a dozen objects the cyclic collector tracks (task, coroutine,
# transport, futures), and in-flight ones survive into older generations, so at the
# default thresholds the collector, not the probes, bounds the probe rate (the figures
# are in docs/checker.md). Garbage cycles live a little longer; refcounting frees the
# rest at once.
GC_THRESHOLDS = (20_000, 20, 100)
# Every probe in flight holds a socket: the soft fd limit, raised to the hard one, sizes
# how many may run at once (CheckerSettings.fd_limit carries it to the service).
TUNING = Tuning(gc_thresholds=GC_THRESHOLDS, raise_fd_limit=True)

SERVICE = web.AppKey("checker_service", CheckerService)


def make_app(
    settings: CheckerSettings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> web.Application:
    """The checker's app: /metrics, /healthz; starting it loads the config and probes."""
    registry = registry if registry is not None else CollectorRegistry()
    service = CheckerService(
        settings, clock or SystemClock(), CheckerMetrics(registry), transport, environ
    )
    app = web.Application()
    app[SERVICE] = service
    add_observability_routes(app, registry, service.health)
    start_with_app(app, service)
    return app
