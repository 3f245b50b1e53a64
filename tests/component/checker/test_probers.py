"""Every probe type and every failure reason, against real loopback targets.

Run on both event loops: uvloop (what `urn checker` uses) and asyncio's own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from checker import probers
from checker.probers import ProbeEngine, Target, compile_target, tls_contexts
from sim.testing import FakeClock, free_port, wait_until
from sim.testing.targets import ThreadedTarget, probe_once
from urn.config import Check, CheckType
from urn.table import Reason


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
    """The engine's own probe, saying when its connection was made and when it was lost."""

    def __init__(self, engine: ProbeEngine, target: Target, started: float) -> None:
        super().__init__(engine, target, started)
        self.made = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.made = True

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.lost = True


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


class LateTransport(asyncio.Transport):
    """A connection that completes after its probe has ended: it must be aborted."""

    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def recording_engine(clock: FakeClock) -> tuple[ProbeEngine, list[int]]:
    results: list[int] = []
    engine = ProbeEngine(clock.monotonic, lambda _t, verdict, _s, _f: results.append(verdict))
    return engine, results


ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("kind", [CheckType.HTTP, CheckType.HTTPS])
async def test_a_probe_timed_out_reports_once_whatever_its_connection_does_later(
    raw_server, probes: list[WatchedProbe], kind: CheckType
):
    """Deadline first: the sweep reports TIMEOUT, and nothing the connection does after
    (lost, an answer, EOF, completing at last, another finish) reports again. HTTP: timed
    out waiting for the answer; HTTPS: timed out in the TLS handshake, the connect
    cancelled."""
    port = await raw_server("hold")  # accepts TCP, never answers and never speaks TLS
    clock = FakeClock()
    engine, results = recording_engine(clock)
    now = clock.monotonic()
    engine.start(target(check(kind, port, timeout=0.5)), now)
    (probe,) = probes
    if kind is CheckType.HTTP:
        await wait_until(lambda: probe.made, message="the request sent")
    else:
        await asyncio.sleep(0)  # the connect begins: the probe's deadline is set
        assert not probe.made
    engine.sweep(now)
    engine.sweep(now + 0.6)  # past the deadline, but only after the previous sweep
    assert results == []
    engine.sweep(now + 0.7)
    assert results == [Reason.TIMEOUT]
    assert engine.in_flight == 0
    if kind is CheckType.HTTP:
        await wait_until(lambda: probe.lost, message="the aborted connection lost")
    else:
        await wait_until(lambda: probe.task is None, message="the cancelled connect unwound")
    probe.data_received(ANSWER)  # a late answer, already read
    probe.eof_received()
    probe.connection_lost(None)
    late = LateTransport()
    probe.connection_made(late)  # the connection completes only now
    assert late.aborted
    engine.finish(probe, int(Reason.HEALTHY))  # first call wins
    engine.sweep(now + 2.0)
    assert results == [Reason.TIMEOUT]
    assert engine.in_flight == 0


async def test_a_probe_answered_reports_once_whatever_the_sweep_does_later(
    http_port: int, probes: list[WatchedProbe]
):
    """Answer first: the connection reports HEALTHY, and neither the sweep past its
    deadline nor a late TIMEOUT nor the connection's own late callbacks report again."""
    clock = FakeClock()
    engine, results = recording_engine(clock)
    now = clock.monotonic()
    engine.start(target(check(CheckType.HTTP, http_port, timeout=0.5)), now)
    (probe,) = probes
    await wait_until(lambda: probe.lost, message="the probe answered and its connection closed")
    assert results == [Reason.HEALTHY]
    assert engine.in_flight == 0
    engine.sweep(now + 1.0)
    engine.sweep(now + 2.0)  # past the deadline on every count
    engine.finish(probe, int(Reason.TIMEOUT))  # first call wins
    probe.data_received(ANSWER)
    probe.eof_received()
    probe.connection_lost(ConnectionResetError())
    assert results == [Reason.HEALTHY]
    assert engine.in_flight == 0
    assert engine.next_deadline() is None


async def test_sweep_ends_many_hung_probes_at_once_and_each_once(
    raw_server, probes: list[WatchedProbe]
):
    port = await raw_server("hold")
    clock = FakeClock()
    engine, results = recording_engine(clock)
    t = target(check(CheckType.HTTP, port, timeout=0.1))
    now = clock.monotonic()
    for _ in range(20):
        engine.start(t, now)
    assert engine.in_flight == 20
    assert engine.next_deadline() == pytest.approx(now + 0.1)
    await wait_until(lambda: all(p.made for p in probes), message="20 requests sent")
    engine.sweep(now + 0.05)
    engine.sweep(now + 0.5)  # deadlines passed, but only after the previous sweep
    assert results == []
    engine.sweep(now + 0.6)
    assert results == [Reason.TIMEOUT] * 20
    assert engine.in_flight == 0
    engine.sweep(now + 1.0)
    await wait_until(
        lambda: all(p.lost and p.task is None for p in probes),
        message="every aborted probe unwound",
    )
    assert len(results) == 20  # nothing reported twice


async def test_abort_all_reports_nothing(raw_server, probes: list[WatchedProbe]):
    port = await raw_server("hold")
    clock = FakeClock()
    engine, results = recording_engine(clock)
    engine.start(target(check(CheckType.HTTP, port, timeout=5)), clock.monotonic())
    (probe,) = probes
    await wait_until(lambda: probe.made, message="the request sent")
    engine.abort_all()
    await wait_until(lambda: probe.lost, message="the aborted connection lost")
    engine.sweep(clock.monotonic() + 10)
    engine.sweep(clock.monotonic() + 20)
    assert results == []
    assert engine.in_flight == 0


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
        engine.start(target(check(CheckType.HTTP, listener.getsockname()[1], timeout=0.2)), 0)
        await wait_until(accepted.is_set, timeout=5, interval=0.001)
        engine.sweep(loop.time())
        stall(0.4)  # our own overload: the loop stalls past the probe's deadline
        engine.sweep(loop.time())  # the first sweep after the stall
        while not results:
            await asyncio.sleep(0.005)
            engine.sweep(loop.time())
        assert results == [Reason.HEALTHY]
    finally:
        thread.join(timeout=5)
        listener.close()


async def test_reported_stall_extends_every_deadline_in_flight(
    raw_server, probes: list[WatchedProbe]
):
    """`sweep(now, stalled)`: time the loop lost is given back to the probes in flight."""
    port = await raw_server("hold")
    clock = FakeClock()
    engine, results = recording_engine(clock)
    begun = clock.monotonic()  # the probe's clock starts when its connect begins
    engine.start(target(check(CheckType.HTTP, port, timeout=0.1)), begun)
    await wait_until(lambda: probes[0].made, message="the request sent")
    engine.sweep(begun + 0.05)
    engine.sweep(begun + 1.0, stalled=1.0 - 0.05)  # a stall; deadline not reached on the
    engine.sweep(begun + 1.05)  # available clock (begun + 0.05): nothing timed out yet
    assert results == []
    assert engine.next_deadline() == pytest.approx(begun + 0.1 + engine.stalled)
    engine.sweep(begun + 1.5)
    engine.sweep(begun + 1.6)
    assert results == [Reason.TIMEOUT]
    assert engine.in_flight == 0


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
