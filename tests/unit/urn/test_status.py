"""urn.status: fixed-width encodings, the timeline ring, record answer states, and a
snapshot whose size does not depend on health."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest

from urn.config import Policy
from urn.status import (
    ROWS_CHECKERS,
    RecordStates,
    Roster,
    Timeline,
    aggregate_failing,
    checker_failing,
    encode,
    fixed_number,
    fixed_text,
    status_checks,
    table_b64,
    unhealthy_by_az,
)
from urn.table import Reason, Status, aggregated_byte


def test_fixed_number_is_always_its_width() -> None:
    for value in (0, 1, 12.3456, -5, 1e12, -1e12, None, math.nan, math.inf):
        assert len(fixed_number(value, 9, 3)) == 9
        assert len(fixed_number(value, 4)) == 4
    assert fixed_number(12.3456, 9, 3) == "   12.346"
    assert fixed_number(10**9, 4) == "9999"  # saturated, never wider
    assert fixed_number(1e30, 9, 3) == "99999.999"
    assert fixed_number(-1e30, 9, 3) == "-9999.999"
    assert fixed_number(2**64 - 1, 20) == "18446744073709551615"  # sequences print exactly
    assert fixed_number(None, 3) == "   "


def test_fixed_text_pads_cuts_and_keeps_json_plain() -> None:
    assert fixed_text("checker-a1", 12) == "checker-a1  "
    assert fixed_text("x" * 40, 32) == "x" * 32
    odd = fixed_text('a"b\\c\u00e9', 8)
    assert len(json.dumps(odd)) == 10  # nothing JSON would escape or widen


def test_table_b64_is_the_slot_bytes_or_all_unknown() -> None:
    table = np.arange(8, dtype=np.uint8)
    assert base64.b64decode(table_b64(table, 8)) == bytes(range(8))
    assert base64.b64decode(table_b64(None, 8)) == bytes(8)
    with pytest.raises(ValueError, match="not 9"):
        table_b64(table, 9)


def test_failing_slots_counted_by_az() -> None:
    table = np.array(
        [aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT), aggregated_byte(Status.HEALTHY)] * 3,
        dtype=np.uint8,
    )
    az_index = np.array([0, 0, 1, 1, 255, 255], dtype=np.uint8)
    assert unhealthy_by_az(aggregate_failing(table), az_index, 2) == [1, 1]
    last = np.array([Reason.TIMEOUT, Reason.HEALTHY, Reason.STALE, Reason.LOCAL, 200, 0], np.uint8)
    assert checker_failing(last).tolist() == [True, False, False, False, True, False]


def test_timeline_keeps_the_last_samples_oldest_first() -> None:
    timeline = Timeline(["x", "y"], step=300.0)  # 15 minutes: 3 samples
    assert timeline.length == 3
    size = len(json.dumps(timeline.encoded()))
    for i in range(5):
        timeline.record([i, 10 * i])
        assert len(json.dumps(timeline.encoded())) == size
    assert timeline.ordered().tolist() == [[2, 3, 4], [20, 30, 40]]
    data = np.frombuffer(base64.b64decode(timeline.encoded()["data"]), dtype="<f4")
    assert data.tolist() == [2, 3, 4, 20, 30, 40]
    with pytest.raises(ValueError, match="columns"):
        timeline.record([1])


def test_timeline_resized_keeps_the_newest_of_shared_columns() -> None:
    timeline = Timeline(["x", "y"], step=300.0)
    assert timeline.resized(["x", "y"], 300.0) is timeline
    for i in range(2):
        timeline.record([i, i])
    other = timeline.resized(["y", "z"], 150.0)
    assert other.length == 6
    ordered = other.ordered()
    assert ordered[0].tolist()[-2:] == [0, 1]
    assert np.isnan(ordered[1]).all()
    assert other.filled == 2
    with pytest.raises(ValueError, match="positive"):
        Timeline(["x"], step=0)


def test_roster_is_a_fixed_list_of_fixed_rows() -> None:
    roster = Roster(rows=4, forget_after=10.0)
    roster.expected = ("checker-z",)
    empty = roster.encoded(now=0.0, staleness=5.0, digest=b"d")
    size = len(encode({"rows": empty}))
    roster.saw("checker-a", "a", 7, received_at=0.0, digest=b"d")
    roster.saw("checker-b", "b", 2**40, received_at=-6.0, digest=b"old")
    rows = roster.encoded(now=0.0, staleness=5.0, digest=b"d", used=["checker-a"])
    assert len(rows) == 4
    assert len(encode({"rows": rows})) == size
    by_id = {row[0].strip(): row for row in rows}
    assert by_id["checker-a"][2:] == ["1", "    0.000", fixed_number(7, 20), "1", "1"]
    assert by_id["checker-b"][2] == "0"  # stale
    assert by_id["checker-b"][5] == "0"  # another config
    assert by_id["checker-z"][2] == " "  # expected, never heard from
    later = roster.encoded(now=20.0, staleness=5.0, digest=b"d")
    assert [row[0].strip() for row in later if row[0].strip()] == ["checker-z"]  # forgotten


def test_roster_keeps_at_most_its_rows_dropping_the_longest_silent() -> None:
    roster = Roster(rows=2, forget_after=100.0)
    for i in range(3):
        roster.saw(f"c{i}", "a", i, received_at=float(i), digest=b"")
    rows = roster.encoded(now=3.0, staleness=5.0, digest=b"")
    assert [row[0].strip() for row in rows] == ["c1", "c2"]


def _states(*records: tuple[Policy, list[tuple[int | None, int, str | None]]]) -> RecordStates:
    return RecordStates(records, capacity=8)


def _counted(*down: bool) -> np.ndarray:
    return np.array(down, dtype=np.bool_)


def _flags(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def _table(down: tuple[int, ...], unknown: tuple[int, ...] = ()) -> np.ndarray:
    table = np.full(8, aggregated_byte(Status.HEALTHY), dtype=np.uint8)
    table[list(down)] = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    table[list(unknown)] = 0
    return table


def test_record_states_follow_each_policy() -> None:
    states = _states(
        (Policy.MULTIVALUE, [(0, 1, None), (1, 1, None), (None, 1, None)]),
        (Policy.WEIGHTED, [(2, 1, None), (3, 0, None)]),
        (Policy.FAILOVER, [(4, 1, "primary"), (5, 1, "secondary")]),
        (Policy.SIMPLE, [(6, 1, None)]),
    )
    none = _counted(*[False] * 8)
    letters, flags, opened = states.encoded(_table(()), none, _flags("...."))
    assert (letters, flags, opened) == ("HHNHhHhH", "....", 0)
    down = (1, 2, 4, 6)
    # the simple record fails open: its mode counts its one answer healthy, flag F
    counted = _counted(False, True, False, True, False, True, False, False)
    letters, flags, opened = states.encoded(_table(down), counted, _flags("...F"))
    # weighted: the weight-0 answer stands in; failover: the secondary; simple: fails open
    assert (letters, flags, opened) == ("HuNuHuHU", "...F", 1)
    counted = _counted(False, True, False, True, False, True, False, True)
    letters, flags, _ = states.encoded(_table(down), counted, _flags("...D"))
    assert letters[-1] == "u"
    assert flags[-1] == "D"


def test_record_states_take_the_lever_flags_and_otherwise_the_answer_set() -> None:
    states = _states(
        (Policy.SIMPLE, [(0, 1, None), (1, 1, None)]),
        (Policy.SIMPLE, [(2, 1, None)]),
        (Policy.SIMPLE, [(3, 1, None)]),
    )
    # panic on the first (both answered), a shift ignored on the second, nothing on the third
    counted = _counted(False, False, False, True)
    letters, flags, opened = states.encoded(_table((1, 3)), counted, _flags("PS."))
    assert (letters, flags, opened) == ("HUHu", "PS-", 0)


def test_record_states_unknown_counts_as_healthy_and_no_table_is_unknown() -> None:
    states = _states((Policy.SIMPLE, [(0, 1, None), (1, 1, None)]))
    letters, _, _ = states.encoded(_table((), unknown=(0,)), _counted(False, False), _flags("."))
    assert letters == "KH"
    letters, flags, _ = states.encoded(None, _counted(False, False), _flags("."))
    assert (letters, flags) == ("KK", ".")
    assert _states().encoded(None, _counted(), _flags("")) == ("", "", 0)


def test_snapshot_size_does_not_depend_on_health() -> None:
    """A whole snapshot as the roles build it, for random tables: always the same size."""
    rng = np.random.default_rng(7)
    states = _states(
        (Policy.MULTIVALUE, [(0, 1, None), (1, 1, None)]),
        (Policy.FAILOVER, [(2, 1, "primary"), (3, 1, "secondary")]),
    )
    timeline = Timeline(["q", "unhealthy:a"], step=1.0)
    roster = Roster(ROWS_CHECKERS, 900.0)
    sizes = set()
    for tick in range(50):
        table = rng.integers(0, 40, size=8, dtype=np.uint8)
        counted = (table & 3 == Status.UNHEALTHY)[[0, 1, 2, 3]]
        flags_in = _flags(["..", "F.", ".D", "PS"][tick % 4])
        letters, flags, opened = states.encoded(table, counted, flags_in)
        failing = unhealthy_by_az(aggregate_failing(table), np.zeros(8, np.uint8), 1)
        timeline.record([rng.random() * 10**tick, failing[0]])
        if tick % 3:
            roster.saw(f"c{tick % 5}", "a", int(rng.integers(0, 2**62)), tick, b"x")
        body = {
            "table": table_b64(table, 8),
            "records": [letters, flags, fixed_number(opened, 7)],
            "failing": [fixed_number(n, 7) for n in failing],
            "age": fixed_number(rng.random() * 10**tick, 9, 3),
            "timeline": timeline.encoded(),
            "checkers": roster.encoded(float(tick), 2.0, b"x"),
        }
        sizes.add(len(encode(body)))
    assert len(sizes) == 1, sizes


def test_status_checks_lists_the_config_side() -> None:
    from sim.testing import document_dict
    from urn.config import parse_document

    checks = [
        {"slot": 3, "name": "web-a", "type": "http", "host": "127.0.0.1", "port": 80, "az": "a"},
        {"slot": 5, "name": "db-b", "type": "tcp", "host": "127.0.0.1", "port": 5432, "az": "b"},
    ]
    records = [
        {
            "name": "www.example.com.",
            "type": "A",
            "policy": "failover",
            "answers": [
                {"value": "10.0.0.1", "check": 3, "role": "primary"},
                {"value": "10.0.0.2", "check": 5, "role": "secondary"},
            ],
        }
    ]
    document = parse_document(document_dict(checks, records, capacity=16))
    body = json.loads(status_checks(document, "aggregator", "aggregate"))
    assert body["capacity"] == 16
    assert body["kind"] == "aggregate"
    assert len(body["checks"]) == len(document.checks)
    assert body["legend"]["reasons"][Reason.TIMEOUT] == "timeout"
    assert body["azs"] == ["a", "b"]
    assert body["checks"][0] == [3, "web-a", "http", "http://127.0.0.1:80/", "a", ""]
    assert body["records"][0][3][1] == ["10.0.0.2", 5, 1, "secondary"]
