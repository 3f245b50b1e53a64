"""HTTP pieces every role shares: the table receiver and its route, /healthz, /metrics, TLS,
serving.

The receiver bounds what it reads before decoding (size cap from Content-Length and
while streaming; a read deadline against slow-loris pushes), rejects with 400/401/
409/413 and the reason in the body, counts by reason, and only on full acceptance
hands the envelope to the service. A rejected table changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from urn.errors import Oversized, Truncated, WireError
from urn.push import TABLE_PATH
from urn.wire import (
    MAX_CAPACITY,
    Envelope,
    SequenceGuard,
    TableKind,
    decode,
    encoded_size,
    slot_bytes,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from prometheus_client import CollectorRegistry

    from urn.clock import Clock
    from urn.config import Tls
    from urn.metrics import _ReceivesTables

__all__ = [
    "HEADER_DEADLINE",
    "HeaderDeadline",
    "TableReceiver",
    "add_observability_routes",
    "add_table_route",
    "client_ssl_context",
    "open_site",
    "serve",
    "server_ssl_context",
    "start_runner",
]

READ_TIMEOUT = 5.0
HEADER_DEADLINE = 10.0  # a connection must finish a request head this soon after the last


class TableReceiver:
    """`POST /v1/table`: verify, then deliver; every outcome counted by sender and result."""

    def __init__(
        self,
        *,
        kind: TableKind,
        capacity: Callable[[], int],
        keys: Callable[[], tuple[bytes, ...]],
        skew: Callable[[], float],
        clock: Clock,
        metrics: _ReceivesTables,
        deliver: Callable[[Envelope], None],
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self._kind = kind
        self._capacity = capacity
        self._keys = keys
        self._skew = skew
        self._clock = clock
        self._metrics = metrics
        self._deliver = deliver
        self._read_timeout = read_timeout
        self.guard = SequenceGuard(max_skew=skew())

    async def handle(self, request: web.Request) -> web.Response:
        capacity = self._capacity()
        limit = encoded_size(capacity, self._kind)
        sender = "unknown"
        try:
            body = await self._read_bounded(request, limit)
            envelope = decode(body, self._keys(), capacity, self._kind)
            sender = envelope.sender
            self.guard.max_skew = self._skew()
            self.guard.check(envelope, self._clock.time())
        except WireError as exc:
            self._metrics.received(sender, exc.reason)
            return web.json_response(
                {"error": exc.reason, "detail": str(exc)}, status=exc.http_status
            )
        self.guard.commit(envelope)
        self._deliver(envelope)
        self._metrics.received(sender, "accepted")
        return web.json_response({"accepted": envelope.sequence})

    async def _read_bounded(self, request: web.Request, limit: int) -> bytes:
        declared = request.content_length
        if declared is not None and declared > limit:
            hint = _size_hint(declared)
            raise Oversized(f"Content-Length {declared}, a table is {limit} bytes{hint}")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._read_timeout):
                while True:
                    chunk = await request.content.read(65536)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        raise Oversized(f"body exceeds {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise Truncated(f"body not complete within {self._read_timeout:g}s") from None
        except ConnectionError:
            # The sender hung up mid-body: count it like any short body, never a 500.
            raise Truncated(f"connection lost after {size} bytes") from None
        return b"".join(chunks)


def add_table_route(app: web.Application, receiver: Callable[[], TableReceiver | None]) -> None:
    """`POST /v1/table` into `receiver()`, the one the service makes when it starts.

    Before that (no config yet) a push is refused with 503 and changes nothing.
    """

    async def table(request: web.Request) -> web.Response:
        current = receiver()
        if current is None:
            return web.json_response({"error": "starting", "detail": "no config yet"}, status=503)
        return await current.handle(request)

    app.router.add_post(TABLE_PATH, table)


def _size_hint(declared: int) -> str:
    """What a body of `declared` bytes could be, to say in an oversized refusal."""
    fits = []
    for kind in TableKind:
        rest = declared - encoded_size(0, kind)
        width = slot_bytes(1, kind)
        if rest > 0 and rest % width == 0 and rest // width <= MAX_CAPACITY:
            fits.append(f"a capacity-{rest // width} {kind.name.lower()} table")
    return f" ({' or '.join(fits)}? compare kind and capacity)" if fits else ""


class HeaderDeadline:
    """Closes connections that finish no request head within `seconds`.

    aiohttp bounds a head's size but not its arrival time, so a peer that sends half a
    request line and stalls holds its connection forever (slow-loris). Counted from a
    connection's first sighting or its last request, whichever is later: a keep-alive
    pusher sends a table every push interval and is never idle that long, and an idle
    connection closed here costs a client one reconnect.
    """

    def __init__(self, seconds: float = HEADER_DEADLINE, sweep_every: float = 1.0) -> None:
        self.seconds = seconds
        self.sweep_every = sweep_every
        self.closed = 0
        self._last: dict[int, float] = {}  # id(connection) -> last head or first sighting
        self._task: asyncio.Task[None] | None = None

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        key = id(request.protocol)
        self._last[key] = time.monotonic()
        try:
            return await handler(request)
        finally:
            self._last[key] = time.monotonic()

    def install(self, app: web.Application) -> None:
        """Add the middleware, and stop sweeping on the app's cleanup; before it starts."""
        app.middlewares.append(self.middleware)

        async def stop_sweeping(_: web.Application) -> None:
            await self.stop()

        app.on_cleanup.append(stop_sweeping)

    def sweep(self, server: web.Server, now: float) -> None:
        live = {}
        for connection in server.connections:
            key = id(connection)
            last = self._last.get(key, now)
            if now - last > self.seconds:
                connection.force_close()
                self.closed += 1
            else:
                live[key] = last
        self._last = live

    def start(self, runner: web.BaseRunner) -> None:
        """Sweep `runner`'s connections until `stop`; call after `runner.setup()`."""

        async def sweeping() -> None:
            while True:
                await asyncio.sleep(self.sweep_every)
                if runner.server is not None:
                    self.sweep(runner.server, time.monotonic())

        self._task = asyncio.create_task(sweeping(), name="header-deadline")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def add_observability_routes(
    app: web.Application,
    registry: CollectorRegistry,
    health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]],
) -> None:
    """`/metrics` from `registry`; `/healthz` 200 or 503 with the service's own facts."""

    async def healthz(_: web.Request) -> web.Response:
        ok, facts = await health()
        return web.Response(
            text=json.dumps({"ok": ok, **facts}, default=str),
            status=200 if ok else 503,
            content_type="application/json",
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))


def server_ssl_context(tls: Tls) -> ssl.SSLContext | None:
    """HTTPS for a listener when the config names a certificate; mTLS when it asks."""
    if tls.cert is None or tls.key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    if tls.require_client_cert and tls.ca is not None:
        context.load_verify_locations(tls.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_ssl_context(tls: Tls) -> ssl.SSLContext:
    """Verification against the configured CA (or the system store), client cert if any."""
    context = ssl.create_default_context(cafile=tls.ca)
    if tls.client_cert is not None and tls.client_key is not None:
        context.load_cert_chain(tls.client_cert, tls.client_key)
    return context


async def start_runner(app: web.Application, guard: HeaderDeadline | None = None) -> web.AppRunner:
    """Set `app` up for serving, with a deadline on request heads (see HeaderDeadline)."""
    guard = guard or HeaderDeadline()
    guard.install(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
    except BaseException:
        await runner.cleanup()
        raise
    guard.start(runner)
    return runner


async def serve(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Start `app` on host:port (0 picks a free port); return the runner and bound port."""
    runner = await start_runner(app)
    return runner, await open_site(runner, host, port, ssl_context)


async def open_site(
    runner: web.AppRunner, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> int:
    """Listen on host:port (0 picks a free port) for a set-up runner; the bound port.

    OSError when the address cannot be had (taken, not ours).
    """
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return int(bound)


def parse_listen(value: str, default_port: int) -> tuple[str, int]:
    """`HOST:PORT`, `HOST` or `:PORT` into a pair; IPv6 in brackets."""
    host, sep, port = value.rpartition(":")
    if not sep:
        return value or "127.0.0.1", default_port
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"listen address {value!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"listen address {value!r}: port {number} is out of range")
    return host, number
