"""HTTP/HTTPS/TCP probes on raw non-blocking sockets: I/O only, verdicts from classify.

Owns: one connection per probe, one request (after a TLS handshake for HTTPS), handing
the answer to classify (`status_verdict` for its first bytes, a `ResponseScanner` when
they do not settle it), and ending every probe by its deadline with exactly one
`Reason` through `record`. Never: decides what is healthy, retries, backs off.
Cost: one socket and one `_Probe` per probe (and a scanner only for an answer its first
bytes do not settle), in one edge-triggered epoll set the loop watches as one reader;
no Task, future, transport or timer. A near target's connection is up when connect
returns, so its request goes right then: one ready event per probe.
Deadlines (`sweep`) run on loop-available time, so our own stalls never read as target
timeouts; docs/checker.md "The probe path" has the whole design. Linux only (epoll).
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import ipaddress
import math
import os
import select
import socket
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any

from checker.classify import ResponseScanner, classify_error, status_verdict
from urn.config import CheckType
from urn.table import Reason

if TYPE_CHECKING:
    from collections.abc import Callable

    from urn.config import Check

__all__ = ["ProbeEngine", "Target", "compile_target", "open_socket", "tls_contexts"]

USER_AGENT = "urn-checker/1"
_HEALTHY = int(Reason.HEALTHY)
_TIMEOUT = int(Reason.TIMEOUT)
_LOCAL = int(Reason.LOCAL)
READ_SIZE = 16384  # one recv; the scanner needs at most its head bound plus the window
MAX_EVENTS = 128  # ready probes run per loop callback (a few ms), so timers interleave
# Names waiting on the resolver threads at once. Past it our own resolver is not keeping
# up (hung, or far too slow): a new probe of a name ends at once as LOCAL (no data)
# instead of queueing without bound behind the ones already stuck.
MAX_RESOLVING = 256

# Edge-triggered, both ways, for the probe's whole life: no epoll_ctl after the first.
# The first EPOLLOUT edge says the connect finished; later edges say new bytes arrived
# (or send room freed). Edge-triggered means each step runs until it would block.
_WATCH = select.EPOLLIN | select.EPOLLOUT | select.EPOLLET
# A request already sent: only the answer (or the connection's end) is still to come.
_WATCH_ANSWER = select.EPOLLIN | select.EPOLLET
# After a request could not go out with its connect (the connection was not up yet: a
# target further away than this host), this many probes of the target wait for the
# connect's edge before one tries again, so a remote target pays one failed send in
# EARLY_SEND_BACKOFF + 1 probes and a near one (a sidecar, loopback) none.
EARLY_SEND_BACKOFF = 64
_FAILED = select.EPOLLERR | select.EPOLLHUP
_READABLE = select.EPOLLIN | _FAILED
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_IN_PROGRESS = frozenset((0, errno.EINPROGRESS))
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

# Probe states: what the next ready event means.
_RESOLVING, _CONNECTING, _HANDSHAKE, _SENDING, _READING = range(5)

# The C socket type: the `socket.socket` subclass adds Python-level bookkeeping for
# makefile() that a probe never uses, about a microsecond per probe. A seam for tests too.
open_socket: Callable[[int, int], _socket.socket] = _socket.socket


class Target:
    """One check compiled for the probe path: address, request bytes, TLS, deadline."""

    __slots__ = (
        "address",
        "early_wait",
        "family",
        "host",
        "is_tcp",
        "numeric",
        "port",
        "request",
        "search",
        "server_hostname",
        "session",
        "slot",
        "ssl",
        "timeout",
    )

    def __init__(
        self,
        slot: int,
        host: str,
        port: int,
        timeout: float,
        *,
        request: bytes = b"",
        search: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.slot = slot
        self.host = host
        self.port = port
        self.timeout = timeout
        self.request = request
        self.search = search
        self.ssl = ssl_context
        self.session: ssl.SSLSession | None = None  # the last one the target gave us
        self.early_wait = 0 if ssl_context is None else -1  # probes to wait; -1: never early
        self.is_tcp = not request
        self.server_hostname = host if ssl_context is not None else None
        self.address: tuple[Any, ...] = (host, port)
        try:
            version = ipaddress.ip_address(host).version
        except ValueError:
            self.numeric = False
            self.family = socket.AF_UNSPEC  # known once the name resolves
        else:
            self.numeric = True
            self.family = socket.AF_INET6 if version == 6 else socket.AF_INET


def tls_contexts(ca_file: str | None = None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(no-verify, verify) client contexts for HTTPS checks; verify uses `ca_file` if given.

    The no-verify context holds no trust store: OpenSSL still runs its verification
    (and ignores the result), and with the system store that means looking issuers up
    in the CA directory on every full handshake, most of the cost of one.
    """
    lax = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    strict = ssl.create_default_context(cafile=ca_file)
    return lax, strict


def compile_target(check: Check, lax: ssl.SSLContext, strict: ssl.SSLContext) -> Target:
    """The probe-path form of a check (built once per config pass, reused every probe)."""
    if check.type is CheckType.TCP:
        return Target(check.slot, check.host, check.port, check.timeout)
    default_port = 443 if check.type is CheckType.HTTPS else 80
    host_header = check.host if check.port == default_port else f"{check.host}:{check.port}"
    if ":" in check.host:  # IPv6 literal
        host_header = f"[{check.host}]" + ("" if check.port == default_port else f":{check.port}")
    request = (
        f"GET {check.path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    context = None
    if check.type is CheckType.HTTPS:
        context = strict if check.verify_tls else lax
    return Target(
        check.slot,
        check.host,
        check.port,
        check.timeout,
        request=request,
        search=check.search.encode() if check.search is not None else None,
        ssl_context=context,
    )


def _os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))  # the errno's own subclass (refused, reset...)


class _Probe:
    """One probe: its socket, where it stands, and its deadline on the available clock."""

    __slots__ = (
        "deadline",
        "done",
        "engine",
        "fd",
        "out",
        "scanner",
        "sock",
        "started",
        "state",
        "target",
    )

    def __init__(self, engine: ProbeEngine, target: Target, started: float) -> None:
        self.engine = engine
        self.target = target
        self.started = started
        self.deadline = started - engine.stalled + target.timeout  # on the available clock
        self.done = False
        self.state = _CONNECTING
        self.sock: _socket.socket | None = None
        self.fd = -1
        self.out = target.request  # bytes still to send
        self.scanner: ResponseScanner | None = None  # made only if the first bytes do not settle it

    def resolved(self, future: asyncio.Future[list[Any]]) -> None:
        """The name's addresses are known (or not): connect to the first."""
        self.engine.resolving -= 1
        if self.done or future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.engine.finish(self, int(classify_error(exc, "resolve")))
            return
        family, _, _, _, address = future.result()[0]
        self.engine.connect(self, family, address)

    def ready(self, events: int) -> None:
        """The socket is ready: move through the stages until one would block, then read
        the answer (most ready events come for it: the request went with the connect)."""
        if self.state != _READING and not self._advance(events):
            return
        sock = self.sock
        assert sock is not None
        while True:
            try:
                data = sock.recv(READ_SIZE)
            except _WOULD_BLOCK:
                return
            except Exception as exc:
                self.engine.finish(self, int(classify_error(exc, "exchange")))
                return
            scanner = self.scanner
            if scanner is not None:
                verdict = scanner.feed(data) if data else scanner.eof()
            else:
                # Most answers are settled by their status line, in their first bytes:
                # those need no scanner (an object per probe, and its state).
                search = self.target.search
                verdict = status_verdict(data) if data and search is None else 0
                if not verdict:
                    scanner = self.scanner = ResponseScanner(search)
                    verdict = scanner.feed(data) if data else scanner.eof()
            if verdict:
                if self.target.ssl is not None and not sock.session_reused:  # type: ignore[attr-defined]
                    # A new session (the offered one was refused, or none was offered): keep
                    # it for the next probe. Taking one is dear (Python copies it through
                    # DER), so a session that resumed is kept as it is.
                    self.target.session = sock.session  # type: ignore[attr-defined]
                self.engine.finish(self, verdict)
                return

    def _advance(self, events: int) -> bool:
        """The stages before the answer (connect, handshake, request): True when the
        request is out and the answer may be read now."""
        state = self.state
        if state == _CONNECTING:
            sock = self.sock
            assert sock is not None
            if events & _FAILED:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self.engine.finish(self, int(classify_error(_os_error(code), "connect")))
                    return False
            target = self.target
            if target.is_tcp:
                self.engine.finish(self, _HEALTHY)
                return False
            if target.ssl is not None:
                self.sock = target.ssl.wrap_socket(
                    sock,  # type: ignore[arg-type]  # the C type has all it uses
                    server_hostname=target.server_hostname,
                    do_handshake_on_connect=False,
                    session=target.session,
                )
                state = self.state = _HANDSHAKE
            else:
                state = self.state = _SENDING
        if state == _HANDSHAKE and not self._handshake():
            return False
        if self.state == _SENDING:
            if not self._send():
                return False
            if not events & _READABLE:
                return False  # nothing had come: what comes next is an edge of its own
        return True

    def _handshake(self) -> bool:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except _WOULD_BLOCK:
            return False
        except Exception as exc:
            self.engine.finish(self, int(classify_error(exc, "connect")))
            return False
        self.engine.tls_handshakes += 1
        if sock.session_reused:
            self.engine.tls_resumed += 1
        self.state = _SENDING
        return True

    def _send(self) -> bool:
        sock = self.sock
        assert sock is not None
        try:
            sent = sock.send(self.out)
        except _WOULD_BLOCK:
            return False
        except Exception as exc:
            self.engine.finish(self, int(classify_error(exc, "exchange")))
            return False
        if sent < len(self.out):  # rare: no room for a whole request on a new connection
            self.out = self.out[sent:]
            return False
        self.state = _READING
        return True


class ProbeEngine:
    """Starts probes, ends each with one verdict, and enforces deadlines by sweeping."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        record: Callable[[Target, int, float, float], None],
    ) -> None:
        """`record(target, reason, started, finished)` is called once per probe."""
        self._monotonic = monotonic
        self._record = record
        self._by_timeout: dict[float, deque[_Probe]] = {}
        self._by_fd: dict[int, _Probe] = {}
        self._poll: select.epoll | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.in_flight = 0
        self.resolving = 0  # names handed to the resolver threads and not yet answered
        self._last_sweep = -math.inf  # on the available clock
        self.stalled = 0.0  # seconds of loop stall so far: the wall clock minus the available
        self.tls_handshakes = 0  # HTTPS handshakes completed, and how many resumed a session
        self.tls_resumed = 0

    def start(self, target: Target, now: float) -> None:
        """Open a probe of `target` now (its connect is issued before this returns); it
        must end by `now + target.timeout`. Read `now` just before the call: time spent
        starting earlier probes of a batch is not the target's."""
        probe = _Probe(self, target, now)
        self.in_flight += 1
        queue = self._by_timeout.get(target.timeout)
        if queue is None:
            queue = self._by_timeout[target.timeout] = deque()
        queue.append(probe)
        if target.numeric:
            self.connect(probe, target.family, target.address)
            return
        if self.resolving >= MAX_RESOLVING:
            self.finish(probe, _LOCAL)
            return
        self.resolving += 1
        probe.state = _RESOLVING  # in a worker thread, as the loop's own getaddrinfo does
        future = asyncio.get_running_loop().run_in_executor(
            None, socket.getaddrinfo, target.host, target.port, 0, socket.SOCK_STREAM
        )
        future.add_done_callback(probe.resolved)

    def connect(self, probe: _Probe, family: int, address: tuple[Any, ...]) -> None:
        """Issue `probe`'s connect and watch its socket (a step of `start`)."""
        try:
            sock = open_socket(family, _STREAM)
        except OSError as exc:  # out of descriptors, most likely: our trouble, not theirs
            self.finish(probe, int(classify_error(exc, "connect")))
            return
        try:
            code = sock.connect_ex(address)
        except OSError as exc:
            code = exc.errno or errno.EINVAL
        if code not in _IN_PROGRESS:
            sock.close()
            self.finish(probe, int(classify_error(_os_error(code), "connect")))
            return
        watch = _WATCH
        probe.state = _CONNECTING
        target = probe.target
        if not target.early_wait:
            # A near target's connection is up when connect returns (the handshake ran in
            # the same system call): sending now saves the connect's edge and its wake.
            # A TCP check sends nothing: an empty send only asks whether it is up.
            try:
                sent = sock.send(probe.out)
            except BlockingIOError:  # not up yet: send on the connect's edge, as before
                target.early_wait = EARLY_SEND_BACKOFF
            except Exception as exc:  # refused (or reset) with the connect: no data went
                sock.close()
                self.finish(probe, int(classify_error(exc, "connect")))
                return
            else:
                if target.is_tcp:
                    sock.close()
                    self.finish(probe, _HEALTHY)
                    return
                if sent == len(probe.out):
                    probe.state = _READING
                    watch = _WATCH_ANSWER
                else:  # rare: the rest goes on the next edge
                    probe.out = probe.out[sent:]
                    probe.state = _SENDING
        elif target.early_wait > 0:
            target.early_wait -= 1
        fd = sock.fileno()
        try:
            (self._poll or self._watch()).register(fd, watch)
        except OSError:  # the epoll set is full (max_user_watches): our own limit
            sock.close()
            self.finish(probe, _LOCAL)
            return
        probe.sock = sock
        probe.fd = fd
        self._by_fd[fd] = probe

    def _watch(self) -> select.epoll:
        """The epoll set of every probe socket, watched by the running loop as one fd."""
        loop = asyncio.get_running_loop()
        poll = select.epoll()
        loop.add_reader(poll.fileno(), self._ready)
        self._loop = loop
        self._poll = poll
        return poll

    def _ready(self) -> bool:
        """The loop's one reader: run the probes whose sockets are ready, at most
        MAX_EVENTS of them (the loop calls again while more are); True if that was all."""
        poll = self._poll
        if poll is None:
            return True
        by_fd = self._by_fd
        ready = poll.poll(0, MAX_EVENTS)
        for fd, events in ready:
            probe = by_fd.get(fd)
            if probe is None:
                continue
            try:
                probe.ready(events)
            except Exception as exc:  # a probe's surprise must never stop the others
                self.finish(probe, int(classify_error(exc, "exchange")))
        return len(ready) < MAX_EVENTS

    def finish(self, probe: _Probe, verdict: int) -> None:
        """End `probe` with `verdict` (first call wins) and close its connection."""
        if probe.done:
            return
        probe.done = True
        self.in_flight -= 1
        sock = probe.sock
        if sock is not None:
            probe.sock = None
            del self._by_fd[probe.fd]
            sock.close()  # also leaves the epoll set
        self._record(probe.target, verdict, probe.started, self._monotonic())

    def sweep(self, now: float, stalled: float = 0.0) -> None:
        """End as a timeout every probe whose deadline had passed at the previous sweep.

        `stalled`: how much later than planned the loop woke for this sweep (seconds in
        which it could read nothing). It is added to every in-flight probe's deadline, so
        a probe is timed out only after its target had its whole timeout of time in which
        the loop was available to read the answer, whatever stage (connect, handshake,
        request, response) the stall interrupted.

        Every socket already ready is read first, and the cutoff is the previous sweep's
        time, not `now`: so an answer that arrived before a deadline has been read before
        the probe is called timed out, however many answers arrived at once.
        """
        while not self._ready():
            pass
        if stalled > 0.0:
            self.stalled += stalled
        cutoff = self._last_sweep
        self._last_sweep = now - self.stalled
        finish = self.finish
        for queue in self._by_timeout.values():
            while queue and queue[0].deadline <= cutoff:
                probe = queue.popleft()
                if not probe.done:
                    finish(probe, _TIMEOUT)

    def next_deadline(self) -> float | None:
        """The earliest deadline among probes still queued for the sweep (wall clock, if
        the loop does not stall before it)."""
        heads = [q[0].deadline for q in self._by_timeout.values() if q]
        return min(heads) + self.stalled if heads else None

    def prune(self) -> None:
        """Forget FIFOs of timeouts no longer in use (call once per config pass)."""
        for timeout in [t for t, q in self._by_timeout.items() if not q]:
            del self._by_timeout[timeout]

    def abort_all(self) -> None:
        """Shut down: end every in-flight probe without recording it, stop watching."""
        for queue in self._by_timeout.values():
            while queue:
                probe = queue.popleft()
                if probe.done:
                    continue
                probe.done = True
                self.in_flight -= 1
                if probe.sock is not None:
                    probe.sock.close()
                    probe.sock = None
        self._by_fd.clear()
        poll, loop = self._poll, self._loop
        self._poll = self._loop = None
        if poll is not None:
            if loop is not None and not loop.is_closed():
                loop.remove_reader(poll.fileno())
            poll.close()
