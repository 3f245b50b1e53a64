"""One listening port for HTTP/2 (`resolver.h2server`) and HTTP/1.1 (aiohttp) alike.

Each accepted connection starts with a dispatching protocol that hands the transport on
(`transport.set_protocol`, then the new protocol's `connection_made`) once it knows what
the peer speaks. With TLS, ALPN decides right after the handshake: `h2` gets an
`H2Protocol`, anything else (`http/1.1`, or no ALPN) aiohttp's handler. In cleartext,
HTTP/2 is by prior knowledge only (no Upgrade): the first bytes are held until they match
the 24-byte client preface or stop matching it, then handed on with the transport; a peer
that sends neither within `preface_timeout` (urn.http's HEADER_DEADLINE) is closed, as is
a TLS handshake that has not finished by then.
HTTP/1.1 connections get the handler the runner's aiohttp `Server` makes, which joins
`Server.connections` in its own `connection_made`: so the runner's `HeaderDeadline` and
`ConnectionCap` (urn.http) bound them exactly as on a `TCPSite`. HTTP/2 connections are
this site's own: at most `max_h2_connections` at once, past which the idlest without a
stream in flight gets GOAWAY (else the newcomer does), the rule ConnectionCap follows.
`DualSite` is an aiohttp site, so `runner.cleanup()` stops it first as it does a TCPSite;
`close()` may be called before that, and either way every HTTP/2 connection gets GOAWAY
and up to `drain_timeout` to finish its replies.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from resolver.h2server import PREFACE
from urn.http import HEADER_DEADLINE, HTTP_CONNECTIONS

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

    from resolver.h2server import H2Protocol

__all__ = ["ALPN", "DRAIN_TIMEOUT", "DualSite", "open_dual_site"]

ALPN = ["h2", "http/1.1"]  # what the TLS context offers, in our order of preference
DRAIN_TIMEOUT = 5.0  # seconds HTTP/2 connections get to finish their replies on close


class DualSite(web.BaseSite):
    """A runner's site serving HTTP/2 and HTTP/1.1 on one port; `port` is the bound one.

    `h2` makes the protocol for each HTTP/2 connection. `h2_evicted` and `h2_refused`
    count connections sent away past `max_h2_connections` (the idlest, or the newcomer).
    """

    __slots__ = (
        "_bound",
        "_drain",
        "_h2",
        "_host",
        "_live",
        "_max_h2",
        "_port",
        "_preface",
        "h2_evicted",
        "h2_refused",
    )

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        h2: Callable[[], H2Protocol],
        max_h2_connections: int = HTTP_CONNECTIONS,
        drain_timeout: float = DRAIN_TIMEOUT,
        preface_timeout: float = HEADER_DEADLINE,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        if max_h2_connections < 1:
            raise ValueError(f"HTTP/2 connection cap {max_h2_connections} must be at least 1")
        self._host = host
        self._port = port
        self._bound = port
        self._h2 = h2
        self._max_h2 = max_h2_connections
        self._drain = drain_timeout
        self._preface = preface_timeout
        self._live: set[H2Protocol] = set()
        self.h2_evicted = 0
        self.h2_refused = 0

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._bound}"

    @property
    def port(self) -> int:
        return self._bound

    @property
    def h2_connections(self) -> int:
        """HTTP/2 connections open now."""
        return len(self._live)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Dispatch(self),
            self._host,
            self._port,
            ssl=self._ssl_context,
            # a handshake that never finishes holds a descriptor outside every cap
            ssl_handshake_timeout=self._preface if self._ssl_context else None,
            backlog=self._backlog,
            reuse_address=True,
        )
        self._server = server
        sockets = server.sockets
        if sockets:
            self._bound = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening; GOAWAY to every HTTP/2 connection, abort what has not drained."""
        await super().stop()
        live = list(self._live)
        for protocol in live:
            protocol.goaway()
        pending = [protocol.closed for protocol in live if not protocol.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=self._drain)
        for protocol in live:
            if not protocol.closed.done():
                protocol.abort()

    async def close(self) -> None:
        """`stop`, unless the runner has stopped this site already."""
        if self in self._runner.sites:
            await self.stop()

    def _http1(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None  # BaseSite refuses a runner that is not set up
        return server()

    def _admit(self, newcomer: H2Protocol) -> None:
        live = self._live
        live.add(newcomer)
        newcomer.closed.add_done_callback(lambda _: live.discard(newcomer))
        if len(live) <= self._max_h2:
            return
        active = [p for p in live if not p.draining]  # those sent away are on their way out
        if len(active) <= self._max_h2:
            return
        idle = [p for p in active if p is not newcomer and not p.open_streams]
        if idle:
            victim = min(idle, key=lambda p: p.last)
            self.h2_evicted += 1
        else:
            victim = newcomer
            self.h2_refused += 1
        victim.goaway()


class _Dispatch(asyncio.Protocol):
    """A connection's first protocol: learns what the peer speaks, then hands over."""

    def __init__(self, site: DualSite) -> None:
        self._site = site
        self._transport: asyncio.Transport | None = None
        self._held = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream: asyncio.Transport = transport  # type: ignore[assignment]
        self._transport = stream
        if self._site._ssl_context is not None:  # called once the handshake is done
            ssl_object = stream.get_extra_info("ssl_object")
            alpn = None if ssl_object is None else ssl_object.selected_alpn_protocol()
            self._hand_over(alpn == "h2", b"")
        else:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._site._preface, stream.abort)

    def data_received(self, data: bytes) -> None:
        held = self._held + data
        size = min(len(held), len(PREFACE))
        if held[:size] != PREFACE[:size]:
            self._hand_over(False, held)
        elif len(held) >= len(PREFACE):
            self._hand_over(True, held)
        else:
            self._held = held

    def eof_received(self) -> bool | None:
        return None  # nothing decided and nothing more coming: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _hand_over(self, h2: bool, data: bytes) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self._transport
        assert transport is not None
        self._held = b""
        site = self._site
        protocol: asyncio.Protocol
        if h2:
            protocol = h2_protocol = site._h2()
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            site._admit(h2_protocol)
        else:
            protocol = site._http1()
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
        if data and not transport.is_closing():
            protocol.data_received(data)


async def open_dual_site(
    runner: web.BaseRunner,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    h2: Callable[[], H2Protocol],
    *,
    max_h2_connections: int = HTTP_CONNECTIONS,
    drain_timeout: float = DRAIN_TIMEOUT,
    preface_timeout: float = HEADER_DEADLINE,
) -> DualSite:
    """Listen on host:port (0 picks one) for a set-up runner, HTTP/2 beside HTTP/1.1.

    `ssl_context`, when given, is set to offer ALPN `h2` then `http/1.1` (so give this
    listener a context of its own, not one shared with DNS-over-TLS). OSError when the
    address cannot be had.
    """
    if ssl_context is not None:
        ssl_context.set_alpn_protocols(ALPN)
    site = DualSite(
        runner,
        host,
        port,
        ssl_context=ssl_context,
        h2=h2,
        max_h2_connections=max_h2_connections,
        drain_timeout=drain_timeout,
        preface_timeout=preface_timeout,
    )
    await site.start()
    return site
