"""Classic DNS over UDP and TCP (2-byte length framing), on one port, over `answer.Responder`.

The shell only moves bytes: every decision is the Responder's. A message the Responder
drops gets no reply; an unexpected exception gets SERVFAIL from the header (and is
counted as malformed reason `internal_error`), so no packet can stop the server.
TCP connections are bounded in number, closed after `tcp_idle_timeout` without data, and
stop being read while their replies are not being read (backpressure).
Latency: one query in `latency_sample` is timed (parse to response bytes) and observed,
because a histogram observation costs about as much as answering a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from time import perf_counter
from typing import TYPE_CHECKING

from urn.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from resolver.answer import Responder

__all__ = ["DnsServer"]

log = get_logger("resolver.dns")
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_TCP_MESSAGE = 65535
_BIND_ATTEMPTS = 8


def _answer(
    responder: Responder, data: bytes, udp: bool, tally: dict[tuple[int, int], int]
) -> bytes | None:
    try:
        return responder.dns(data, udp, tally)
    except Exception as exc:
        responder.malformed["internal_error"] = responder.malformed.get("internal_error", 0) + 1
        log.error("dns_internal_error", error=f"{type(exc).__name__}: {exc}", size=len(data))
        return responder.servfail(data, tally)


class _Udp(asyncio.DatagramProtocol):
    def __init__(
        self,
        responder: Responder,
        tally: dict[tuple[int, int], int],
        observe: Callable[[float], None],
        sample_mask: int,
    ) -> None:
        self.responder = responder
        self.answer = responder.dns  # bound once: the hot path skips two attribute lookups
        self.tally = tally
        self.observe = observe
        self.mask = sample_mask
        self.count = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.count += 1
        if self.count & self.mask:
            try:
                response = self.answer(data, True, self.tally)
            except Exception:
                response = _answer(self.responder, data, True, self.tally)
        else:
            start = perf_counter()
            response = _answer(self.responder, data, True, self.tally)
            self.observe(perf_counter() - start)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors about earlier replies: nothing to do, and nothing to stop


class _Tcp(asyncio.Protocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if len(self.server.connections) >= self.server.max_tcp_connections:
            transport.close()
            return
        self.server.connections.add(self)
        self._arm()

    def _arm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.server.tcp_idle_timeout, self.close)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.idle is not None:
            self.idle.cancel()

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self._arm()
        buffer = self.buffer
        buffer += data
        server = self.server
        while len(buffer) >= 2:
            size = buffer[0] << 8 | buffer[1]
            if len(buffer) < 2 + size:
                break
            message = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            server.tcp_count += 1
            if server.tcp_count & server.sample_mask:
                response = _answer(server.responder, message, False, server.tcp_tally)
            else:
                start = perf_counter()
                response = _answer(server.responder, message, False, server.tcp_tally)
                server.observe_tcp(perf_counter() - start)
            if response is not None and self.transport is not None:
                self.transport.write(len(response).to_bytes(2, "big") + response)


class DnsServer:
    """UDP and TCP listeners on one address; `start` returns the bound port."""

    def __init__(
        self,
        responder: Responder,
        *,
        udp_tally: dict[tuple[int, int], int],
        tcp_tally: dict[tuple[int, int], int],
        observe_udp: Callable[[float], None],
        observe_tcp: Callable[[float], None],
        latency_sample: int = 16,
        tcp_idle_timeout: float = 10.0,
        max_tcp_connections: int = 1024,
    ) -> None:
        self.responder = responder
        self.udp_tally = udp_tally
        self.tcp_tally = tcp_tally
        self.observe_udp = observe_udp
        self.observe_tcp = observe_tcp
        self.sample_mask = latency_sample - 1
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.connections: set[_Tcp] = set()
        self.tcp_count = 0
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Bind UDP then TCP on the same port (retrying when port 0 drew one TCP has taken)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for attempt in range(_BIND_ATTEMPTS):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
                sock.bind((host, port))
            except OSError:
                sock.close()
                raise
            bound: int = sock.getsockname()[1]
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self.responder, self.udp_tally, self.observe_udp, self.sample_mask),
                sock=sock,
            )
            try:
                self._tcp = await loop.create_server(
                    lambda: _Tcp(self), host, bound, reuse_address=True
                )
            except OSError:
                transport.close()
                if port != 0 or attempt == _BIND_ATTEMPTS - 1:
                    raise
                continue
            self._udp = transport
            self.port = bound
            return bound
        raise OSError("could not bind DNS on one port for both UDP and TCP")  # pragma: no cover

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for connection in list(self.connections):
                connection.close()
            await self._tcp.wait_closed()
