"""HTTP/2 for the HTTPS listener: a thin asyncio shell over the sans-I/O `h2` library.

Owns one connection's streams: their request bytes in, a synchronous handler's reply out.
The handler is called inline when a request ends (no Task per request); None from it
resets the stream with HTTP_1_1_REQUIRED, which curl and browsers answer by asking again
over HTTP/1.1, so routes only aiohttp serves still work for an h2 client.
Bounds (`H2Limits`): streams past `max_concurrent_streams` are refused one by one
(REFUSED_STREAM), a body past `max_body` is answered 413 at once and the rest discarded,
a request not complete within `request_timeout` of its headers is answered 408, and a
connection with no frame from the peer for `idle_timeout` gets GOAWAY and is closed (a
peer that stops granting window or stops reading is idle too, so a stalled reply is held
no longer). Memory per connection: at most `max_concurrent_streams` x `max_body` of
request bodies, plus replies waiting for window, plus `write_buffer` of unread bytes,
past which the connection stops reading.
Never: raises out of a protocol callback, sends past the peer's flow-control window, or
arms a timer per frame or request: one timer per connection, armed at its earliest
deadline, judges them all against times stamped once per read. (A timer of its own
rather than a shared sweep: the protocol needs no owner to register with, so it works
under any listener, and the timer dies with the connection; it fires about once per
`request_timeout` while requests come, and once per `idle_timeout` otherwise.)
Shutdown: h2 sends nothing once its own GOAWAY is queued, not even the rest of a reply,
so `goaway()` writes the frame beside h2 and lets in-flight replies finish first.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import parse_qsl

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from urn.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from h2.events import Event

__all__ = [
    "GOAWAY_REASONS",
    "PREFACE",
    "RESET_REASONS",
    "H2Limits",
    "H2Protocol",
    "H2Reply",
    "H2Request",
    "H2Stats",
    "Handler",
]

log = get_logger("resolver.h2")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # a client's first 24 bytes (RFC 9113 §3.4)
CLOSE_LINGER = 2.0  # seconds a closing connection may take to flush before it is aborted
# h2 treats a stream past the advertised limit as a connection error (GOAWAY, every stream
# lost) where RFC 9113 §5.1.2 asks for a stream error, so h2's own bound sits this far
# above the advertised one and the shell refuses streams past it one by one. Only a burst
# inside a single read, before the peer has seen our SETTINGS, can reach h2's bound.
_STREAM_SLACK = 1000

# Why a stream was reset (metric labels): past max_concurrent_streams or after GOAWAY; a
# malformed request (RFC 9113 section 8.1.1); a route HTTP/2 does not serve; the rest of
# a request answered early (413, 408) that never came; the peer.
RESET_REASONS = ("refused", "malformed", "http_1_1_required", "answered_early", "by_peer")
# Fields RFC 9113 section 8.2.2 forbids in HTTP/2 (`te` is allowed, as "trailers" only).
_CONNECTION_SPECIFIC = frozenset(
    ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade")
)
# Why a connection got GOAWAY (metric labels), or sent one (by_peer).
GOAWAY_REASONS = ("shutdown", "idle", "protocol_error", "by_peer")


@dataclass(frozen=True, slots=True)
class H2Request:
    """One complete request: `headers` has lower-case names (repeats joined by ", "),
    `query` is the path's query string parsed, the first of repeated names winning."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class H2Reply:
    """What a handler answers; the shell adds `content-length`, so `headers` must not."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


Handler: TypeAlias = "Callable[[H2Request], H2Reply | None]"


@dataclass(frozen=True, slots=True)
class H2Limits:
    """How many streams, how big, how slow, with how much unread, per connection."""

    max_concurrent_streams: int = 100  # advertised in SETTINGS; past it, REFUSED_STREAM
    max_body: int = 65535  # request body bytes; past it, 413 (a DNS message's limit)
    max_header_list_size: int = 16 * 1024  # advertised; past it h2 ends the connection
    idle_timeout: float = 30.0  # seconds without a frame from the peer: GOAWAY, close
    request_timeout: float = 5.0  # a request's headers to the end of its body; else 408
    write_buffer: int = 256 * 1024  # bytes the peer has not read: stop reading past this

    def __post_init__(self) -> None:
        if self.max_concurrent_streams < 1 or self.max_body < 0:
            raise ValueError(
                f"HTTP/2 limits: streams {self.max_concurrent_streams} must be at least 1, "
                f"body {self.max_body} at least 0"
            )
        if self.idle_timeout <= 0 or self.request_timeout <= 0:
            raise ValueError(
                f"HTTP/2 timeouts must be positive (idle {self.idle_timeout}, "
                f"request {self.request_timeout})"
            )
        if self.write_buffer < 1 or self.max_header_list_size < 1:
            raise ValueError("HTTP/2 write buffer and header list size must be at least 1")


@dataclass(slots=True)
class H2Stats:
    """Counters one or many connections share (pass one in to read them all together)."""

    connections: int = 0  # opened
    streams: int = 0  # requests accepted
    too_large: int = 0  # answered 413
    timed_out: int = 0  # answered 408
    handler_errors: int = 0  # answered 500
    resets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESET_REASONS, 0))
    goaways: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GOAWAY_REASONS, 0))


class _Stream:
    """A request being received, or its reply waiting for flow-control window."""

    __slots__ = (
        "answered",
        "body",
        "ended",
        "headers",
        "id",
        "method",
        "out",
        "path",
        "sent",
        "started",
    )

    def __init__(self, stream_id: int, started: float) -> None:
        self.id = stream_id
        self.started = started  # when its headers arrived
        self.method = ""
        self.path = ""
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.ended = False  # the peer has sent all of its request
        self.answered = False  # our reply's headers are sent
        self.out = b""  # the reply body
        self.sent = 0  # how much of `out` is sent


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _query(path: str) -> dict[str, str]:
    _, _, string = path.partition("?")
    query: dict[str, str] = {}
    for name, value in parse_qsl(string, keep_blank_values=True):
        query.setdefault(name, value)
    return query


_TOO_LARGE = H2Reply(413, (("content-type", "text/plain"),), b"request body too large\n")
_TOO_SLOW = H2Reply(408, (("content-type", "text/plain"),), b"request not complete in time\n")
_SERVER_ERROR = H2Reply(500, (("content-type", "text/plain"),), b"internal error\n")


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (server side), for a transport that already speaks it.

    Made fresh per connection; `connection_made` sends our SETTINGS. `goaway()` shuts it
    down gracefully, `abort()` at once; `closed` is done once the transport is lost.
    """

    def __init__(
        self, handler: Handler, limits: H2Limits | None = None, stats: H2Stats | None = None
    ) -> None:
        self.handler = handler
        self.limits = limits = limits or H2Limits()
        self.stats = stats or H2Stats()
        self.loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.last = self.loop.time()  # when the peer's last bytes arrived
        self.transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self._paused = False  # the peer is not reading: reply bodies wait
        self._draining = False  # our GOAWAY is sent: no new stream, close once none left
        self._last_stream = 0  # the last stream id our GOAWAY promised to serve
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._unflushed = 0  # body bytes handed to h2 since its queue was last written
        # h2's own header checks cost more than the rest of a request together (about
        # 40 % of its CPU per DoH query); ours are known good going out, and coming in
        # `_on_request` checks what RFC 9113 section 8.1.1 makes a request malformed.
        config = H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
        self._conn = conn = H2Connection(config=config)
        advertised = {
            SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
        }
        conn.local_settings = Settings(client=False, initial_values=advertised)
        conn.decoder.max_header_list_size = limits.max_header_list_size
        self._dispatch: dict[type[Event], Callable[[Event], None]] = {
            RequestReceived: self._on_request,  # type: ignore[dict-item]
            DataReceived: self._on_data,  # type: ignore[dict-item]
            StreamEnded: self._on_end,  # type: ignore[dict-item]
            WindowUpdated: self._on_window,  # type: ignore[dict-item]
            RemoteSettingsChanged: self._on_settings,  # type: ignore[dict-item]
            StreamReset: self._on_reset,  # type: ignore[dict-item]
            ConnectionTerminated: self._on_terminated,  # type: ignore[dict-item]
        }

    @property
    def open_streams(self) -> int:
        """Streams receiving a request or sending a reply."""
        return len(self._streams)

    @property
    def draining(self) -> bool:
        """GOAWAY is sent, or the connection is closing: it takes no new streams."""
        return self._draining or self._closing

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport = stream
        self.stats.connections += 1
        stream.set_write_buffer_limits(high=self.limits.write_buffer)
        self.last = self.loop.time()
        conn = self._conn
        conn.initiate_connection()
        hard = self.limits.max_concurrent_streams + _STREAM_SLACK
        enforced = {
            SettingCodes.MAX_CONCURRENT_STREAMS: hard,
            SettingCodes.MAX_HEADER_LIST_SIZE: self.limits.max_header_list_size,
        }
        conn.local_settings = Settings(client=False, initial_values=enforced)
        self._flush()
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self.last = self.loop.time()
        try:
            events = self._conn.receive_data(data)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        dispatch = self._dispatch
        try:
            for event in events:
                handle = dispatch.get(type(event))
                if handle is not None:
                    try:
                        handle(event)
                    except StreamClosedError as exc:  # reset by the peer later in this read
                        self._streams.pop(exc.stream_id, None)
        except Exception as exc:  # a bug here, or h2 refusing what we asked of it
            log.error("h2_internal_error", error=f"{type(exc).__name__}: {exc}")
            self.abort()
            return
        self._flush()

    def _protocol_error(self, exc: ProtocolError) -> None:
        """Send what h2 queued (its GOAWAY with the error's code), then close."""
        self.stats.goaways["protocol_error"] += 1
        log.info("h2_protocol_error", error=f"{type(exc).__name__}: {exc}")
        queued = self._conn.data_to_send()
        if not queued:  # a bad preface: h2 raises before it queues a GOAWAY
            code = exc.error_code or ErrorCodes.PROTOCOL_ERROR
            frame = GoAwayFrame(0, last_stream_id=0, error_code=code)
            queued = frame.serialize()
        if self.transport is not None:
            self.transport.write(queued)
        self._close()

    def eof_received(self) -> bool | None:
        return None  # the peer is done: close our side too

    def pause_writing(self) -> None:
        # Inside transport.write, past `write_buffer` unread: stop reading and sending
        # bodies until the peer catches up.
        self._paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        transport = self.transport
        if transport is None or self._closing:
            return
        transport.resume_reading()
        with contextlib.suppress(ProtocolError):
            self._push_all()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._streams.clear()
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    # shutdown

    def goaway(self) -> None:
        """GOAWAY (NO_ERROR, the last stream seen), then close once in-flight replies are
        sent; streams the peer opens meanwhile are refused."""
        transport = self.transport
        if self._draining or self._closing or transport is None or transport.is_closing():
            return
        self.stats.goaways["shutdown"] += 1
        self._send_goaway()
        if not self._streams:
            self._close()

    def abort(self) -> None:
        """Close now, dropping whatever is unsent."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def _send_goaway(self) -> None:
        # h2's own close_connection moves its state machine to CLOSED, after which it sends
        # nothing more, not even the rest of a reply: so the GOAWAY is written beside it,
        # on a frame boundary (h2's queue flushed first), and h2 carries on serving.
        self._draining = True
        self._last_stream = self._conn.highest_inbound_stream_id
        self._flush()
        if self.transport is not None:
            frame = GoAwayFrame(0, last_stream_id=self._last_stream, error_code=0)
            self.transport.write(frame.serialize())

    def _close(self) -> None:
        """Flush what is queued and close; abort if the peer has not closed soon after."""
        if self._closing:
            return
        self._closing = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._flush()
        if transport.can_write_eof():
            # TCP: our FIN after the GOAWAY, then read (and drop) until the peer's. Closing
            # with the peer's bytes unread would send a reset, and a reset can destroy the
            # GOAWAY in the peer's buffers before it is read.
            try:
                transport.write_eof()
            except OSError:  # the peer is gone already
                transport.abort()
                return
        else:
            transport.close()  # TLS: close_notify, and asyncio reads until the peer's
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(CLOSE_LINGER, transport.abort)

    # events

    def _on_request(self, event: RequestReceived) -> None:
        sid = event.stream_id
        streams = self._streams
        if self._draining or len(streams) >= self.limits.max_concurrent_streams:
            self._reset(sid, ErrorCodes.REFUSED_STREAM, "refused")
            return
        stream = _Stream(sid, self.last)
        headers = stream.headers
        regular = False  # a regular field seen: pseudo-fields may come no later
        scheme = ""
        for raw_name, raw_value in event.headers:
            name = _text(raw_name)
            value = _text(raw_value)
            if not name or name != name.lower() or name in _CONNECTION_SPECIFIC:
                self._reset(sid, ErrorCodes.PROTOCOL_ERROR, "malformed")
                return
            if name[0] == ":":
                if regular:
                    self._reset(sid, ErrorCodes.PROTOCOL_ERROR, "malformed")
                    return
                if name == ":method":
                    stream.method = value
                elif name == ":path":
                    stream.path = value
                elif name == ":scheme":
                    scheme = value
            elif name in headers:
                regular = True
                headers[name] += ", " + value
            else:
                regular = True
                headers[name] = value
        if not stream.method or not scheme or stream.path[:1] != "/":
            self._reset(sid, ErrorCodes.PROTOCOL_ERROR, "malformed")
            return
        streams[sid] = stream
        self.stats.streams += 1
        timer = self._timer
        if timer is not None and timer.when() > stream.started + self.limits.request_timeout:
            self._arm()
        declared = headers.get("content-length", "")
        # h2 has refused a content-length that is no number; 19 digits pass any limit.
        number = declared.isascii() and declared.isdigit()
        if number and (len(declared) > 18 or int(declared) > self.limits.max_body):
            self._too_large(stream)

    def _on_data(self, event: DataReceived) -> None:
        sid = event.stream_id
        # Every byte is handed back at once, kept or discarded: a body never stalls.
        self._conn.acknowledge_received_data(event.flow_controlled_length or 0, sid)
        stream = self._streams.get(sid)
        if stream is None or stream.answered:
            return
        stream.body += event.data
        if len(stream.body) > self.limits.max_body:
            self._too_large(stream)

    def _on_end(self, event: StreamEnded) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None:
            return
        stream.ended = True
        if stream.answered:  # answered early: done once its reply is sent
            if stream.sent >= len(stream.out):
                self._done(stream)
            return
        path = stream.path
        request = H2Request(stream.method, path, _query(path), stream.headers, bytes(stream.body))
        stream.body = bytearray()
        try:
            reply = self.handler(request)
        except Exception as exc:
            self.stats.handler_errors += 1
            log.error("h2_handler_error", error=f"{type(exc).__name__}: {exc}", path=path[:200])
            reply = _SERVER_ERROR
        if reply is None:
            del self._streams[stream.id]
            self._reset(stream.id, ErrorCodes.HTTP_1_1_REQUIRED, "http_1_1_required")
            self._drained()
            return
        self._answer(stream, reply)

    def _on_window(self, event: WindowUpdated) -> None:
        if event.stream_id == 0:
            self._push_all()
        else:
            stream = self._streams.get(event.stream_id)
            if stream is not None and stream.answered:
                self._push(stream)

    def _on_settings(self, event: RemoteSettingsChanged) -> None:
        changed = event.changed_settings
        if SettingCodes.INITIAL_WINDOW_SIZE in changed or SettingCodes.MAX_FRAME_SIZE in changed:
            self._push_all()

    def _on_reset(self, event: StreamReset) -> None:
        if self._streams.pop(event.stream_id, None) is not None:
            if event.remote_reset:
                self.stats.resets["by_peer"] += 1
            self._drained()

    def _on_terminated(self, event: ConnectionTerminated) -> None:
        # h2 sends nothing after the peer's GOAWAY, so in-flight replies cannot finish.
        self.stats.goaways["by_peer"] += 1
        self._streams.clear()
        self._close()

    # replies

    def _answer(self, stream: _Stream, reply: H2Reply) -> None:
        body = reply.body
        headers = [(":status", str(reply.status)), *reply.headers]
        headers.append(("content-length", str(len(body))))
        if stream.method == "HEAD":
            body = b""
        stream.answered = True
        stream.out = body
        self._conn.send_headers(stream.id, headers, end_stream=not body)
        if body:
            self._push(stream)
        else:
            self._sent(stream)
        # Each reply in writes of its own, so over TLS in records of its own: a client
        # that reads one record at a time and keeps one message buffer per connection
        # (dnsperf) would otherwise see several replies run together.
        self._flush()

    def _push(self, stream: _Stream) -> None:
        """Send as much of the reply body as the peer's windows allow."""
        conn = self._conn
        out = stream.out
        total = len(out)
        while stream.sent < total and not self._paused:
            room = min(conn.local_flow_control_window(stream.id), conn.max_outbound_frame_size)
            if room <= 0:
                return  # the rest goes on WindowUpdated
            start = stream.sent
            stream.sent = end = min(total, start + room)
            conn.send_data(stream.id, out[start:end], end_stream=end == total)
            self._unflushed += end - start
            if self._unflushed >= self.limits.write_buffer:
                self._flush()  # may pause_writing, which stops this loop
        if stream.sent >= total:
            self._sent(stream)

    def _push_all(self) -> None:
        for stream in list(self._streams.values()):
            if stream.answered and stream.sent < len(stream.out):
                try:
                    self._push(stream)
                except StreamClosedError:
                    self._streams.pop(stream.id, None)

    def _sent(self, stream: _Stream) -> None:
        # Answered before the request ended (413, 408): the rest of its body is read and
        # dropped until it ends, as curl expects (it reports a reset after the reply, even
        # NO_ERROR, as a failed transfer); a body still coming at `request_timeout` is
        # asked to stop, without error (RFC 9113 section 8.1), by the timer.
        if stream.ended:
            self._done(stream)
            return
        timer = self._timer
        if timer is not None and timer.when() > stream.started + self.limits.request_timeout:
            self._arm()

    def _done(self, stream: _Stream) -> None:
        self._streams.pop(stream.id, None)
        self._drained()

    def _drained(self) -> None:
        if self._draining and not self._streams:
            self._close()

    def _too_large(self, stream: _Stream) -> None:
        self.stats.too_large += 1
        stream.body = bytearray()
        self._answer(stream, _TOO_LARGE)

    def _reset(self, stream_id: int, code: ErrorCodes, reason: str) -> None:
        self._conn.reset_stream(stream_id, code)
        self.stats.resets[reason] += 1

    def _flush(self) -> None:
        self._unflushed = 0
        data = self._conn.data_to_send()
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    # deadlines

    def _arm(self) -> None:
        """(Re)arm the connection's one timer at its earliest deadline."""
        if self._closing:
            return  # the timer is the linger's now
        if self._timer is not None:
            self._timer.cancel()
        limits = self.limits
        deadline = self.last + limits.idle_timeout
        for stream in self._streams.values():
            # a reply still waiting for window is bounded by the idle deadline instead
            if not stream.ended and (not stream.answered or stream.sent >= len(stream.out)):
                deadline = min(deadline, stream.started + limits.request_timeout)
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closing:
            return
        now = self.loop.time()
        limits = self.limits
        if now - self.last >= limits.idle_timeout:
            self.stats.goaways["idle"] += 1
            self._streams.clear()
            self._send_goaway()
            self._close()
            return
        for stream in list(self._streams.values()):
            if stream.ended or now - stream.started < limits.request_timeout:
                continue
            if stream.answered:  # its reply is out; the rest of its body never came
                if stream.sent >= len(stream.out):
                    self._reset(stream.id, ErrorCodes.NO_ERROR, "answered_early")
                    self._done(stream)
                continue
            self.stats.timed_out += 1
            stream.body = bytearray()
            try:
                self._answer(stream, _TOO_SLOW)
            except StreamClosedError:
                self._streams.pop(stream.id, None)
        self._flush()
        if not self._closing:
            self._arm()
