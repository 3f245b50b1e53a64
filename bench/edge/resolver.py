"""Edge resolver: urn's resolver with its health source replaced by delta application.

Everything that answers (records, policies, DNS/DoH/JSON listeners, metrics) is urn's
`ResolverService`, given this design's `resolver.health.HealthSource`, so only health
propagation differs between the designs. Instead of
whole tables on `/v1/table`, it takes event batches on `/v1/events`: one table per
aggregator stream, patched event by event, with the answer path's down view (1 per
unhealthy slot) patched in place alongside. Queries read the view of the first fresh
aggregator by id; with none fresh, every slot is unknown (answered as healthy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from aiohttp import web

from bench.edge.common import EventReceiver
from bench.edge.events import EVENTS_PATH
from resolver.answer import unknown_view
from resolver.app import HEALTH_SOURCE, SERVICE, TUNING
from resolver.app import make_app as resolver_app
from resolver.health import FRESH, NO_TABLE, HealthView
from resolver.main import add_arguments as _resolver_arguments
from resolver.settings import ResolverSettings
from urn.http import open_site
from urn.logs import get_logger
from urn.runtime import run_main, settle_process, tune_process
from urn.table import Status, status_of_byte
from urn.wire import TableKind

if TYPE_CHECKING:
    import argparse
    import asyncio
    import random
    from collections.abc import Iterable, Mapping

    from prometheus_client import CollectorRegistry

    from bench.edge.events import Batch
    from resolver.service import ResolverService
    from urn.clock import Clock
    from urn.config import Document
    from urn.push import Transport

__all__ = ["PatchedSource", "PatchedView", "add_arguments", "make_app", "run"]

log = get_logger("edge-resolver")


class PatchedView:
    """One aggregator stream's table and the down view derived from it, both patched."""

    __slots__ = ("down", "table")

    def __init__(self, capacity: int) -> None:
        self.table = bytearray(capacity)
        self.down = bytearray(capacity + 1)  # the extra 0 slot: answers without a check

    def apply(self, events: Iterable[tuple[int, int]], snapshot: bool) -> None:
        if snapshot:
            self.table[:] = bytes(len(self.table))
            self.down[:] = bytes(len(self.down))
        table, down = self.table, self.down
        for slot, value in events:
            table[slot] = value
            down[slot] = status_of_byte(value) is Status.UNHEALTHY


class PatchedSource:
    """A `resolver.health.HealthSource` fed by event batches instead of whole tables.

    One patched view per aggregator stream; queries read the view of the first fresh
    stream by sender id, or, with none fresh, every slot unknown (answered as healthy).
    """

    def __init__(self, service: ResolverService) -> None:
        self.service = service
        self.views: dict[str, PatchedView] = {}
        self.events = EventReceiver(
            lambda: service.document.capacity,
            lambda: service.plan.loaded.keys.for_kind(TableKind.AGGREGATE).accepted,
            service.metrics,
            self._apply_batch,
        )

    def _apply_batch(self, batch: Batch) -> None:
        view = self.views.get(batch.sender)
        if view is None:
            view = self.views[batch.sender] = PatchedView(self.service.document.capacity)
        view.apply(batch.events, batch.snapshot)
        self.service.refresh()

    def current(self, document: Document, now: float) -> HealthView:
        streams = self.events.streams
        for sender in streams.stale_senders(now, document.staleness):
            streams.forget(sender)
            self.views.pop(sender, None)
        fresh = sorted(s for s in streams.streams if s in self.views)
        if not fresh:
            return HealthView(NO_TABLE, unknown_view(document.capacity))
        # The answer path only indexes `down`, so the patched bytearray serves as it is.
        return HealthView(FRESH, cast("bytes", self.views[fresh[0]].down), {"stream": fresh[0]})


def make_app(
    settings: ResolverSettings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
    rng: random.Random | None = None,
) -> web.Application:
    """urn's resolver app (`resolver.app.make_app`) with this design's health source, and
    `/v1/events` added (event batches are read by `EventReceiver`, bounded by its own cap)."""
    app = resolver_app(
        settings, clock=clock, registry=registry, environ=environ, transport=transport, rng=rng
    )
    app[HEALTH_SOURCE] = PatchedSource
    running = app[SERVICE]

    async def events(request: web.Request) -> web.Response:
        source = running.service.source
        assert isinstance(source, PatchedSource)
        return await source.events.handle(request)

    app.router.add_post(EVENTS_PATH, events)
    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _resolver_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return run_main(lambda stop: _main(ResolverSettings.from_args(args), stop), args.loop)


async def _main(settings: ResolverSettings, stop: asyncio.Event) -> int:
    # The same process tuning as urn's resolver, so only health propagation differs.
    # Served without urn.role.serve_role's head deadline: event batches may be further
    # apart than it allows a keep-alive connection to idle.
    tune_process(TUNING)
    app = make_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
        settle_process(TUNING)
        await open_site(runner, settings.listen_host, settings.listen_port)
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0
