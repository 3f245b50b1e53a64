"""HTTP pieces every role shares: the table receiver and its route, /healthz, /metrics, TLS,
serving.

The receiver bounds what it reads before decoding (size cap from Content-Length and
while streaming; a read deadline against slow-loris pushes), rejects with 400/401/403/
409/413 and the reason in the body, counts by reason, and only on full acceptance
hands the envelope to the service. A rejected table changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import ssl
import time
from typing import TYPE_CHECKING, Any, TypeAlias

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from urn.errors import Oversized, Truncated, UnlistedSender, WireError
from urn.logs import get_logger
from urn.push import TABLE_PATH
from urn.statuspage import StatusCache, add_status_routes
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
    from urn.trust import ReceivePolicy

__all__ = [
    "HEADER_DEADLINE",
    "HTTP_CONNECTIONS",
    "ConnectionCap",
    "HeaderDeadline",
    "TableReceiver",
    "add_observability_routes",
    "add_table_route",
    "client_ssl_context",
    "facts_handler",
    "open_site",
    "serve",
    "server_ssl_context",
    "start_runner",
]

READ_TIMEOUT = 5.0
UNKNOWN_SENDER = "unknown"  # the sender label until the MAC is verified
log = get_logger("receiver")
HEADER_DEADLINE = 10.0  # a connection must finish a request head this soon after the last


class TableReceiver:
    """`POST /v1/table`: verify, then deliver; every outcome counted by sender and result.

    What it accepts comes from one immutable `ReceivePolicy` (urn.trust) per config pass,
    which the service hands over with `apply` (older wiring passes `kind` plus `capacity`,
    `keys` and `skew` callables instead, read for every table, with no allow-list).
    Checks run cheapest first, and the sender id is believed only once the MAC is good:
    size, `decode` (structure, then MAC), the allow-list, then skew and replay. A sender
    silent for 2 x skew is forgotten by the guard, and its metric series with it.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        metrics: _ReceivesTables,
        deliver: Callable[[Envelope], None],
        policy: ReceivePolicy,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        """`policy` is the first config pass's; `apply` installs each later one."""
        self.kind = policy.kind
        self._policy = policy
        self._clock = clock
        self._metrics = metrics
        self._deliver = deliver
        self._read_timeout = read_timeout
        self._warned: tuple[str, ...] = ()
        self._labelled: dict[str, float] = {}  # sender -> last count (monotonic), oldest first
        self.guard = SequenceGuard(max_skew=policy.skew)
        self.apply(policy)

    @property
    def policy(self) -> ReceivePolicy:
        """The policy tables are judged by now."""
        return self._policy

    def apply(self, policy: ReceivePolicy) -> None:
        """Judge every table from now on by `policy` (one config pass's, built whole)."""
        if policy.kind is not self.kind:
            raise ValueError(f"a {policy.kind.name} policy for a {self.kind.name} receiver")
        self._policy = policy
        self.guard.max_skew = policy.skew
        if policy.warnings != self._warned:  # said at start, and again when they change
            self._warned = policy.warnings
            for warning in policy.warnings:
                log.warning("weak_trust", kind=self.kind.name.lower(), detail=warning)

    async def handle(self, request: web.Request) -> web.Response:
        policy = self.policy
        self.guard.max_skew = policy.skew
        self._forget(self._clock.monotonic(), policy)
        limit = encoded_size(policy.capacity, policy.kind)
        sender = UNKNOWN_SENDER
        try:
            body = await self._read_bounded(request, limit)
            envelope = decode(body, policy.keys, policy.capacity, policy.kind)
            sender = envelope.sender
            if not policy.admits(sender):
                raise UnlistedSender(f"sender {sender!r} is not on this receiver's allow-list")
            self.guard.check(envelope, self._clock.time())
        except WireError as exc:
            self._count(sender, exc.reason)
            return web.json_response(
                {"error": exc.reason, "detail": str(exc)}, status=exc.http_status
            )
        self.guard.commit(envelope, self._clock.monotonic())
        self._deliver(envelope)
        self._count(sender, "accepted")
        return web.json_response({"accepted": envelope.sequence})

    def _count(self, sender: str, result: str) -> None:
        self._metrics.received(sender, result)
        if sender != UNKNOWN_SENDER:
            self._labelled.pop(sender, None)  # re-inserted last: the dict stays oldest first
            self._labelled[sender] = self._clock.monotonic()

    def _forget(self, now: float, policy: ReceivePolicy) -> None:
        """Forget senders silent for 2 x skew: from the guard, and their metric series."""
        self.guard.forget_silent(now)
        horizon = now - policy.forget_after
        silent = list(itertools.takewhile(lambda s: self._labelled[s] < horizon, self._labelled))
        for sender in silent:
            del self._labelled[sender]
            self._metrics.forget_sender(sender)

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


def add_table_route(app: web.Application, receiver: Callable[[], TableReceiver]) -> None:
    """`POST /v1/table` into `receiver()`, the one the service built from its first config."""

    async def table(request: web.Request) -> web.Response:
        return await receiver().handle(request)

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
    connection's first sighting or the end of its last request, whichever is later, and
    never while a request is being handled: a keep-alive pusher sends a table every push
    interval and is never idle that long, and an idle connection closed here costs a
    client one reconnect.
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
        # The head is in: no deadline while the handler runs, however long it takes (a
        # mode change over thousands of targets, a slow peer reading its answer).
        self._last[key] = math.inf
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


Facts: TypeAlias = "Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]"


def add_observability_routes(
    app: web.Application,
    registry: CollectorRegistry,
    health: Facts,
    readiness: Facts,
    status: Callable[[], StatusCache] | None = None,
) -> None:
    """`/metrics` from `registry`; `/healthz` (liveness: the process works) and `/readyz`
    (it can do its job now; a JSON `reason` when not), each 200 or 503 with its facts;
    with `status`, the status page and its snapshot (urn.statuspage)."""
    app.router.add_get("/healthz", facts_handler(health))
    app.router.add_get("/readyz", facts_handler(readiness))
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    if status is not None:
        add_status_routes(app, status)


def facts_handler(facts: Facts) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A GET handler answering `facts()` as JSON: 200 when ok, else 503."""

    async def handle(_: web.Request) -> web.Response:
        ok, body = await facts()
        return web.Response(
            text=json.dumps({"ok": ok, **body}, default=str),
            status=200 if ok else 503,
            content_type="application/json",
        )

    return handle


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


HTTP_CONNECTIONS = 1024  # connections one runner's listeners hold at once


class ConnectionCap:
    """At most `limit` connections across a runner's listeners; past it the idlest goes.

    Idle: no request in progress, ranked by the end of its last request or, before any,
    by when it opened (the rule DNS over TCP follows, `resolver.tcplimits`). When every
    connection is mid-request the new one is closed instead. `evicted` and `refused`
    count both outcomes. Cost: a dict update per request; O(connections) per connection
    admitted past the limit.
    """

    def __init__(self, limit: int = HTTP_CONNECTIONS) -> None:
        if limit < 1:
            raise ValueError(f"connection cap {limit} must be at least 1")
        self.limit = limit
        self.evicted = 0
        self.refused = 0
        self._last: dict[int, float] = {}  # id(connection) -> opened or last request ended
        self._busy: dict[int, int] = {}  # id(connection) -> requests in progress

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        key = id(request.protocol)
        self._busy[key] = self._busy.get(key, 0) + 1
        try:
            return await handler(request)
        finally:
            self._busy[key] -= 1
            self._last[key] = time.monotonic()

    def install(self, app: web.Application) -> None:
        """Add the middleware; before the app is set up."""
        app.middlewares.append(self.middleware)

    def start(self, runner: web.BaseRunner) -> None:
        """Watch `runner`'s connections as they open and close; after `runner.setup()`."""
        server = runner.server
        assert server is not None
        opened = server.connection_made
        lost = server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            self._last[id(handler)] = time.monotonic()
            opened(handler, transport)
            live = server.connections
            if len(live) > self.limit:
                self._make_room(handler, live)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._last.pop(id(handler), None)
            self._busy.pop(id(handler), None)
            lost(handler, exc)

        # Server has no hook for this: its two callbacks, wrapped on the instance.
        setattr(server, "connection_made", connection_made)  # noqa: B010
        setattr(server, "connection_lost", connection_lost)  # noqa: B010

    def _make_room(self, newcomer: Any, live: list[Any]) -> None:
        idle = [c for c in live if c is not newcomer and not self._busy.get(id(c))]
        if idle:
            victim = min(idle, key=lambda c: self._last.get(id(c), 0.0))
            self.evicted += 1
        else:
            victim = newcomer
            self.refused += 1
        # Soon, not now: the newcomer's handler starts its task after this returns.
        asyncio.get_running_loop().call_soon(victim.force_close)


async def start_runner(
    app: web.Application,
    guard: HeaderDeadline | None = None,
    cap: ConnectionCap | None = None,
) -> web.AppRunner:
    """Set `app` up for serving, with a deadline on request heads (see HeaderDeadline) and
    a cap on connections (see ConnectionCap)."""
    guard = guard or HeaderDeadline()
    cap = cap or ConnectionCap()
    guard.install(app)
    cap.install(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
    except BaseException:
        await runner.cleanup()
        raise
    guard.start(runner)
    cap.start(runner)
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
