"""Edge resolver: applies aggregators' deltas to its table and answers queries.

One table per aggregator stream (a snapshot rebuilds it, deltas patch it); queries read
the table of the first fresh aggregator by id. It answers classic DNS over UDP and
`GET /v1/resolve` from `bench.edge.answer`, so only health propagation differs from urn.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from bench.edge.answer import QTYPES, REFUSED, Index, build_response, parse_query, pick
from bench.edge.common import EventReceiver
from bench.edge.events import EVENTS_PATH
from bench.edge.state import ResolverTable
from urn.cli import add_role_arguments
from urn.clock import SystemClock
from urn.http import add_observability_routes, parse_listen, serve
from urn.metrics import ResolverMetrics
from urn.runtime import run_main
from urn.source import ConfigLoader, Loaded
from urn.ticker import run_every

if TYPE_CHECKING:
    import argparse

    from bench.edge.events import Batch
    from urn.config import Document

__all__ = ["EdgeResolver", "add_arguments", "run"]

_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


class EdgeResolver:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.clock = SystemClock()
        self.metrics = ResolverMetrics(registry)
        self.document: Document | None = None
        self.index: Index | None = None
        self.keys: tuple[bytes, ...] = ()
        self.tables: dict[str, ResolverTable] = {}
        self.active: bytearray = bytearray()
        self.rng = random.Random()
        self.receiver = EventReceiver(self._capacity, lambda: self.keys, self.metrics, self._apply)
        self._cpu_mark = time.process_time()
        self._counted: dict[tuple[str, str, int], Any] = {}

    def _capacity(self) -> int:
        return self.document.capacity if self.document is not None else 0

    def apply_config(self, loaded: Loaded) -> None:
        self.document = loaded.document
        self.keys = loaded.keys.accepted
        self.index = Index.of(loaded.document)
        if not self.active:
            self.active = bytearray(loaded.document.capacity)

    def _apply(self, batch: Batch) -> None:
        table = self.tables.get(batch.sender)
        if table is None:
            table = self.tables[batch.sender] = ResolverTable(self._capacity())
        table.apply(batch.events, batch.snapshot)
        self._choose()

    def _choose(self) -> None:
        fresh = sorted(self.receiver.streams.streams)
        if fresh and fresh[0] in self.tables:
            self.active = self.tables[fresh[0]].table

    def tick(self) -> None:
        """Expire stale aggregator streams; observe CPU per interval."""
        assert self.document is not None
        now = time.monotonic()
        for sender in self.receiver.streams.stale_senders(now, self.document.staleness):
            self.receiver.streams.forget(sender)
            self.tables.pop(sender, None)
        self._choose()
        cpu = time.process_time()
        self.metrics.tick_cpu.observe(cpu - self._cpu_mark)
        self._cpu_mark = cpu

    def _count(self, transport: str, qtype: int, rcode: int) -> None:
        key = (transport, QTYPES.get(qtype, str(qtype)), rcode)
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self.metrics.queries.labels(
                transport, str(key[1]), _RCODES.get(rcode, str(rcode))
            )
        counter.inc()

    def answer_dns(self, data: bytes) -> bytes | None:
        parsed = parse_query(data)
        if parsed is None or self.index is None:
            return None
        ident, flags, name, qtype, end = parsed
        rtype = QTYPES.get(qtype)
        entry = self.index.entries.get((name, rtype)) if rtype is not None else None
        if entry is None:
            rcode = self.index.rcode_for_missing(name) if rtype is not None else REFUSED
            self._count("udp", qtype, rcode)
            return build_response(data, ident, flags, end, rcode, 0, ())
        chosen = pick(entry, self.active, self.rng, self.index.fail_open)
        self._count("udp", qtype, 0)
        return build_response(
            data, ident, flags, end, 0, entry.ttl, [entry.packed[i] for i in chosen]
        )

    async def resolve_http(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "").lower().rstrip(".") + "."
        qtype = request.query.get("type", "A").upper()
        if self.index is None:
            return web.json_response({"Status": 2}, status=503)
        entry = next(
            (e for (n, t), e in self.index.entries.items() if n == name and t == qtype), None
        )
        if entry is None:
            return web.json_response({"Status": self.index.rcode_for_missing(name)})
        chosen = pick(entry, self.active, self.rng, self.index.fail_open)
        self.metrics.queries.labels("http", qtype, "NOERROR").inc()
        answers = [
            {"name": name, "type": 1, "TTL": entry.ttl, "data": entry.values[i]} for i in chosen
        ]
        return web.json_response({"Status": 0, "Answer": answers})


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, service: EdgeResolver) -> None:
        self.service = service
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = self.service.answer_dns(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_role_arguments(parser, "127.0.0.1:7500")
    parser.add_argument("--dns", default="127.0.0.1:7553", metavar="HOST:PORT")


def run(args: argparse.Namespace) -> int:
    return run_main(lambda stop: _main(args, stop), args.loop)


async def _main(args: argparse.Namespace, stop: asyncio.Event) -> int:
    registry = CollectorRegistry()
    service = EdgeResolver(registry)
    loader = ConfigLoader(args.config, service.clock, service.metrics, service.apply_config)
    await loader.load_first()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post(EVENTS_PATH, service.receiver.handle)
    app.router.add_get("/v1/resolve", service.resolve_http)

    async def health() -> tuple[bool, dict[str, Any]]:
        return True, {"id": args.id, "design": "edge", "pid": os.getpid()}

    add_observability_routes(app, registry, health)
    host, port = parse_listen(args.listen, 7500)
    runner, _ = await serve(app, host, port)
    dns_host, dns_port = parse_listen(args.dns, 7553)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Udp(service), local_addr=(dns_host, dns_port)
    )

    async def tick() -> None:
        service.tick()

    tasks = [
        asyncio.create_task(loader.run()),
        asyncio.create_task(
            run_every(
                service.clock,
                lambda: service.document.intervals.push if service.document else 1.0,
                tick,
            )
        ),
    ]
    await stop.wait()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    transport.close()
    await runner.cleanup()
    return 0
