"""Pure parts of the edge-triggered contrast design: wire, outbox, streams, N-of-M, answers."""

from __future__ import annotations

import pytest

from bench.edge.events import (
    Batch,
    BatchError,
    Outbox,
    Streams,
    StreamVerdict,
    decode_batch,
    encode_batch,
)
from bench.edge.resolver import PatchedView
from bench.edge.schedule import buckets_for
from bench.edge.state import EdgeAggregate
from sim.testing import TEST_PUSH_KEY, document_dict
from urn.config import parse_document
from urn.table import Reason, Status, aggregated_byte

KEY = TEST_PUSH_KEY
H, T, R = int(Reason.HEALTHY), int(Reason.TIMEOUT), int(Reason.REFUSED)
UNHEALTHY_T = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
HEALTHY = aggregated_byte(Status.HEALTHY)


def batch(events=((1, 1), (5, 3)), *, seq=1, epoch=7, snapshot=False, sender="c1"):
    return Batch(sender, "a", epoch, seq, 12.5, snapshot, tuple(events))


def test_batch_round_trips_and_grows_with_events():
    small = encode_batch(batch(()), KEY)
    big = encode_batch(batch([(s, 2) for s in range(50)]), KEY)
    assert decode_batch(small, [KEY], 64) == batch(())
    assert decode_batch(big, [KEY], 64).events[49] == (49, 2)
    assert len(big) > len(small) + 100


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"x" * 10, "truncated"),
        (b"x" * 5000, "oversized"),
        (encode_batch(batch(), b"another-key-0123456789"), "bad_mac"),
        (encode_batch(batch([(64, 1)]), KEY), "undecodable"),
        (encode_batch(batch([(1, 300)]), KEY), "undecodable"),
    ],
)
def test_bad_batches_are_rejected_with_a_reason(data, reason):
    with pytest.raises(BatchError) as info:
        decode_batch(data, [KEY], 64)
    assert info.value.reason == reason


def test_outbox_sends_a_snapshot_first_then_only_changes_then_heartbeats():
    box = Outbox(16, "c1", "a", epoch=1)
    box.record(3, H)
    box.record(4, T)
    first = box.take(now=0.0)
    assert first.snapshot
    assert first.events == ((3, H), (4, T))
    box.record(3, H)  # unchanged: nothing to send
    assert not box.due(now=0.5, heartbeat=1.0)
    assert box.due(now=1.0, heartbeat=1.0)
    box.record(3, R)
    second = box.take(now=1.0)
    assert (second.snapshot, second.events, second.sequence) == (False, ((3, R),), 2)
    box.lost()
    third = box.take(now=2.0)
    assert third.snapshot
    assert third.events == ((3, R), (4, T))


def test_streams_apply_in_order_and_ask_for_resync_on_a_gap():
    streams = Streams()
    assert streams.verdict(batch(seq=1)) is StreamVerdict.RESYNC
    snap = batch(seq=1, snapshot=True)
    assert streams.verdict(snap) is StreamVerdict.APPLY
    streams.commit(snap, now=0.0)
    assert streams.verdict(batch(seq=2)) is StreamVerdict.APPLY
    assert streams.verdict(batch(seq=1)) is StreamVerdict.STALE
    assert streams.verdict(batch(seq=3)) is StreamVerdict.RESYNC
    assert streams.verdict(batch(seq=2, epoch=8)) is StreamVerdict.RESYNC
    assert streams.stale_senders(now=10.0, staleness=5.0) == ["c1"]


def document(**extra):
    checks = [
        {"slot": 0, "type": "tcp", "host": "127.0.0.1", "port": 9, "failures": 2, "of_last": 3},
        {"slot": 1, "type": "tcp", "host": "127.0.0.1", "port": 9, "failures": 2, "of_last": 3},
        {"slot": 2, "type": "calculated", "children": [0, 1], "healthy_if_at_least": 2},
    ]
    records = [
        {
            "name": "mv.example.com.",
            "policy": "multivalue",
            "answers": [{"value": "127.101.0.1", "check": 0}, {"value": "127.102.0.1", "check": 1}],
        },
        {
            "name": "fo.example.com.",
            "policy": "failover",
            "answers": [
                {"value": "127.101.0.2", "check": 0, "role": "primary"},
                {"value": "127.102.0.2", "check": 1, "role": "secondary"},
            ],
        },
        {
            "name": "w.example.com.",
            "policy": "weighted",
            "answers": [
                {"value": "127.101.0.3", "check": 0, "weight": 0},
                {"value": "127.102.0.3", "check": 1, "weight": 5},
            ],
        },
    ]
    return parse_document(document_dict(checks, records, capacity=8, **extra))


def test_n_of_m_counts_votes_per_event_and_expires_a_checker():
    state = EdgeAggregate(8)
    assert state.configure(document()) == {2}  # a calculated check over unknowns is healthy
    assert state.apply("c1", [(0, H), (1, H)], snapshot=True) == {0, 1}
    assert state.verdict[0] == HEALTHY
    assert state.apply("c2", [(0, T)], snapshot=True) == set()  # 1 failure of 2: needs 2
    assert state.apply("c1", [(0, T)], snapshot=False) == {0, 2}
    assert state.verdict[0] == UNHEALTHY_T
    assert state.verdict[2] & 0b11 == Status.UNHEALTHY  # calculated needs both children
    assert state.expire("c2") == set()  # one observer left: min(2, 1) = 1 failure suffices
    assert state.verdict[0] == UNHEALTHY_T
    state.apply("c1", [(0, H)], snapshot=False)
    assert state.verdict[0] == HEALTHY
    assert state.expire("c1") >= {0, 1}
    assert state.verdict[0] == aggregated_byte(Status.UNKNOWN)


def test_resolver_view_patches_table_and_down_view_per_event():
    view = PatchedView(4)
    view.apply([(1, UNHEALTHY_T), (2, HEALTHY)], snapshot=True)
    assert bytes(view.down) == bytes([0, 1, 0, 0, 0])
    view.apply([(1, HEALTHY), (3, UNHEALTHY_T)], snapshot=False)
    assert bytes(view.table) == bytes([0, HEALTHY, HEALTHY, UNHEALTHY_T])
    assert bytes(view.down) == bytes([0, 0, 0, 1, 0])
    view.apply([(0, UNHEALTHY_T)], snapshot=True)
    assert bytes(view.down) == bytes([1, 0, 0, 0, 0])


def test_schedule_spreads_slots_stably():
    buckets = buckets_for("c1", range(1000), 50)
    assert sorted(s for b in buckets for s in b) == list(range(1000))
    assert max(len(b) for b in buckets) < 40
    assert buckets == buckets_for("c1", range(1000), 50)
    assert buckets != buckets_for("c2", range(1000), 50)
