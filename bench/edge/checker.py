"""Edge checker: probes like urn's checker, but pushes only changed slots as events.

Each probe verdict goes into one outbox per aggregator; every push interval the outbox
that holds changes (or owes a snapshot, or a heartbeat) is sent. `urn_tick_cpu_seconds`
observes the whole process's CPU per push interval, so it counts probing, encoding and
sending alike.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from bench.edge.common import edge_health, push_at_interval, send_batches
from bench.edge.events import Outbox
from bench.edge.schedule import buckets_for
from checker.probers import ProbeEngine, compile_target, tls_contexts
from urn.clock import SystemClock
from urn.http import add_observability_routes, parse_listen, serve
from urn.metrics import CheckerMetrics
from urn.role import add_role_arguments
from urn.runtime import cancel_and_wait, raise_fd_limit, run_main
from urn.source import ConfigLoader, Loaded
from urn.table import Reason
from urn.wire import TableKind

if TYPE_CHECKING:
    import argparse

    from urn.config import Document

__all__ = ["EdgeChecker", "add_arguments", "run"]

BUCKET_SECONDS = 0.02


class EdgeChecker:
    def __init__(self, checker_id: str, az: str, registry: CollectorRegistry) -> None:
        self.id = checker_id
        self.az = az
        self.clock = SystemClock()
        self.metrics = CheckerMetrics(registry)
        # urn's own prober: both designs probe identically, only propagation differs.
        self.engine = ProbeEngine(time.monotonic, self._record)
        self._tls = tls_contexts()
        self.document: Document | None = None
        self.key = b""
        self.targets: dict[int, Any] = {}
        self.buckets: list[list[int]] = [[]]
        self.outboxes: dict[str, Outbox] = {}
        self.epoch = time.time_ns()
        self._cpu_mark = time.process_time()
        self._counts = [0] * len(Reason)

    def apply(self, loaded: Loaded) -> None:
        document = loaded.document
        self.document = document
        self.key = loaded.keys.for_kind(TableKind.CHECKER).signing
        lax, strict = self._tls
        self.targets = {
            c.slot: compile_target(c, lax, strict) for c in document.checks if c.is_probed
        }
        count = max(1, round(document.intervals.probe / BUCKET_SECONDS))
        self.buckets = buckets_for(self.id, sorted(self.targets), count)
        self.metrics.checks_assigned.set(len(self.targets))
        self.metrics.peers(document.aggregators)
        for peer in document.aggregators:
            if peer not in self.outboxes:
                self.outboxes[peer] = Outbox(document.capacity, self.id, self.az, self.epoch)
        for peer in list(self.outboxes):
            if peer not in document.aggregators:
                del self.outboxes[peer]

    def _record(self, target: Any, reason: int, started: float, finished: float) -> None:
        self._counts[reason] += 1
        slot = target.slot
        for outbox in self.outboxes.values():
            outbox.record(slot, reason)

    async def probe_loop(self) -> None:
        assert self.document is not None
        deadline = time.monotonic()
        index = 0
        while True:
            await self.clock.sleep_until(deadline)
            now = time.monotonic()
            self.engine.sweep(now)
            targets = self.targets
            for slot in self.buckets[index % len(self.buckets)]:
                target = targets.get(slot)
                if target is not None:
                    self.engine.start(target, now)
            index += 1
            step = self.document.intervals.probe / len(self.buckets)
            deadline += step
            if time.monotonic() > deadline + 1.0:
                deadline = time.monotonic()  # a stall must not cause a burst

    async def push_tick(self, session: aiohttp.ClientSession) -> None:
        assert self.document is not None
        for reason in Reason:
            if self._counts[reason]:
                self.metrics.probes.labels(reason.label).inc(self._counts[reason])
                self._counts[reason] = 0
        push = self.document.intervals.push
        await send_batches(
            session,
            self.outboxes,
            self.key,
            time.monotonic(),
            heartbeat=max(push, self.document.staleness / 3),
            timeout=push,
            metrics=self.metrics,
        )
        cpu = time.process_time()
        self.metrics.tick_cpu.observe(cpu - self._cpu_mark)
        self._cpu_mark = cpu


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_role_arguments(parser, "127.0.0.1:7300")
    parser.add_argument("--az", required=True)


def run(args: argparse.Namespace) -> int:
    return run_main(lambda stop: _main(args, stop), args.loop)


async def _main(args: argparse.Namespace, stop: asyncio.Event) -> int:
    registry = CollectorRegistry()
    service = EdgeChecker(args.id, args.az, registry)
    loader = ConfigLoader(args.config, service.clock, service.metrics)
    await loader.load_first(service.apply)
    soft, _ = raise_fd_limit()
    service.metrics.fd_limit.set(soft)
    app = web.Application()
    add_observability_routes(app, registry, edge_health(args.id), edge_health(args.id))
    host, port = parse_listen(args.listen, 7300)
    runner, _ = await serve(app, host, port)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        assert service.document is not None
        tasks = [
            asyncio.create_task(loader.run(service.apply)),
            asyncio.create_task(service.probe_loop()),
            asyncio.create_task(push_at_interval(service, session)),
        ]
        await stop.wait()
        await cancel_and_wait(tasks)
        service.engine.abort_all()
    await runner.cleanup()
    return 0
