"""Edge aggregator: applies checker deltas to per-slot vote counters, forwards changes.

Every accepted batch updates `EdgeAggregate` one event at a time; each slot whose
verdict changes is queued in every resolver's outbox, flushed once per push interval
(with snapshots on resync and heartbeats when idle). Stale checkers are expired, which
withdraws their votes. `urn_tick_cpu_seconds` observes the whole process's CPU per push
interval: receiving, applying, expiring and sending.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp
import numpy as np
from aiohttp import web
from prometheus_client import CollectorRegistry

from bench.edge.common import EventReceiver, edge_health, push_at_interval, send_batches
from bench.edge.events import EVENTS_PATH, Outbox
from bench.edge.state import EdgeAggregate
from urn.clock import SystemClock
from urn.http import add_observability_routes, parse_listen, serve
from urn.metrics import AggregatorMetrics, TableCollector
from urn.role import add_role_arguments
from urn.runtime import cancel_and_wait, run_main
from urn.source import ConfigLoader, Loaded
from urn.wire import TableKind

if TYPE_CHECKING:
    import argparse

    from bench.edge.events import Batch
    from urn.config import Document
    from urn.table import SlotArray

__all__ = ["EdgeAggregator", "add_arguments", "run"]


class EdgeAggregator:
    def __init__(self, aggregator_id: str, registry: CollectorRegistry) -> None:
        self.id = aggregator_id
        self.clock = SystemClock()
        self.metrics = AggregatorMetrics(registry)
        self._configured: SlotArray | None = None
        registry.register(
            TableCollector(
                table=lambda: (
                    None if self.state is None else np.frombuffer(self.state.verdict, np.uint8)
                ),
                age=lambda: None,
                configured=lambda: self._configured,
            )
        )
        self.document: Document | None = None
        self.keys: tuple[bytes, ...] = ()
        self.key = b""
        self.state: EdgeAggregate | None = None
        self.outboxes: dict[str, Outbox] = {}
        self.epoch = time.time_ns()
        self.receiver = EventReceiver(self._capacity, lambda: self.keys, self.metrics, self._apply)
        self._work = 0.0

    def _capacity(self) -> int:
        return self.document.capacity if self.document is not None else 0

    def apply_config(self, loaded: Loaded) -> None:
        document = loaded.document
        self.document = document
        self.keys = loaded.keys.for_kind(TableKind.CHECKER).accepted
        self.key = loaded.keys.for_kind(TableKind.AGGREGATE).signing
        if self.state is None:
            self.state = EdgeAggregate(document.capacity)
        self._forward(self.state.configure(document))
        configured = np.zeros(document.capacity, dtype=np.uint8)
        configured[[c.slot for c in document.checks]] = 1
        self._configured = configured
        self.metrics.peers(document.resolvers)
        for peer in document.resolvers:
            if peer not in self.outboxes:
                outbox = Outbox(document.capacity, self.id, "", self.epoch)
                outbox.state[:] = self.state.verdict
                self.outboxes[peer] = outbox
        for peer in list(self.outboxes):
            if peer not in document.resolvers:
                del self.outboxes[peer]

    def _apply(self, batch: Batch) -> None:
        assert self.state is not None
        started = time.process_time()
        self._forward(self.state.apply(batch.sender, batch.events, batch.snapshot))
        self._work += time.process_time() - started

    def _forward(self, changed: set[int]) -> None:
        if not changed:
            return
        assert self.state is not None
        verdict = self.state.verdict
        for outbox in self.outboxes.values():
            for slot in changed:
                outbox.record(slot, verdict[slot])

    async def push_tick(self, session: aiohttp.ClientSession) -> None:
        assert self.document is not None
        assert self.state is not None
        now = time.monotonic()
        started = time.process_time()
        for sender in self.receiver.streams.stale_senders(now, self.document.staleness):
            self.receiver.streams.forget(sender)
            self._forward(self.state.expire(sender))
        self.metrics.tick_cpu.observe(self._work + time.process_time() - started)
        self._work = 0.0
        self.metrics.fresh_checkers.set(len(self.receiver.streams.streams))
        push = self.document.intervals.push
        await send_batches(
            session,
            self.outboxes,
            self.key,
            now,
            heartbeat=max(push, self.document.staleness / 3),
            timeout=push,
            metrics=self.metrics,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_role_arguments(parser, "127.0.0.1:7400")


def run(args: argparse.Namespace) -> int:
    return run_main(lambda stop: _main(args, stop), args.loop)


async def _main(args: argparse.Namespace, stop: asyncio.Event) -> int:
    registry = CollectorRegistry()
    service = EdgeAggregator(args.id, registry)
    loader = ConfigLoader(args.config, service.clock, service.metrics)
    await loader.load_first(service.apply_config)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post(EVENTS_PATH, service.receiver.handle)
    add_observability_routes(app, registry, edge_health(args.id), edge_health(args.id))
    host, port = parse_listen(args.listen, 7400)
    runner, _ = await serve(app, host, port)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [
            asyncio.create_task(loader.run(service.apply_config)),
            asyncio.create_task(push_at_interval(service, session)),
        ]
        await stop.wait()
        await cancel_and_wait(tasks)
    await runner.cleanup()
    return 0
