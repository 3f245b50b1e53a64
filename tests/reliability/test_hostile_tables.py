"""Hostile pushes against a table receiver over real HTTP on loopback.

Every hostile body must get a clear status and reason, bump the metric of that reason,
leave the receiver's state (deliveries, sequence memory) untouched, and never take the
listener down: after each case a valid table is still accepted.
Property-based cases (hypothesis) throw random bytes, random msgpack, truncations and
mutations of a valid table; hand-made cases cover replay, skew, capacity, kind, size
caps before reading (Content-Length and chunked), slow-loris bodies and hang-ups.
The decoder's own corpus (tests/corpus/tables) is exercised by the kernel's tests; here
the same classes of input travel through HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import socket
import threading
import time
import tracemalloc
from typing import TYPE_CHECKING

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.testing import signed_table, wait_until
from urn.errors import WIRE_ERRORS
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import ReceiverServer

REASONS = {error.reason: error.http_status for error in WIRE_ERRORS}
HEAD = b"POST /v1/table HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/msgpack\r\n"
_sequences = itertools.count(1_000)
HYPOTHESIS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def refused(server: ReceiverServer, body: bytes) -> str:
    """POST `body`; assert it is refused cleanly and changed nothing; return the reason."""
    before = server.state()
    status, reply = server.post(body)
    reason = reply.get("error")
    assert reason in REASONS, (status, reply)
    assert status == REASONS[reason], (status, reply)
    assert reply.get("detail"), reply
    assert server.state() == before
    return str(reason)


def still_serving(server: ReceiverServer) -> None:
    status, reply = server.post(server.table(next(_sequences), sender="canary"))
    assert status == 200, reply


# --- property-based ---------------------------------------------------------------


@HYPOTHESIS
@given(body=st.binary(max_size=600))
def test_random_bytes_are_refused_by_reason(shared_receiver: ReceiverServer, body: bytes) -> None:
    counted = shared_receiver.rejected
    reason = None
    before = {r: counted(r) for r in REASONS}
    reason = refused(shared_receiver, body)
    assert counted(reason) == before[reason] + 1


_msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.binary(max_size=64)
    | st.text(max_size=32),
    lambda inner: st.lists(inner, max_size=12) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@HYPOTHESIS
@given(value=_msgpack_values)
def test_well_formed_msgpack_that_is_not_an_envelope_is_refused(
    shared_receiver: ReceiverServer, value: object
) -> None:
    refused(shared_receiver, msgpack.packb(value))


@HYPOTHESIS
@given(data=st.data())
def test_every_truncation_of_a_valid_table_is_refused(
    shared_receiver: ReceiverServer, data: st.DataObject
) -> None:
    table = shared_receiver.table(next(_sequences))
    cut = data.draw(st.integers(min_value=0, max_value=len(table) - 1))
    assert refused(shared_receiver, table[:cut]) in ("truncated", "undecodable")


@HYPOTHESIS
@given(data=st.data())
def test_any_mutation_of_a_signed_table_is_refused(
    shared_receiver: ReceiverServer, data: st.DataObject
) -> None:
    table = bytearray(shared_receiver.table(next(_sequences)))
    edits = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(table) - 1), st.integers(1, 255)),
            min_size=1,
            max_size=4,
            unique_by=lambda edit: edit[0],
        )
    )
    for position, flip in edits:
        table[position] ^= flip
    reason = refused(shared_receiver, bytes(table))
    assert reason != "replayed"


def test_every_truncation_length_once_over_http(shared_receiver: ReceiverServer) -> None:
    """Deterministic sweep next to the sampled one: all 0..size-1 prefix lengths."""
    table = shared_receiver.table(next(_sequences))
    reasons = {refused(shared_receiver, table[:cut]) for cut in range(len(table))}
    assert reasons <= {"truncated", "undecodable"}
    still_serving(shared_receiver)


# --- hand-made cases ---------------------------------------------------------------


def test_replayed_and_older_tables_are_refused_409(receiver: ReceiverServer) -> None:
    table = receiver.table(10)
    assert receiver.post(table)[0] == 200
    assert refused(receiver, table) == "replayed"
    assert refused(receiver, receiver.table(9)) == "replayed"
    assert receiver.rejected("replayed") == 2
    assert receiver.receiver.guard.last_sequence("chk-a1") == 10
    assert receiver.post(receiver.table(11))[0] == 200


@pytest.mark.parametrize("offset", [+3600.0, -3600.0, +31.0, float(2**40)])
def test_tables_from_the_future_or_the_past_beyond_skew_are_refused(
    receiver: ReceiverServer, offset: float
) -> None:
    body = receiver.table(1, generated_at=time.time() + offset)
    assert refused(receiver, body) == "skew"
    assert receiver.rejected("skew") == 1
    # A refused far-future table must not poison the sequence: the next real one passes.
    still_serving(receiver)


@pytest.mark.parametrize("capacity", [1, 63, 65, 10_000])
def test_tables_of_another_capacity_are_refused(receiver: ReceiverServer, capacity: int) -> None:
    body = signed_table(bytes(capacity), sequence=1)
    reason = refused(receiver, body)
    # A bigger table is longer than any table this receiver accepts: the size cap,
    # applied before decoding, refuses it first.
    assert reason == ("oversized" if capacity > 64 else "capacity")
    assert receiver.rejected(reason) == 1


def test_a_table_of_the_wrong_kind_is_refused(receiver: ReceiverServer) -> None:
    body = receiver.table(1, kind=TableKind.AGGREGATE)
    assert refused(receiver, body) == "kind"


def test_a_declared_oversized_body_is_refused_before_it_is_sent(
    receiver: ReceiverServer,
) -> None:
    """Only headers go out; the 413 comes back although no body byte was ever sent."""
    before = receiver.state()
    response = receiver.raw(HEAD + b"Content-Length: 1000000000\r\n\r\n")
    assert receiver.status_of(response) == 413
    assert receiver.body_of(response)["error"] == "oversized"
    assert receiver.rejected("oversized") == 1
    assert receiver.state() == before
    still_serving(receiver)


def test_a_chunked_body_is_cut_off_once_it_passes_the_table_size(
    receiver: ReceiverServer,
) -> None:
    limit = receiver.table_bytes
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        # Stream far more than a table, stopping as soon as the server has answered.
        for _ in range(1_000):
            try:
                sock.sendall(b"%x\r\n" % 100 + b"\x9a" * 100 + b"\r\n")
            except OSError:
                break
            sent += 100
            if sent > 10 * limit:
                break
        response = sock.recv(65536)
    assert receiver.status_of(response) == 413
    assert receiver.rejected("oversized") == 1
    assert receiver.delivered == []
    still_serving(receiver)


def test_malformed_http_framing_is_refused_by_the_server_and_changes_nothing(
    receiver: ReceiverServer,
) -> None:
    """Requests aiohttp's parser refuses never reach the receiver (not counted there)."""
    before = receiver.state()
    for request in (
        HEAD + b"Content-Length: -1\r\n\r\n",
        HEAD + b"Content-Length: abc\r\n\r\n",
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64,  # TLS to a plain port
    ):
        assert receiver.status_of(receiver.raw(request)) in (0, 400)
    assert receiver.state() == before
    still_serving(receiver)


def test_a_slow_loris_body_is_cut_off_at_the_read_deadline(receiver: ReceiverServer) -> None:
    """Half a table then silence: a 400 `truncated` arrives once the read deadline passes."""
    table = receiver.table(1)
    before = receiver.state()
    response = receiver.raw(HEAD + b"Content-Length: %d\r\n\r\n" % len(table) + table[:100])
    assert receiver.status_of(response) == 400
    assert receiver.body_of(response)["error"] == "truncated"
    assert receiver.state() == before


def test_a_drip_fed_body_is_bounded_by_the_whole_read_deadline(receiver: ReceiverServer) -> None:
    """One byte at a time, each well within any per-read timeout, still ends in a 400."""
    table = receiver.table(1)
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(table))
        sock.setblocking(False)
        response = b""
        for byte in table:
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            with contextlib.suppress(BlockingIOError):
                response += sock.recv(65536)
            if response:
                break
            time.sleep(receiver.read_timeout / 20)  # drip rate, not a wait for an outcome
        sock.setblocking(True)
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    assert receiver.status_of(response) == 400
    assert receiver.body_of(response)["error"] == "truncated"
    assert receiver.delivered == []


def test_slow_loris_pushes_do_not_delay_honest_ones(receiver: ReceiverServer) -> None:
    table = receiver.table(1)
    hanging = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(30)]
    try:
        for sock in hanging:
            sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(table) + table[:50])
        assert receiver.post(receiver.table(2, sender="honest"))[0] == 200
    finally:
        for sock in hanging:
            sock.close()
    wait_until_sync(lambda: receiver.rejected("truncated") == 30, "30 slow bodies counted")


def test_a_sender_that_hangs_up_mid_body_is_counted_as_truncated(
    receiver: ReceiverServer,
) -> None:
    table = receiver.table(1)
    before = receiver.state()
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(table) + table[:80])
    wait_until_sync(lambda: receiver.rejected("truncated") == 1, "hang-up counted")
    assert receiver.state() == before
    still_serving(receiver)


def test_rejections_are_visible_on_the_metrics_endpoint(receiver: ReceiverServer) -> None:
    refused(receiver, b"not a table")
    response = receiver.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    text = response.decode()
    assert 'urn_tables_rejected_total{reason="undecodable"} 1.0' in text
    for reason in REASONS:  # every reason is exported from the start, as zero or more
        assert f'urn_tables_rejected_total{{reason="{reason}"}}' in text


def test_memory_stays_bounded_under_many_hostile_pushes(
    make_receiver: Callable[..., ReceiverServer],
) -> None:
    """After a warm-up, 1,200 more hostile requests leave traced memory flat."""
    server = make_receiver()
    table = server.table(1)
    hostile = [
        b"",
        b"\x9a" * 50,
        table[:-1],
        table[:-5] + b"\0" * 5,
        signed_table(bytes(65), sequence=3),
        server.table(5, generated_at=time.time() + 9999),
        msgpack.packb({"a": [1, 2, 3]}),
    ]
    assert server.post(table)[0] == 200
    hostile.append(table)  # now a replay

    def barrage(rounds: int) -> None:
        for _ in range(rounds):
            for body in hostile:
                server.post(body)

    def settled() -> tracemalloc.Snapshot:
        # The server's loop runs in its own thread: let it finish what it is doing (a
        # socket read holds a 256 KiB buffer while it runs) before looking at memory.
        server.settle()
        gc.collect()
        return tracemalloc.take_snapshot()

    tracemalloc.start()
    try:
        barrage(40)
        baseline = settled()
        barrage(150)  # 1,200 hostile requests
        # A leak shows in every look; a buffer caught mid-read in one look only.
        looks = [settled().compare_to(baseline, "filename") for _ in range(3)]
    finally:
        tracemalloc.stop()
    grown = min(looks, key=lambda stats: sum(stat.size_diff for stat in stats))
    growth = sum(stat.size_diff for stat in grown)
    # Flat in practice (under 1 KiB); 64 KiB would catch a leak of ~50 bytes per request.
    assert growth < 64 * 1024, [str(s) for s in grown[:5]]
    assert server.state() == (1, {"chk-a1": 1})


def wait_until_sync(condition: Callable[[], bool], message: str, timeout: float = 10.0) -> None:
    """`sim.testing.wait_until` for synchronous tests (the receiver runs in its own thread)."""
    asyncio.run(wait_until(condition, timeout=timeout, message=message))


def test_concurrent_hostile_and_honest_pushes_keep_every_honest_table(
    receiver: ReceiverServer,
) -> None:
    """Honest senders interleaved with a hostile one: every honest table is accepted."""
    errors: list[str] = []

    def honest(sender: str) -> None:
        for sequence in range(1, 21):
            status, reply = receiver.post(receiver.table(sequence, sender=sender))
            if status != 200:
                errors.append(f"{sender} {sequence}: {status} {reply}")

    def hostile() -> None:
        for i in range(60):
            receiver.post(bytes([i]) * (i * 7))

    threads = [threading.Thread(target=honest, args=(f"h{i}",)) for i in range(3)]
    threads.append(threading.Thread(target=hostile))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(receiver.delivered) == 60
