"""RFC 7766 bounds on DNS over a stream (TCP now, TLS later): which connection to close.

Owns: the limits (`TcpLimits`) and the book of open connections (`Connections`): who must
go to admit one more, and who is past a deadline. Rule 1: a source (an IPv4 address, an
IPv6 /64) holds at most `per_source` connections and all together at most
`max_connections`; past either, the idlest connection (of that source, else of all) is
closed to admit the new one, never the new one refused. Rule 2: idle means time since the
last complete message, or since the connection opened: bytes of an unfinished message
are not activity, so a client dribbling bytes is always the idlest and never re-arms a
deadline. Rule 3: an unfinished message must complete within `message_timeout` of its
first byte; a connection without one closes after `idle_timeout`.
Never: touches sockets, timers or clocks (`now` is passed in), or reads a connection's
bytes. Cost: O(1) to forget; O(connections) to admit once full and per sweep; nothing
per message (the shell stamps two floats on the connection).
"""

# urn: pure

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["CLOSE_REASONS", "Connections", "Stream", "TcpLimits", "source_key"]

# Why a connection was closed by us (metric labels): its source held `per_source`, all
# held `max_connections`, its message took too long, or it sent nothing for too long.
CLOSE_REASONS = ("source_limit", "connection_limit", "message_timeout", "idle_timeout")


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """How many stream connections, from whom, for how long, with how much unread."""

    max_connections: int = 1024  # all sources together
    per_source: int = 64  # one IPv4 address or IPv6 /64
    idle_timeout: float = 10.0  # seconds without a complete message (RFC 7766 6.2.3)
    message_timeout: float = 5.0  # first byte of a length prefix to the message's last
    write_buffer: int = 64 * 1024  # replies the client has not read: stop reading past this

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.per_source < 1:
            raise ValueError(
                f"TCP connection limits must be at least 1 (max {self.max_connections}, "
                f"per source {self.per_source})"
            )
        if self.idle_timeout <= 0 or self.message_timeout <= 0:
            raise ValueError(
                f"TCP timeouts must be positive (idle {self.idle_timeout}, "
                f"message {self.message_timeout})"
            )
        if self.write_buffer < 1:
            raise ValueError(f"TCP write buffer {self.write_buffer} must be at least 1 byte")

    @property
    def sweep_interval(self) -> float:
        """How often deadlines are judged: a quarter of the shorter one, 10 to 250 ms; a
        deadline holds to within one sweep."""
        return min(0.25, max(0.01, min(self.idle_timeout, self.message_timeout) / 4))


class Stream(Protocol):
    """What the book reads of a connection; the shell's protocol object is one."""

    last: float  # when it opened, or when its last complete message arrived
    started: float  # when the first byte of its unfinished message arrived; 0: none


S = TypeVar("S", bound=Stream)


def source_key(host: str) -> str:
    """The client a connection counts against: an IPv4 address, or an IPv6 address's /64."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host  # not an IP address (a Unix socket path, say): counted as itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _last(stream: Stream) -> float:
    return stream.last


class Connections(Generic[S]):
    """The open connections by source, in the order they opened.

    Among equally idle connections the one that opened first goes first, so a connection
    that has just opened is the last to be chosen whatever the clock's resolution.
    """

    def __init__(self, limits: TcpLimits) -> None:
        self.limits = limits
        self._all: dict[S, str] = {}  # connection -> source key, in opening order
        self._by_source: dict[str, dict[S, None]] = {}

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._all))

    def __contains__(self, stream: object) -> bool:
        return stream in self._all

    def sources(self) -> dict[str, int]:
        """How many connections each source holds."""
        return {source: len(peers) for source, peers in self._by_source.items()}

    def admit(self, stream: S, source: str) -> list[tuple[S, str]]:
        """Add `stream` from `source`; the connections to close to make room (already
        forgotten), each with its `CLOSE_REASONS` label."""
        limits = self.limits
        victims: list[tuple[S, str]] = []
        peers = self._by_source.get(source)
        while peers and len(peers) >= limits.per_source:
            victims.append((self._evict(min(peers, key=_last)), "source_limit"))
        while len(self._all) >= limits.max_connections:
            victims.append((self._evict(min(self._all, key=_last)), "connection_limit"))
        self._all[stream] = source
        self._by_source.setdefault(source, {})[stream] = None
        return victims

    def forget(self, stream: S) -> None:
        """`stream` has closed (a no-op for one already forgotten)."""
        source = self._all.pop(stream, None)
        if source is None:
            return
        peers = self._by_source[source]
        del peers[stream]
        if not peers:
            del self._by_source[source]

    def overdue(self, now: float) -> list[tuple[S, str]]:
        """Connections past a deadline at `now`, with their `CLOSE_REASONS` label (still in
        the book: close them, and forget each as it closes)."""
        message = self.limits.message_timeout
        idle = self.limits.idle_timeout
        late: list[tuple[S, str]] = []
        for stream in self._all:
            if stream.started:
                if now - stream.started > message:
                    late.append((stream, "message_timeout"))
            elif now - stream.last > idle:
                late.append((stream, "idle_timeout"))
        return late

    def _evict(self, stream: S) -> S:
        self.forget(stream)
        return stream
