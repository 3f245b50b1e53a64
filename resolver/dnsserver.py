"""Classic DNS over UDP and TCP (2-byte length framing) on one port, and DNS over TLS
(RFC 7858) on another, over `answer.Responder`.

The shell only moves bytes: every decision is the Responder's. A message the Responder
drops gets no reply; an unexpected exception gets SERVFAIL from the header (and is
counted as malformed reason `internal_error`), so no packet can stop the server.
TCP and TLS connections are framed alike and share one book of connections
(`tcplimits.Connections`), bounded per RFC 7766 by `tcplimits.TcpLimits`, which decides
who goes: past the per-source or the total limit the idlest connection is closed to
admit the new one; an unfinished message has a deadline from its first byte that later
bytes never extend; a connection without one closes when idle. A connection stops being
read, and its buffered queries stop being answered, while more than `write_buffer` bytes
of its replies wait unread, so a client that pipelines and never reads costs at most
`write_buffer` + one reply + one read (256 KiB) of memory, until its idle deadline.
A TLS handshake must finish within `message_timeout`; only then does the connection
enter the book (asyncio calls `connection_made` after the handshake).
Deadlines are judged by a sweep every `sweep_interval`; the per-message path reads no
clock and arms no timer, only the sweep's coarse `now`.
Latency: one query in `latency_sample` is timed (parse to response bytes) and observed,
because a histogram observation costs about as much as answering a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from time import perf_counter
from typing import TYPE_CHECKING

from resolver.tcplimits import CLOSE_REASONS, Connections, TcpLimits, source_key
from urn.clock import SystemClock
from urn.logs import get_logger
from urn.runtime import cancel_and_wait
from urn.ticker import run_every

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

    from prometheus_client import Counter

    from resolver.answer import Responder
    from urn.clock import Clock

__all__ = ["DnsServer"]

log = get_logger("resolver.dns")
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_TCP_MESSAGE = 65535
_BIND_ATTEMPTS = 8


def _unobserved(_: float) -> None:
    pass


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


class _Framed:
    """What one stream transport (TCP, or TLS) counts and times its queries into."""

    __slots__ = ("count", "observe", "tally")

    def __init__(self, tally: dict[tuple[int, int], int], observe: Callable[[float], None]):
        self.tally = tally
        self.observe = observe
        self.count = 0


class _Tcp(asyncio.Protocol):
    """One DNS/TCP or DNS/TLS connection: frames in, answers out (in order, pipelined),
    stamps for `tcplimits.Connections`."""

    def __init__(self, server: DnsServer, framed: _Framed) -> None:
        self.server = server
        self.framed = framed
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.last = server.now  # opened, or its last complete message (tcplimits Rule 2)
        self.started = 0.0  # first byte of its unfinished message; 0.0: none
        self.paused = False  # its replies wait for the client to read: not reading

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport = stream
        server = self.server
        peer = stream.get_extra_info("peername")
        source = source_key(str(peer[0])) if isinstance(peer, tuple) and peer else str(peer)
        stream.set_write_buffer_limits(high=server.limits.write_buffer)
        for victim, reason in server.connections.admit(self, source):
            victim.end(reason)

    def end(self, reason: str) -> None:
        """Close for `reason` (a `CLOSE_REASONS` label), counted."""
        self.server.count_closed(reason)
        self.close()

    def close(self) -> None:
        """Close at once: replies still unread are dropped."""
        transport = self.transport
        if transport is not None:
            if transport.get_write_buffer_size():
                transport.abort()  # close() would wait for a client that does not read
            else:
                transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.forget(self)
        self.buffer.clear()

    def pause_writing(self) -> None:
        # Called from inside transport.write once the unread replies pass the high-water
        # mark (`TcpLimits.write_buffer`): stop answering and reading until they drain.
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
            self._answer_buffered()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._answer_buffered()

    def _answer_buffered(self) -> None:
        buffer = self.buffer
        server = self.server
        framed = self.framed
        answered = False
        while len(buffer) >= 2 and not self.paused:
            size = buffer[0] << 8 | buffer[1]
            if len(buffer) < 2 + size:
                break
            message = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            answered = True
            framed.count += 1
            if framed.count & server.sample_mask:
                response = _answer(server.responder, message, False, framed.tally)
            else:
                start = perf_counter()
                response = _answer(server.responder, message, False, framed.tally)
                framed.observe(perf_counter() - start)
            if response is not None and self.transport is not None:
                # Responder.dns never builds more than 65,535 bytes for a stream.
                self.transport.write(len(response).to_bytes(2, "big") + response)
        if answered:
            self.last = server.now
            self.started = server.now if buffer and not self.paused else 0.0
        elif buffer and not self.started:
            self.started = server.now  # the first bytes of a message: its deadline starts


class DnsServer:
    """UDP and TCP listeners on one address, and DNS over TLS on another when asked for;
    `start` and `start_tls` return the bound port.

    `limits` bound the TCP and TLS sides together (`resolver.tcplimits`). `tcp_closed`
    counts the connections closed by us, by reason. `clock` drives the deadline sweep
    (every `limits.sweep_interval`), which also sets the coarse `now` that connections
    stamp per message instead of reading a clock.
    """

    def __init__(
        self,
        responder: Responder,
        *,
        udp_tally: dict[tuple[int, int], int],
        tcp_tally: dict[tuple[int, int], int],
        observe_udp: Callable[[float], None],
        observe_tcp: Callable[[float], None],
        dot_tally: dict[tuple[int, int], int] | None = None,
        observe_dot: Callable[[float], None] | None = None,
        latency_sample: int = 16,
        limits: TcpLimits | None = None,
        tcp_closed: Counter | None = None,
        clock: Clock | None = None,
    ) -> None:
        limits = limits or TcpLimits()
        self.responder = responder
        self.udp_tally = udp_tally
        self.observe_udp = observe_udp
        self.tcp = _Framed(tcp_tally, observe_tcp)
        self.dot = _Framed({} if dot_tally is None else dot_tally, observe_dot or _unobserved)
        self.sample_mask = latency_sample - 1
        self.connections: Connections[_Tcp] = Connections(limits)
        self.clock: Clock = clock or SystemClock()
        self.now: float = self.clock.monotonic()
        self._closed = (
            None if tcp_closed is None else {r: tcp_closed.labels(r) for r in CLOSE_REASONS}
        )
        self.closed_counts: dict[str, int] = dict.fromkeys(CLOSE_REASONS, 0)
        self.port = 0
        self.tls_port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._streams: list[asyncio.Server] = []
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def tcp_count(self) -> int:
        """DNS/TCP messages answered (or dropped) so far."""
        return self.tcp.count

    @property
    def limits(self) -> TcpLimits:
        return self.connections.limits

    @limits.setter
    def limits(self, limits: TcpLimits) -> None:
        """New limits apply to new connections at once and to open ones at the next sweep."""
        self.connections.limits = limits

    def count_closed(self, reason: str) -> None:
        """Count one connection closed by us for `reason`."""
        self.closed_counts[reason] += 1
        if self._closed is not None:
            self._closed[reason].inc()

    def sweep(self) -> None:
        """Set `now`, then close every connection past its deadline."""
        self.now = self.clock.monotonic()
        for stream, reason in self.connections.overdue(self.now):
            self.connections.forget(stream)
            stream.end(reason)

    async def _sweep_forever(self) -> None:
        async def tick() -> None:
            self.sweep()

        await run_every(self.clock, lambda: self.limits.sweep_interval, tick)

    async def start(self, host: str, port: int) -> int:
        """Bind UDP then TCP on the same port (retrying when port 0 drew one TCP has taken).

        A UDP port TCP could not have stays bound until the end, so the kernel cannot
        hand the same port out again on the next try.
        """
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        refused: list[asyncio.DatagramTransport] = []
        try:
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
                    lambda: _Udp(
                        self.responder, self.udp_tally, self.observe_udp, self.sample_mask
                    ),
                    sock=sock,
                )
                try:
                    tcp = await loop.create_server(
                        lambda: _Tcp(self, self.tcp), host, bound, reuse_address=True
                    )
                except OSError:
                    refused.append(transport)
                    if port != 0 or attempt == _BIND_ATTEMPTS - 1:
                        raise
                    continue
                self._udp = transport
                self._streams.append(tcp)
                self.port = bound
                self._start_sweeping()
                return bound
        finally:
            for transport in refused:
                transport.close()
        raise OSError("could not bind DNS on one port for both UDP and TCP")  # pragma: no cover

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext) -> int:
        """DNS over TLS (RFC 7858) on host:port (0 picks one) with `context`; the port.

        The context is used as given, so a certificate loaded into it later
        (`urn.tlsfiles.RotatingContext`) serves every connection opened after.
        """
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Tcp(self, self.dot),
            host,
            port,
            ssl=context,
            ssl_handshake_timeout=self.limits.message_timeout,
            reuse_address=True,
        )
        self._streams.append(server)
        self.tls_port = int(server.sockets[0].getsockname()[1])
        self._start_sweeping()
        return self.tls_port

    def _start_sweeping(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="dns-tcp-deadlines")

    async def stop(self) -> None:
        if self._sweeper is not None:
            await cancel_and_wait([self._sweeper])
            self._sweeper = None
        if self._udp is not None:
            self._udp.close()
        streams, self._streams = self._streams, []
        for server in streams:
            server.close()
        for connection in list(self.connections):
            connection.close()
        for server in streams:
            await server.wait_closed()
