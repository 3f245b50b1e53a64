"""I/O shared by the edge roles: the event receiver, the per-peer batch sender, the push
loop and the health page."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web

from bench.edge.events import (
    EVENTS_PATH,
    BatchError,
    Outbox,
    Streams,
    StreamVerdict,
    decode_batch,
    encode_batch,
    max_batch_bytes,
)
from urn.push import CONTENT_TYPE
from urn.ticker import run_every

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bench.edge.events import Batch
    from urn.clock import Clock
    from urn.config import Document
    from urn.metrics import CommonMetrics, _ReceivesTables

__all__ = ["EventReceiver", "edge_health", "push_at_interval", "send_batches"]


class _Pushes(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def document(self) -> Document | None: ...

    async def push_tick(self, session: aiohttp.ClientSession) -> None: ...


async def push_at_interval(service: _Pushes, session: aiohttp.ClientSession) -> None:
    """`service.push_tick` at its config's push interval (each second until one loads)."""
    await run_every(
        service.clock,
        lambda: service.document.intervals.push if service.document else 1.0,
        lambda: service.push_tick(session),
    )


def edge_health(process_id: str) -> Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]:
    """The /healthz check of an edge process: always healthy, naming itself."""

    async def health() -> tuple[bool, dict[str, Any]]:
        return True, {"id": process_id, "design": "edge", "pid": os.getpid()}

    return health


class EventReceiver:
    """`POST /v1/events`: verify, order per sender, then apply; 409 asks for a snapshot."""

    def __init__(
        self,
        capacity: Callable[[], int],
        keys: Callable[[], tuple[bytes, ...]],
        metrics: _ReceivesTables,
        apply: Callable[[Batch], None],
    ) -> None:
        self._capacity = capacity
        self._keys = keys
        self._metrics = metrics
        self._apply = apply
        self.streams = Streams()

    async def handle(self, request: web.Request) -> web.Response:
        limit = max_batch_bytes(self._capacity())
        if request.content_length is not None and request.content_length > limit:
            self._metrics.received("unknown", "oversized")
            return web.Response(status=413, text="oversized")
        body = await request.content.read(limit + 1)
        try:
            batch = decode_batch(body, self._keys(), self._capacity())
        except BatchError as exc:
            self._metrics.received("unknown", exc.reason)
            return web.Response(status=400, text=exc.reason)
        verdict = self.streams.verdict(batch)
        if verdict is StreamVerdict.RESYNC:
            self._metrics.received(batch.sender, "resync")
            return web.Response(status=409, text="resync")
        if verdict is StreamVerdict.STALE:
            self._metrics.received(batch.sender, "replayed")
            return web.Response(status=200, text="stale")
        self._apply(batch)
        self.streams.commit(batch, time.monotonic())
        self._metrics.received(batch.sender, "accepted")
        return web.Response(status=204)


async def send_batches(
    session: aiohttp.ClientSession,
    outboxes: dict[str, Outbox],
    key: bytes,
    now: float,
    heartbeat: float,
    timeout: float,
    metrics: CommonMetrics,
) -> None:
    """Send each peer its due batch concurrently; a failed send owes that peer a snapshot."""

    async def one(peer: str, outbox: Outbox) -> None:
        body = encode_batch(outbox.take(now), key)
        result = "error"
        try:
            async with (
                asyncio.timeout(timeout),
                session.post(
                    peer + EVENTS_PATH, data=body, headers={"Content-Type": CONTENT_TYPE}
                ) as response,
            ):
                await response.read()
                result = "ok" if 200 <= response.status < 300 else "rejected"
        except TimeoutError:
            result = "timeout"
        except (aiohttp.ClientError, OSError):
            result = "error"
        metrics.pushes.labels(peer, result).inc()
        if result == "ok":
            metrics.push_bytes.labels(peer).inc(len(body))
        else:
            outbox.lost()

    await asyncio.gather(
        *(one(peer, box) for peer, box in outboxes.items() if box.due(now, heartbeat))
    )
