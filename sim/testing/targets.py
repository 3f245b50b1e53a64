"""Loopback targets and helpers for checker tests, benches and the demo.

Real sockets only, on 127.0.0.1 and port 0: an aiohttp target app with healthy, failing
and chunked paths, a raw asyncio server with hostile behaviours (hold, reset, close
mid-response, garbage), `loopback_farm` (many targets of the simulated farm, switchable
at once), `probe_once` to run one probe end to end, and `ThreadedTarget`, a healthy
target in threads of its own that keeps answering while the test blocks the event loop
(as a CPU-starved checker would be blocked). A port that refuses connections is
`sim.testing.free_port()`.
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
from sim.farm import DEFAULT_SLOW_DELAY, TargetFarm
from sim.farm_layout import Mode, layout

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from checker.probers import Target

__all__ = [
    "BODY",
    "RAW_BEHAVIOURS",
    "RawServer",
    "ThreadedTarget",
    "loopback_farm",
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


async def probe_once(target: Target, sweep_every: float = 0.005) -> int:
    """Run one probe through a real ProbeEngine, sweeping deadlines; return its verdict."""
    loop = asyncio.get_running_loop()
    results: list[int] = []

    def record(_target: Target, verdict: int, _started: float, _finished: float) -> None:
        results.append(verdict)

    engine = ProbeEngine(loop.time, record)
    engine.start(target, loop.time())
    try:
        while not results:
            await asyncio.sleep(sweep_every)
            engine.sweep(loop.time())
    finally:
        engine.abort_all()  # its epoll set, and the loop's reader of it
    return results[0]


async def loopback_farm(
    count: int,
    mode: Mode | str = Mode.HEALTHY,
    *,
    slow_delay: float = DEFAULT_SLOW_DELAY,
    backlog: int = 1024,
) -> TargetFarm:
    """A started `sim.farm.TargetFarm` of `count` HTTP targets in `mode`, all in AZ `a`.

    Every target listens on 127.0.0.1, on an ephemeral port of its own; probe it at its
    spec's port and path (`farm.specs`), switch it with `set_mode(..., az="a")`, and
    `close()` the farm when done.
    """
    farm = TargetFarm(
        layout(["a"], count, 0, host="127.0.0.1"), slow_delay=slow_delay, backlog=backlog
    )
    await farm.start()
    if mode != Mode.HEALTHY:
        await farm.set_mode(mode, az="a")
    return farm


_OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhealthy"


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
