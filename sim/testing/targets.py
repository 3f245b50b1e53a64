"""Loopback targets and helpers for checker tests, benches and the demo.

Real sockets only, on 127.0.0.1 and port 0: an aiohttp target app with healthy, failing
and chunked paths, a raw asyncio server with hostile behaviours (hold, reset, close
mid-response, garbage), a closed port, `probe_once` to run one probe end to end, and
`ThreadedTarget`, a healthy target in threads of its own that keeps answering while the
test blocks the event loop (as a CPU-starved checker would be blocked).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING

from aiohttp import web

from checker.probers import ProbeEngine

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from checker.probers import Target

__all__ = [
    "BODY",
    "RAW_BEHAVIOURS",
    "RawServer",
    "TargetFarm",
    "ThreadedTarget",
    "closed_port",
    "make_target_app",
    "probe_once",
]

BODY = b"<html>" + b"x" * 100 + b"all good" + b"</html>"


def make_target_app() -> web.Application:
    """/ok 200 with BODY, /bad 503, /moved 302, /late (string past 5,120 bytes), /chunked."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(body=BODY)

    async def bad(_: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    async def moved(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/ok"})

    async def late_string(_: web.Request) -> web.Response:
        return web.Response(body=b"y" * 5200 + b"all good")

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b"abc all", b" go", b"od tail"):
            await response.write(piece)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/bad", bad)
    app.router.add_get("/moved", moved)
    app.router.add_get("/late", late_string)
    app.router.add_get("/chunked", chunked)
    return app


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never answer (a blackholed target)."""
    await reader.read(65536)
    await asyncio.Event().wait()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _mid_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nonly a little")
    await writer.drain()
    writer.close()


async def _mid_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.write(b"HTTP/1.1 20")
    await writer.drain()
    writer.close()


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.write(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
    await writer.drain()
    writer.close()


RAW_BEHAVIOURS: dict[str, Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]]
RAW_BEHAVIOURS = {
    "hold": _hold,
    "reset": _reset,
    "mid_response": _mid_response,
    "mid_head": _mid_head,
    "garbage": _garbage,
}


class RawServer:
    """A raw asyncio server on 127.0.0.1:0 with one of RAW_BEHAVIOURS per connection."""

    def __init__(self, behaviour: str) -> None:
        self._handler = RAW_BEHAVIOURS[behaviour]
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            await self._handler(reader, writer)

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on loopback `host` with nothing listening (bound, then released).

    Long runs should use a loopback address of their own (127.0.99.1, say): a port just
    released on 127.0.0.1 may soon be taken by any other process on the machine.
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


async def probe_once(target: Target, sweep_every: float = 0.005) -> int:
    """Run one probe through a real ProbeEngine, sweeping deadlines; return its verdict."""
    loop = asyncio.get_running_loop()
    results: list[int] = []

    def record(_target: Target, verdict: int, _started: float, _finished: float) -> None:
        results.append(verdict)

    engine = ProbeEngine(loop.time, record)
    engine.start(target, loop.time())
    while not results:
        await asyncio.sleep(sweep_every)
        engine.sweep(loop.time())
    return results[0]


_OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhealthy"


class _FarmProtocol(asyncio.Protocol):
    """Answers one request per connection the way its farm's current mode says."""

    __slots__ = ("farm", "transport")

    def __init__(self, farm: TargetFarm) -> None:
        self.farm = farm
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.farm.accepted += 1
        self.farm.live.add(self)

    def data_received(self, data: bytes) -> None:
        mode = self.farm.mode
        transport = self.transport
        if transport is None or mode == "hold":
            return
        if mode == "slow":
            asyncio.get_running_loop().call_later(self.farm.delay, self._answer)
        else:
            self._answer()

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_OK_RESPONSE)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.farm.live.discard(self)


class TargetFarm:
    """`count` lean HTTP targets on 127.0.0.1 ports; `mode` switches them all at once.

    Modes: "healthy" (200 at once), "slow" (200 after `delay` s), "hold" (accept and never
    answer: a blackholed target).
    """

    def __init__(self, count: int, mode: str = "healthy", delay: float = 0.05) -> None:
        self.count = count
        self.mode = mode
        self.delay = delay
        self.accepted = 0
        self.live: set[_FarmProtocol] = set()
        self.ports: list[int] = []
        self._servers: list[asyncio.Server] = []

    async def start(self) -> list[int]:
        loop = asyncio.get_running_loop()
        for _ in range(self.count):
            server = await loop.create_server(
                lambda: _FarmProtocol(self), "127.0.0.1", 0, backlog=4096
            )
            self._servers.append(server)
            self.ports.append(int(server.sockets[0].getsockname()[1]))
        return self.ports

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for protocol in list(self.live):
            if protocol.transport is not None:
                protocol.transport.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []


class ThreadedTarget:
    """A healthy HTTP target on 127.0.0.1:0 served from threads, not from the event loop.

    Each connection gets a thread that reads the request, waits `delay` seconds and
    answers 200, so answers arrive on time even while the test stalls the loop. A context
    manager: leaving it closes the listener and joins every thread.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.answered = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1024)
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, name="target-accept")

    def __enter__(self) -> ThreadedTarget:
        self._accepting.start()
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepting.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            if not conn.recv(4096):
                return
            time.sleep(self.delay)
            conn.sendall(_OK_RESPONSE)
            with self._lock:
                self.answered += 1
