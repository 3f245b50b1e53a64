"""Every probe type and every failure reason, against real loopback targets.

Run on both event loops: uvloop (what `urn checker` uses) and asyncio's own.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import functools
import os
import select
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from checker import probers
from checker.probers import ProbeEngine, Target, compile_target, tls_contexts
from sim.testing import FakeClock, free_port, wait_until
from sim.testing.targets import ThreadedTarget, probe_once
from urn.config import Check, CheckType
from urn.table import Reason

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


def check(
    kind: CheckType,
    port: int,
    path: str = "/ok",
    *,
    host: str = "127.0.0.1",
    search: str | None = None,
    timeout: float = 2.0,
    verify_tls: bool = False,
) -> Check:
    return Check(
        slot=3,
        name="t",
        type=kind,
        failures=3,
        of_last=10,
        timeout=timeout,
        host=host,
        port=port,
        path=path,
        search=search,
        verify_tls=verify_tls,
    )


def target(c: Check, ca_file: str | None = None) -> Target:
    lax, strict = tls_contexts(ca_file)
    return compile_target(c, lax, strict)


# --- HTTP ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "search", "expected"),
    [
        ("/ok", None, Reason.HEALTHY),
        ("/ok", "all good", Reason.HEALTHY),
        ("/moved", None, Reason.HEALTHY),  # 3xx is healthy
        ("/bad", None, Reason.BAD_STATUS),
        ("/bad", "down", Reason.BAD_STATUS),  # status decides before the body
        ("/missing", None, Reason.BAD_STATUS),  # 404
        ("/ok", "not there", Reason.BODY_MISMATCH),
        ("/late", "all good", Reason.BODY_MISMATCH),  # string past the first 5,120 bytes
        ("/chunked", "all good", Reason.HEALTHY),  # split across chunks
        ("/chunked", "absent", Reason.BODY_MISMATCH),
    ],
)
async def test_http_verdicts(http_port: int, path: str, search: str | None, expected: Reason):
    assert await probe_once(target(check(CheckType.HTTP, http_port, path, search=search))) == (
        expected
    )


async def test_http_refused():
    verdict = await probe_once(target(check(CheckType.HTTP, free_port())))
    assert verdict == Reason.REFUSED


async def test_http_timeout_when_target_accepts_and_never_answers(raw_server):
    port = await raw_server("hold")
    verdict = await probe_once(target(check(CheckType.HTTP, port, timeout=0.2)))
    assert verdict == Reason.TIMEOUT


async def test_http_reset(raw_server):
    port = await raw_server("reset")
    assert await probe_once(target(check(CheckType.HTTP, port))) == Reason.RESET


@pytest.mark.parametrize("behaviour", ["mid_response", "mid_head"])
async def test_http_close_mid_response(raw_server, behaviour: str):
    port = await raw_server(behaviour)
    verdict = await probe_once(target(check(CheckType.HTTP, port, search="never")))
    assert verdict == Reason.RESET


async def test_http_close_mid_head_without_search(raw_server):
    port = await raw_server("mid_head")
    assert await probe_once(target(check(CheckType.HTTP, port))) == Reason.RESET


async def test_http_garbage_is_error(raw_server):
    port = await raw_server("garbage")
    assert await probe_once(target(check(CheckType.HTTP, port))) == Reason.ERROR


async def test_dns_failure():
    c = check(CheckType.HTTP, 80, host="no-such-target.invalid")
    assert await probe_once(target(c)) == Reason.DNS


async def test_name_that_resolves_is_probed_at_its_first_address(http_port: int):
    first = socket.getaddrinfo("localhost", http_port, type=socket.SOCK_STREAM)[0]
    expected = Reason.HEALTHY if first[0] == socket.AF_INET else Reason.REFUSED  # v4 listener
    c = check(CheckType.HTTP, http_port, host="localhost")
    assert await probe_once(target(c)) == expected


# --- HTTPS -----------------------------------------------------------------------------


async def test_https_without_verification_accepts_any_certificate(https_port: int):
    assert await probe_once(target(check(CheckType.HTTPS, https_port))) == Reason.HEALTHY


async def test_https_verification_fails_for_unknown_ca(https_port: int):
    c = check(CheckType.HTTPS, https_port, verify_tls=True)
    assert await probe_once(target(c)) == Reason.TLS


async def test_https_verification_passes_with_the_ca(https_port: int, ca_file: str):
    c = check(CheckType.HTTPS, https_port, search="all good", verify_tls=True)
    assert await probe_once(target(c, ca_file)) == Reason.HEALTHY


async def test_https_against_plain_http_is_tls_failure(http_port: int):
    assert await probe_once(target(check(CheckType.HTTPS, http_port))) == Reason.TLS


async def test_https_bad_status(https_port: int):
    c = check(CheckType.HTTPS, https_port, "/bad")
    assert await probe_once(target(c)) == Reason.BAD_STATUS


async def test_https_timeout(raw_server):
    port = await raw_server("hold")  # accepts TCP, never speaks TLS
    c = check(CheckType.HTTPS, port, timeout=0.2)
    assert await probe_once(target(c)) == Reason.TIMEOUT


# --- TCP -------------------------------------------------------------------------------


async def test_tcp_healthy_when_accepted(raw_server):
    port = await raw_server("hold")
    assert await probe_once(target(check(CheckType.TCP, port))) == Reason.HEALTHY


async def test_tcp_refused():
    assert await probe_once(target(check(CheckType.TCP, free_port()))) == Reason.REFUSED


async def test_tcp_dns_failure():
    c = check(CheckType.TCP, 5432, host="db.invalid")
    assert await probe_once(target(c)) == Reason.DNS


# --- engine ----------------------------------------------------------------------------


class WatchedProbe(probers._Probe):
    """The engine's own probe, counting the ready events it was given."""

    def __init__(self, engine: ProbeEngine, target: Target, started: float) -> None:
        super().__init__(engine, target, started)
        self.events = 0

    def ready(self, events: int) -> None:
        self.events += 1
        super().ready(events)


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[WatchedProbe]:
    """Every probe the engines of this test start, in start order, watched."""
    started: list[WatchedProbe] = []

    def watched(engine: ProbeEngine, target: Target, now: float) -> WatchedProbe:
        probe = WatchedProbe(engine, target, now)
        started.append(probe)
        return probe

    monkeypatch.setattr(probers, "_Probe", watched)
    return started


class Holder:
    """A target that accepts, reads whatever comes and never answers (HTTP or TLS), and
    counts the connections it accepted and the ones the prober closed."""

    def __init__(self) -> None:
        self.accepted = 0
        self.closed = 0
        self.received = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            try:
                while data := await reader.read(65536):
                    self.received += len(data)
            except ConnectionError:
                pass
            self.closed += 1
            writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def holder() -> AsyncIterator[Holder]:
    server = Holder()
    await server.start()
    yield server
    server.stop()


def recording_engine(clock: FakeClock) -> tuple[ProbeEngine, list[int]]:
    results: list[int] = []
    engine = ProbeEngine(clock.monotonic, lambda _t, verdict, _s, _f: results.append(verdict))
    return engine, results


def holder_port(server: Holder) -> int:
    assert server._server is not None
    return int(server._server.sockets[0].getsockname()[1])


@pytest.mark.parametrize("kind", [CheckType.HTTP, CheckType.HTTPS])
async def test_a_probe_timed_out_reports_once_and_its_connection_is_closed(
    holder: Holder, probes: list[WatchedProbe], kind: CheckType
):
    """Deadline first: the sweep reports TIMEOUT and closes the socket, so nothing the
    target does later can reach the probe, and a later finish does not report again.
    HTTP: timed out waiting for the answer; HTTPS: timed out in the TLS handshake."""
    clock = FakeClock()
    engine, results = recording_engine(clock)
    now = clock.monotonic()
    engine.start(target(check(kind, holder_port(holder), timeout=0.5)), now)
    (probe,) = probes
    stage = probers._READING if kind is CheckType.HTTP else probers._HANDSHAKE
    await wait_until(
        lambda: probe.state == stage and holder.received > 0, message="the first bytes sent"
    )
    engine.sweep(now)
    engine.sweep(now + 0.6)  # past the deadline, but only after the previous sweep
    assert results == []
    engine.sweep(now + 0.7)
    assert results == [Reason.TIMEOUT]
    assert engine.in_flight == 0
    assert probe.sock is None
    assert engine._by_fd == {}
    await wait_until(lambda: holder.closed == 1, message="the target saw the close")
    engine.finish(probe, int(Reason.HEALTHY))  # first call wins
    engine.sweep(now + 2.0)
    assert results == [Reason.TIMEOUT]
    assert engine.in_flight == 0
    engine.abort_all()


async def test_a_probe_answered_reports_once_whatever_the_sweep_does_later(
    http_port: int, probes: list[WatchedProbe]
):
    """Answer first: the probe reports HEALTHY on the event that brought the answer, and
    neither the sweep past its deadline nor a late TIMEOUT report again."""
    clock = FakeClock()
    engine, results = recording_engine(clock)
    now = clock.monotonic()
    engine.start(target(check(CheckType.HTTP, http_port, timeout=0.5)), now)
    (probe,) = probes
    await wait_until(lambda: bool(results), message="the probe answered")
    assert results == [Reason.HEALTHY]
    assert engine.in_flight == 0
    assert probe.sock is None
    assert probe.events == 1  # answered: on loopback the request went with the connect
    engine.sweep(now + 1.0)
    engine.sweep(now + 2.0)  # past the deadline on every count
    engine.finish(probe, int(Reason.TIMEOUT))  # first call wins
    assert results == [Reason.HEALTHY]
    assert engine.in_flight == 0
    assert engine.next_deadline() is None
    engine.abort_all()


async def test_sweep_ends_many_hung_probes_at_once_and_each_once(
    holder: Holder, probes: list[WatchedProbe]
):
    clock = FakeClock()
    engine, results = recording_engine(clock)
    t = target(check(CheckType.HTTP, holder_port(holder), timeout=0.1))
    now = clock.monotonic()
    for _ in range(20):
        engine.start(t, now)
    assert engine.in_flight == 20
    assert engine.next_deadline() == pytest.approx(now + 0.1)
    await wait_until(
        lambda: all(p.state == probers._READING for p in probes) and holder.accepted == 20,
        message="20 requests sent",
    )
    engine.sweep(now + 0.05)
    engine.sweep(now + 0.5)  # deadlines passed, but only after the previous sweep
    assert results == []
    engine.sweep(now + 0.6)
    assert results == [Reason.TIMEOUT] * 20
    assert engine.in_flight == 0
    engine.sweep(now + 1.0)
    await wait_until(lambda: holder.closed == 20, message="every connection closed")
    assert len(results) == 20  # nothing reported twice
    assert engine._by_fd == {}
    engine.abort_all()


async def test_abort_all_reports_nothing_and_stops_watching(holder: Holder, http_port: int):
    clock = FakeClock()
    engine, results = recording_engine(clock)
    engine.start(target(check(CheckType.HTTP, http_port)), clock.monotonic())
    await wait_until(lambda: results == [Reason.HEALTHY], message="an answered probe")
    results.clear()  # answered, but still queued for the sweep: aborting passes it over
    engine.start(target(check(CheckType.HTTP, holder_port(holder), timeout=5)), clock.monotonic())
    await wait_until(lambda: holder.received > 0, message="the request sent")
    poll = engine._poll
    assert poll is not None
    engine.abort_all()
    assert poll.closed
    assert engine._poll is None
    await wait_until(lambda: holder.closed == 1, message="the aborted connection closed")
    engine.sweep(clock.monotonic() + 10)
    engine.sweep(clock.monotonic() + 20)
    assert results == []
    assert engine.in_flight == 0
    # An engine shut down can start again: it watches a fresh epoll set.
    engine.start(target(check(CheckType.HTTP, http_port)), clock.monotonic())
    await wait_until(lambda: results == [Reason.HEALTHY], message="a probe after the abort")
    engine.abort_all()


async def test_a_name_still_resolving_at_its_deadline_times_out_and_never_connects(
    monkeypatch: pytest.MonkeyPatch, holder: Holder
):
    """The deadline covers name resolution too; an answer that comes later is dropped."""
    resolving = threading.Event()
    release = threading.Event()
    getaddrinfo = socket.getaddrinfo

    def slow(host: str, *args: Any, **kwargs: Any) -> Any:
        resolving.set()
        release.wait(5)
        return getaddrinfo("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    clock = FakeClock()
    engine, results = recording_engine(clock)
    now = clock.monotonic()
    c = check(CheckType.HTTP, holder_port(holder), host="slow.test", timeout=0.5)
    engine.start(target(c), now)
    await wait_until(resolving.is_set, message="resolution begun")
    engine.sweep(now + 1.0)
    engine.sweep(now + 3.0)
    assert results == [Reason.TIMEOUT]
    release.set()
    await asyncio.sleep(0.2)
    assert holder.accepted == 0  # the late answer opened nothing
    assert results == [Reason.TIMEOUT]
    engine.abort_all()


async def test_a_hung_resolver_queues_no_more_than_max_resolving_names(
    monkeypatch: pytest.MonkeyPatch, holder: Holder
):
    """Past MAX_RESOLVING names waiting on the resolver threads, a new probe of a name
    ends at once as LOCAL (our resolver's trouble, no data), not queued without bound;
    once the resolver answers again, names are resolved and probed as before."""
    release = threading.Event()
    getaddrinfo = socket.getaddrinfo

    def hung(host: str, *args: Any, **kwargs: Any) -> Any:
        release.wait(5)
        return getaddrinfo("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hung)
    monkeypatch.setattr(probers, "MAX_RESOLVING", 3)
    clock = FakeClock()
    engine, results = recording_engine(clock)
    c = check(CheckType.TCP, holder_port(holder), host="hung.test", timeout=30.0)
    for _ in range(5):
        engine.start(target(c), clock.monotonic())
    assert results == [Reason.LOCAL, Reason.LOCAL]
    assert (engine.resolving, engine.in_flight) == (3, 3)
    release.set()
    await wait_until(lambda: len(results) == 5, message="the three resolved and probed")
    assert results[2:] == [Reason.HEALTHY] * 3
    assert engine.resolving == 0
    engine.start(target(c), clock.monotonic())
    await wait_until(lambda: len(results) == 6, message="a name resolved again")
    assert results[5] == Reason.HEALTHY
    engine.abort_all()


async def test_out_of_descriptors_is_local_not_the_targets(
    monkeypatch: pytest.MonkeyPatch, http_port: int
):
    def no_descriptors(*_: Any) -> socket.socket:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(probers, "open_socket", no_descriptors)
    assert await probe_once(target(check(CheckType.HTTP, http_port))) == Reason.LOCAL


class Wrapped:
    """A real probe socket, with one of its calls replaced."""

    def __init__(self, family: int, kind: int, **replaced: Any) -> None:
        self._sock = _socket.socket(family, kind)
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _raise(exc: BaseException) -> Any:
    def call(*_: Any) -> Any:
        raise exc

    return call


@pytest.mark.parametrize(
    ("replaced", "expected"),
    [
        ({"connect_ex": lambda _address: errno.ECONNREFUSED}, Reason.REFUSED),  # at once
        ({"connect_ex": lambda _address: errno.ENETUNREACH}, Reason.ERROR),
        ({"connect_ex": _raise(OSError(errno.EADDRNOTAVAIL, "no local port"))}, Reason.LOCAL),
        ({"send": _raise(ConnectionResetError(errno.ECONNRESET, "reset"))}, Reason.RESET),
        ({"recv": _raise(ConnectionResetError(errno.ECONNRESET, "reset"))}, Reason.RESET),
    ],
    ids=["connect-refused-at-once", "connect-unreachable", "no-local-port", "send", "recv"],
)
async def test_errors_of_each_call_end_the_probe_with_their_reason(
    monkeypatch: pytest.MonkeyPatch, http_port: int, replaced: dict[str, Any], expected: Reason
):
    monkeypatch.setattr(
        probers, "open_socket", lambda family, kind: Wrapped(family, kind, **replaced)
    )
    assert await probe_once(target(check(CheckType.HTTP, http_port))) == expected


async def test_a_request_bigger_than_the_socket_buffers_goes_out_in_pieces():
    """A send that takes only part of the request waits for room (the next edge) and
    sends the rest: the target reads one whole request and answers it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    heads: list[int] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                time.sleep(0.001)  # a slow reader: the prober's buffer fills first
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            heads.append(len(head))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        c = check(CheckType.HTTP, listener.getsockname()[1], "/" + "a" * 4_000_000, timeout=20)
        t = target(c)
        assert await probe_once(t) == Reason.HEALTHY
        assert heads == [len(t.request)]
    finally:
        thread.join(timeout=5)
        listener.close()


async def test_an_answer_not_yet_there_costs_no_recv(monkeypatch: pytest.MonkeyPatch):
    """The request goes out on the connect's edge; the answer is read on its own edge,
    so the only recv a probe makes is the one that brings bytes (edge-triggered: data
    that comes after an event is reported as another)."""
    calls: list[int] = []  # bytes each recv brought; -1: it would have blocked

    def counting(family: int, kind: int) -> Wrapped:
        sock = Wrapped(family, kind)
        real = sock._sock.recv

        def recv(size: int) -> bytes:
            try:
                data = real(size)
            except BlockingIOError:
                calls.append(-1)
                raise
            calls.append(len(data))
            return data

        sock.recv = recv  # type: ignore[method-assign]
        return sock

    monkeypatch.setattr(probers, "open_socket", counting)
    with ThreadedTarget(delay=0.05) as served:
        assert await probe_once(target(check(CheckType.HTTP, served.port))) == Reason.HEALTHY
    assert len(calls) == 1
    assert calls[0] > 0


@pytest.mark.parametrize(
    ("kind", "listening", "expected"),
    [
        (CheckType.HTTP, False, Reason.REFUSED),
        (CheckType.TCP, False, Reason.REFUSED),
        (CheckType.TCP, True, Reason.HEALTHY),
    ],
    ids=["http-refused", "tcp-refused", "tcp-up"],
)
async def test_a_near_target_known_at_connect_ends_inside_start_without_a_watch(
    http_port: int, kind: CheckType, listening: bool, expected: Reason
):
    """On loopback the connect's outcome is known when connect returns: the request's
    send (an empty one for TCP) reports a refusal, and a TCP check is healthy there, so
    the probe ends before `start` returns, its socket never in the epoll set."""
    clock = FakeClock()
    engine, results = recording_engine(clock)
    port = http_port if listening else free_port()
    engine.start(target(check(kind, port)), clock.monotonic())
    assert results == [expected]
    assert engine._by_fd == {}
    assert engine._poll is None  # nothing was ever watched
    assert engine.in_flight == 0
    engine.abort_all()


async def test_a_target_not_up_at_connect_gets_its_request_on_the_connect_edge(
    monkeypatch: pytest.MonkeyPatch, http_port: int
):
    """A target further away than this host is not connected when connect returns: the
    send with it would block, so the request waits for the connect's edge, and the next
    EARLY_SEND_BACKOFF probes of that target do not try again before one does."""
    sends: list[str] = []  # "early" (blocked), "edge" (sent on the connect's edge)
    far = {"away": True}

    def distant(family: int, kind: int) -> Wrapped:
        # A send between connect_ex and the socket's registration (its fileno) is the
        # early one; a far target's connection is not up then.
        sock = Wrapped(family, kind)
        real = sock._sock
        connecting = {"now": False}

        def connect_ex(address: Any) -> int:
            connecting["now"] = True
            return int(real.connect_ex(address))

        def fileno() -> int:
            connecting["now"] = False
            return int(real.fileno())

        def send(data: bytes) -> int:
            if connecting["now"]:
                sends.append("early")
                if far["away"]:
                    raise BlockingIOError(errno.EAGAIN, "not connected yet")
            else:
                sends.append("edge")
            return int(real.send(data))

        sock.connect_ex = connect_ex  # type: ignore[method-assign]
        sock.fileno = fileno  # type: ignore[method-assign]
        sock.send = send  # type: ignore[method-assign]
        return sock

    monkeypatch.setattr(probers, "open_socket", distant)
    t = target(check(CheckType.HTTP, http_port))
    assert await probe_once(t) == Reason.HEALTHY
    assert sends == ["early", "edge"]
    assert t.early_wait == probers.EARLY_SEND_BACKOFF
    sends.clear()
    for _ in range(probers.EARLY_SEND_BACKOFF):
        assert await probe_once(t) == Reason.HEALTHY
    assert sends == ["edge"] * probers.EARLY_SEND_BACKOFF  # no early send meanwhile
    assert t.early_wait == 0
    far["away"] = False  # it moved near: the next probe sends with its connect again
    sends.clear()
    assert await probe_once(t) == Reason.HEALTHY
    assert sends == ["early"]
    assert t.early_wait == 0


async def test_a_ready_socket_no_probe_owns_is_passed_over():
    clock = FakeClock()
    engine, results = recording_engine(clock)
    poll = engine._watch()
    ours, theirs = socket.socketpair()
    try:
        poll.register(ours.fileno(), select.EPOLLIN)
        theirs.send(b"x")
        assert engine._ready()  # nothing of ours was ready: nothing happened
        assert results == []
    finally:
        engine.abort_all()
        ours.close()
        theirs.close()


async def test_a_full_epoll_set_is_local_not_the_targets(http_port: int):
    clock = FakeClock()
    engine, results = recording_engine(clock)

    class Full:
        def register(self, fd: int, events: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    engine._poll = Full()  # type: ignore[assignment]
    engine.start(target(check(CheckType.HTTP, http_port)), clock.monotonic())
    assert results == [Reason.LOCAL]
    assert engine.in_flight == 0
    engine._poll = None


async def test_https_offers_the_targets_last_session_back(https_port: int):
    """Session resumption where the target allows it: later handshakes resume, and a
    session that resumed is kept as it is (taking a new one copies it through DER)."""
    clock = FakeClock()
    engine, results = recording_engine(clock)
    t = target(check(CheckType.HTTPS, https_port, search="all good"))
    sessions = []
    for expected in (1, 2, 3):
        engine.start(t, clock.monotonic())
        await wait_until(lambda n=expected: len(results) == n, message="an HTTPS probe")
        sessions.append(t.session)
    assert results == [Reason.HEALTHY] * 3
    assert sessions[0] is not None
    assert sessions[2] is sessions[1] is sessions[0]
    assert (engine.tls_handshakes, engine.tls_resumed) == (3, 2)
    engine.abort_all()


def test_the_no_verify_context_holds_no_trust_store(ca_file: str):
    """OpenSSL verifies (and ignores the result) even without verify_tls: with no store
    there is nothing to look issuers up in on each full handshake."""
    lax, strict = tls_contexts(ca_file)
    assert lax.verify_mode == ssl.CERT_NONE
    assert not lax.check_hostname
    assert lax.get_ca_certs() == []
    assert lax.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert strict.verify_mode == ssl.CERT_REQUIRED
    assert strict.check_hostname
    assert len(strict.get_ca_certs()) == 1  # the CA file given


async def test_sweep_reads_every_answer_already_there_before_it_times_anything_out(
    monkeypatch: pytest.MonkeyPatch, probes: list[WatchedProbe]
):
    """Many answers ready at once (more than one loop callback takes): the sweep reads
    them all before it judges a deadline, so none of them is called a timeout."""
    monkeypatch.setattr(probers, "MAX_EVENTS", 4)
    with ThreadedTarget(delay=0.1) as served:
        loop = asyncio.get_running_loop()
        clock = FakeClock()
        engine, results = recording_engine(clock)
        now = clock.monotonic()
        t = target(check(CheckType.HTTP, served.port, timeout=0.5))
        for _ in range(20):
            engine.start(t, now)
        await wait_until(
            lambda: all(p.state == probers._READING for p in probes), message="20 requests sent"
        )
        assert engine._poll is not None
        loop.remove_reader(engine._poll.fileno())  # the loop reads nothing by itself now
        await wait_until(lambda: served.answered == 20, message="20 answers sent")
        await asyncio.sleep(0.05)  # and arrived
        assert results == []
        engine.sweep(now + 1.0)  # past every deadline
        engine.sweep(now + 2.0)
        assert results == [Reason.HEALTHY] * 20
        engine.abort_all()


async def test_a_probes_surprise_is_an_error_verdict_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch, http_port: int, probes: list[WatchedProbe]
):
    clock = FakeClock()
    engine, results = recording_engine(clock)
    t = target(check(CheckType.HTTP, http_port))
    engine.start(t, clock.monotonic())

    def surprise(events: int) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(probes[0], "ready", surprise)
    engine.start(t, clock.monotonic())
    await wait_until(lambda: len(results) == 2, message="both probes ended")
    assert sorted(results) == sorted([Reason.ERROR, Reason.HEALTHY])
    engine.abort_all()


def _probe_sockets(server_ports: set[int]) -> set[int]:
    """This process's TCP sockets and epoll sets, less the ones our own test targets
    accepted. Other descriptors (a resolver thread's UDP socket, a file being read by
    another thread) are not the engine's: a probe only ever owns these two kinds."""
    mine = set()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # gone since the listing
            continue
        if link == "anon_inode:[eventpoll]":
            mine.add(fd)
            continue
        if not link.startswith("socket:"):
            continue
        sock = socket.socket(fileno=fd)
        try:
            if sock.type == socket.SOCK_STREAM and sock.getsockname()[1] not in server_ports:
                mine.add(fd)
        except (OSError, IndexError):
            mine.add(fd)
        finally:
            sock.detach()
    return mine


def _only_left_open(server_ports: set[int], before: set[int], expected: set[int]) -> bool:
    return _probe_sockets(server_ports) - before == expected


async def test_no_descriptor_outlives_its_probe_whatever_ends_it(
    http_port: int, https_port: int, raw_server: Callable[[str], Awaitable[int]]
):
    """Answered, refused, timed out (connecting, in the TLS handshake, waiting for the
    answer), reset, garbage, TLS failures, names: each probe's socket is closed with
    its verdict, and `abort_all` closes the epoll set."""
    hold, reset, garbage = [await raw_server(b) for b in ("hold", "reset", "garbage")]
    servers = {http_port, https_port, hold, reset, garbage}
    refused = free_port()
    cases = [
        (check(CheckType.HTTP, http_port), Reason.HEALTHY),
        (check(CheckType.HTTPS, https_port), Reason.HEALTHY),
        (check(CheckType.HTTPS, https_port, verify_tls=True), Reason.TLS),  # unknown CA
        (check(CheckType.HTTPS, http_port), Reason.TLS),  # a plain HTTP answer to TLS
        (check(CheckType.TCP, http_port), Reason.HEALTHY),
        (check(CheckType.HTTP, refused), Reason.REFUSED),
        (check(CheckType.HTTPS, refused), Reason.REFUSED),
        (check(CheckType.HTTP, hold, timeout=0.05), Reason.TIMEOUT),
        (check(CheckType.HTTPS, hold, timeout=0.05), Reason.TIMEOUT),  # in the handshake
        (check(CheckType.HTTP, reset), Reason.RESET),
        (check(CheckType.HTTPS, reset), Reason.RESET),
        (check(CheckType.HTTP, garbage), Reason.ERROR),
        (check(CheckType.HTTP, http_port, host="localhost"), Reason.HEALTHY),
        (check(CheckType.HTTP, http_port, host="name.invalid"), Reason.DNS),
    ]
    loop = asyncio.get_running_loop()
    before = _probe_sockets(servers)
    results: list[int] = []
    engine = ProbeEngine(loop.time, lambda _t, verdict, _s, _f: results.append(verdict))
    for done, (c, _) in enumerate(cases):
        engine.start(target(c), loop.time())
        while len(results) == done:
            await asyncio.sleep(0.005)
            engine.sweep(loop.time())
        assert engine._poll is not None
        # A leaked socket stays; only a descriptor some other thread holds for a
        # moment goes, so waiting a little never hides a leak.
        await wait_until(
            functools.partial(_only_left_open, servers, before, {engine._poll.fileno()}),
            2,
            message=f"only the epoll set left open after {cases[done][0].type} probe {done}",
        )
    assert results == [reason for _, reason in cases]
    engine.abort_all()
    await wait_until(
        functools.partial(_only_left_open, servers, set(), before), 2, message="nothing left open"
    )


def test_request_bytes_are_http11_with_close():
    t = target(check(CheckType.HTTP, 8080, "/healthz?x=1"))
    assert t.request.startswith(b"GET /healthz?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
    assert b"Connection: close\r\n\r\n" in t.request
    assert target(check(CheckType.HTTP, 80)).request.count(b"Host: 127.0.0.1\r\n") == 1
    v6 = target(check(CheckType.HTTPS, 8443, host="::1"))
    assert b"Host: [::1]:8443\r\n" in v6.request
    assert v6.numeric
    assert v6.ssl is not None
    assert target(check(CheckType.TCP, 22)).is_tcp


def stall(seconds: float) -> None:
    """Block the event loop, as a CPU-starved checker would be."""
    time.sleep(seconds)


async def test_own_stall_past_a_deadline_never_turns_an_answer_into_a_timeout():
    """The answer arrives while our loop is blocked: the verdict is the answer, late."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = threading.Event()

    def serve() -> None:  # a target in its own thread, so our stall cannot stall it
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            accepted.set()
            time.sleep(0.05)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        loop = asyncio.get_running_loop()
        results: list[int] = []
        engine = ProbeEngine(loop.time, lambda _t, verdict, _s, _f: results.append(verdict))
        port = listener.getsockname()[1]
        engine.start(target(check(CheckType.HTTP, port, timeout=0.2)), loop.time())
        await wait_until(accepted.is_set, timeout=5, interval=0.001)
        engine.sweep(loop.time())
        stall(0.4)  # our own overload: the loop stalls past the probe's deadline
        engine.sweep(loop.time())  # the first sweep after the stall
        while not results:
            await asyncio.sleep(0.005)
            engine.sweep(loop.time())
        assert results == [Reason.HEALTHY]
        engine.abort_all()
    finally:
        thread.join(timeout=5)
        listener.close()


async def test_reported_stall_extends_every_deadline_in_flight(
    holder: Holder, probes: list[WatchedProbe]
):
    """`sweep(now, stalled)`: time the loop lost is given back to the probes in flight."""
    clock = FakeClock()
    engine, results = recording_engine(clock)
    begun = clock.monotonic()  # the probe's clock starts when its connect begins
    engine.start(target(check(CheckType.HTTP, holder_port(holder), timeout=0.1)), begun)
    await wait_until(lambda: probes[0].state == probers._READING, message="the request sent")
    engine.sweep(begun + 0.05)
    engine.sweep(begun + 1.0, stalled=1.0 - 0.05)  # a stall; deadline not reached on the
    engine.sweep(begun + 1.05)  # available clock (begun + 0.05): nothing timed out yet
    assert results == []
    assert engine.next_deadline() == pytest.approx(begun + 0.1 + engine.stalled)
    engine.sweep(begun + 1.5)
    engine.sweep(begun + 1.6)
    assert results == [Reason.TIMEOUT]
    assert engine.in_flight == 0
    engine.abort_all()


async def test_stall_between_connect_and_answer_is_not_a_timeout():
    """The loop stalls after the connect began and before the request went out."""
    with ThreadedTarget(delay=0.05) as served:
        loop = asyncio.get_running_loop()
        results: list[int] = []
        engine = ProbeEngine(loop.time, lambda _t, verdict, _s, _f: results.append(verdict))
        engine.start(target(check(CheckType.HTTP, served.port, timeout=0.2)), loop.time())
        await asyncio.sleep(0)  # the connect is issued
        before = loop.time()
        stall(0.4)  # blocked: the request has not been written yet
        engine.sweep(loop.time(), stalled=loop.time() - before)
        while not results:
            await asyncio.sleep(0.005)
            engine.sweep(loop.time())
        assert results == [Reason.HEALTHY]
        engine.abort_all()
