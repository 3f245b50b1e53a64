"""resolver/levers.py: the precedence of the operator levers, row by row (the table in
docs/resolver.md, "Operator levers"), a slow per-record reference against the vectorised
decision over random fleets, and the query's constant work in every mode (pure)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from resolver.answer import down_view, lookup, resolve, unknown_view, up_view
from resolver.dnsmsg import NOERROR, NXDOMAIN, SERVFAIL
from resolver.levers import (
    ANSWERED,
    CLOSED,
    DEGRADED,
    MODE_LABELS,
    MODES,
    NORMAL,
    OPEN,
    PANIC,
    PANIC_SHIFT_IGNORED,
    SHIFT_IGNORED,
    EntryLevers,
    SlotLevers,
    census,
    decide,
    plain,
)
from resolver.levers import NXDOMAIN as ALL_DOWN_NXDOMAIN
from resolver.levers import SERVFAIL as ALL_DOWN_SERVFAIL
from resolver.records import compile_records
from sim.testing import document_dict
from urn.config import MinHealthy, WhenAllDown, parse_document
from urn.config.levers import format_time
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 16
NOW = 1_800_000_000.0  # the wall time every row is validated at
UP = aggregated_byte(Status.HEALTHY)
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
UNKNOWN = aggregated_byte(Status.UNKNOWN)
A = 1
ALL = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def until(seconds: float) -> str:
    return format_time(NOW + seconds)


def override(status: str, seconds: float = 3600) -> dict[str, Any]:
    return {"override": {"status": status, "until": until(seconds), "reason": "maintenance"}}


def shift(az: str, seconds: float = 3600) -> dict[str, Any]:
    return {"az": az, "until": until(seconds), "reason": "moving traffic"}


@dataclass(frozen=True)
class Row:
    """One row of the precedence table: the levers, the table, and what the record does.

    Record `www`: simple, three answers guarded by slots 0, 1, 2 in AZs a, b, c, TTL 60.
    """

    id: str
    expect_mode: str
    expect: list[str]
    table: dict[int, int] = field(default_factory=dict)  # slot -> byte; others healthy
    checks: dict[int, dict[str, Any]] = field(default_factory=dict)  # slot -> extra fields
    record: dict[str, Any] = field(default_factory=dict)
    shifts: list[dict[str, Any]] = field(default_factory=list)
    autoshift: tuple[str, ...] = ()  # the AZs the aggregated table says the fleet shifted
    source: str = "fresh"  # fresh | held: the table answers; stale | none: all unknown
    at: float = 0.0  # seconds after NOW the refresh judges the levers
    rcode: int = NOERROR
    ttl: int = 60


ROWS = [
    Row("no levers: every healthy answer", "normal", ALL),
    Row("invert: healthy counts as down", "normal", ["10.0.0.1", "10.0.0.3"],
        checks={1: {"invert": True}}),
    Row("invert: unhealthy counts as up", "normal", ALL, table={1: DOWN},
        checks={1: {"invert": True}}),
    Row("invert: unknown stays unknown (up)", "normal", ALL, table={1: UNKNOWN},
        checks={1: {"invert": True}}),
    Row("override unhealthy beats a healthy table", "normal", ["10.0.0.2", "10.0.0.3"],
        checks={0: override("unhealthy")}),
    Row("override healthy beats an unhealthy table", "normal", ALL, table={0: DOWN},
        checks={0: override("healthy")}),
    Row("override beats invert", "normal", ALL, checks={0: {"invert": True} | override("healthy")}),
    Row("an expired override drops out", "normal", ALL, checks={0: override("unhealthy", 60)},
        at=60),
    Row("a shift takes its AZ out", "normal", ["10.0.0.1", "10.0.0.3"], shifts=[shift("b")]),
    Row("a shift beats an override healthy", "normal", ["10.0.0.1", "10.0.0.3"],
        checks={1: override("healthy")}, shifts=[shift("b")]),
    Row("a shift never empties a name", "shift_ignored", ["10.0.0.2"], table={0: DOWN, 2: DOWN},
        shifts=[shift("b")]),
    Row("an expired shift drops out", "normal", ALL, shifts=[shift("b", 60)], at=60),
    Row("autoshift takes its AZ out", "normal", ["10.0.0.1", "10.0.0.3"], autoshift=("b",)),
    Row("autoshift never empties a name", "shift_ignored", ["10.0.0.2"],
        table={0: DOWN, 2: DOWN}, autoshift=("b",)),
    Row("an operator's shift sets autoshift aside", "normal", ["10.0.0.1", "10.0.0.2"],
        shifts=[shift("c")], autoshift=("b",)),
    Row("an expired shift lets autoshift stand", "normal", ["10.0.0.1", "10.0.0.3"],
        shifts=[shift("c", 60)], autoshift=("b",), at=60),
    Row("below min_healthy count: panic answers all", "panic", ALL, table={0: DOWN, 1: DOWN},
        record={"min_healthy": {"count": 2}}),
    Row("at min_healthy count: no panic", "normal", ["10.0.0.2", "10.0.0.3"], table={0: DOWN},
        record={"min_healthy": {"count": 2}}),
    Row("below min_healthy percent: panic", "panic", ALL, table={0: DOWN},
        record={"min_healthy": {"percent": 70}}),
    Row("above min_healthy percent: no panic", "normal", ["10.0.0.2", "10.0.0.3"],
        table={0: DOWN}, record={"min_healthy": {"percent": 60}}),
    Row("panic spares a shifted AZ", "panic", ["10.0.0.1", "10.0.0.3"], table={0: DOWN},
        record={"min_healthy": {"count": 2}}, shifts=[shift("b")]),
    Row("panic with the shift ignored answers all", "panic_shift_ignored", ALL,
        table={0: DOWN, 2: DOWN}, record={"min_healthy": {"count": 2}},
        shifts=[shift("b")]),
    Row("all down, open: answers all", "all_down_open", ALL, table={0: DOWN, 1: DOWN, 2: DOWN}),
    Row("all down, closed: NODATA", "all_down_closed", [], table={0: DOWN, 1: DOWN, 2: DOWN},
        record={"when_all_down": "closed"}),
    Row("all down, nxdomain", "all_down_nxdomain", [], table={0: DOWN, 1: DOWN, 2: DOWN},
        record={"when_all_down": "nxdomain"}, rcode=NXDOMAIN),
    Row("all down, servfail", "all_down_servfail", [], table={0: DOWN, 1: DOWN, 2: DOWN},
        record={"when_all_down": "servfail"}, rcode=SERVFAIL),
    Row("all down beats min_healthy", "all_down_closed", [], table={0: DOWN, 1: DOWN, 2: DOWN},
        record={"when_all_down": "closed", "min_healthy": {"count": 2}}),
    Row("overrides can take every answer down", "all_down_closed", [],
        checks={s: override("unhealthy") for s in range(3)}, record={"when_all_down": "closed"}),
    Row("all down with a shift: open answers all", "all_down_open", ALL,
        table={0: DOWN, 1: DOWN, 2: DOWN}, shifts=[shift("b")]),
    Row("stale (on_stale open): all unknown, levers still apply", "normal",
        ["10.0.0.2", "10.0.0.3"], table={0: DOWN, 1: DOWN, 2: DOWN},
        checks={0: override("unhealthy")}, source="stale"),
    Row("held (on_stale hold): the held table, shifts still apply", "normal", ["10.0.0.1"],
        table={2: DOWN}, shifts=[shift("b")], source="held"),
    Row("held (on_stale hold): the held table's autoshift still applies", "normal",
        ["10.0.0.1"], table={2: DOWN}, autoshift=("b",), source="held"),
    Row("no table yet: invert has nothing to invert", "normal", ALL,
        checks={0: {"invert": True}}, source="none"),
    Row("ttl_when_degraded while an answer is down", "normal", ["10.0.0.2", "10.0.0.3"],
        table={0: DOWN}, record={"ttl_when_degraded": 10}, ttl=10),
    Row("ttl_when_degraded while a shift holds", "normal", ["10.0.0.1", "10.0.0.3"],
        record={"ttl_when_degraded": 10}, shifts=[shift("b")], ttl=10),
    Row("one TTL while nothing is down", "normal", ALL, record={"ttl_when_degraded": 10}),
    Row("panic answers carry the short TTL", "panic", ALL, table={0: DOWN, 1: DOWN},
        record={"min_healthy": {"count": 2}, "ttl_when_degraded": 10}, ttl=10),
]  # fmt: skip


def row_document(row: Row) -> dict[str, Any]:
    checks = [
        {"slot": slot, "name": f"c{slot}", "type": "tcp", "host": "127.0.0.1", "port": 9,
         "az": az, **row.checks.get(slot, {})}
        for slot, az in ((0, "a"), (1, "b"), (2, "c"))
    ]  # fmt: skip
    record = {
        "name": "www.example.com.",
        "ttl": 60,
        "answers": [{"value": value, "check": slot} for slot, value in enumerate(ALL)],
        **row.record,
    }
    return document_dict(checks=checks, records=[record], capacity=CAPACITY, shifts=row.shifts)


def decided(row: Row) -> tuple[Any, ...]:
    document = parse_document(row_document(row), now=NOW)
    compiled = compile_records(document, random.Random(1))
    table = np.full(CAPACITY, UP, dtype=np.uint8)
    for slot, byte in row.table.items():
        table[slot] = byte
    if row.source in ("fresh", "held"):
        down, up = down_view(table), up_view(table)
    else:
        down, up = unknown_view(CAPACITY), None
    slots = SlotLevers.of(document)
    autoshifted = slots.az_mask(row.autoshift) if row.autoshift else None
    decision = decide(compiled.levers, slots, down, up, NOW + row.at, autoshifted)
    return compiled, decision


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_the_precedence_table(row: Row) -> None:
    compiled, decision = decided(row)
    rcode, _, _, answers, _, mode = lookup(
        compiled, "www.example.com.", A, decision.views, decision.modes, random.Random(2)
    )
    members = [json.loads(a) for a in answers]
    assert (MODE_LABELS[mode], rcode) == (row.expect_mode, row.rcode)
    assert [m["data"] for m in members] == row.expect
    assert {m["TTL"] for m in members} <= {row.ttl}
    wire = lookup(
        compiled,
        b"\x03www\x07example\x03com\x00",
        A,
        decision.views,
        decision.modes,
        random.Random(2),
    )
    assert (wire[0], wire[5], len(wire[3])) == (rcode, mode, len(answers))
    assert all(int.from_bytes(rr[6:10], "big") == row.ttl for rr in wire[3])


def test_every_row_of_the_table_is_in_the_docs() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[3] / "docs" / "resolver.md").read_text()
    for row in ROWS:
        assert f"| {row.id} |" in docs, row.id


# --- the vectorised decision against a slow per-record reference ------------------------


def reference_mode(
    down: list[bool], shifted: list[bool], minimum: MinHealthy, all_down: WhenAllDown
) -> int:
    """The precedence rules for one record, one answer at a time."""
    up = [not d for d in down]
    kept = [u and not s for u, s in zip(up, shifted, strict=True)]
    if not any(up):
        return {
            WhenAllDown.OPEN: OPEN | DEGRADED,
            WhenAllDown.CLOSED: CLOSED,
            WhenAllDown.NXDOMAIN: ALL_DOWN_NXDOMAIN,
            WhenAllDown.SERVFAIL: ALL_DOWN_SERVFAIL,
        }[all_down]
    holds = any(kept)
    healthy = sum(kept) if holds else sum(up)
    eligible = sum(not s for s in shifted) if holds else len(down)
    panic = healthy < min(minimum.count, eligible) or 100 * healthy < minimum.percent * eligible
    degraded = (not all(up)) or (holds and any(shifted))
    base = (
        (PANIC if holds else PANIC_SHIFT_IGNORED) if panic else (NORMAL if holds else SHIFT_IGNORED)
    )
    return base | (DEGRADED if degraded else 0)


@pytest.mark.parametrize("seed", range(40))
def test_decide_matches_the_reference_over_random_fleets(seed: int) -> None:
    rng = random.Random(seed)
    capacity = 40
    azs = ["a", "b", "c"]
    entries = []
    for _ in range(30):
        size = rng.randint(1, 6)
        slots = [rng.choice([None, *range(capacity)]) for _ in range(size)]
        minimum = MinHealthy(count=rng.choice([0, 0, 1, 2, 3]), percent=rng.choice([0, 0, 50, 80]))
        entries.append((slots, minimum, rng.choice(list(WhenAllDown))))
    levers = EntryLevers.of(entries, capacity)
    unhealthy = [rng.random() < 0.4 for _ in range(capacity)]
    healthy = [not u and rng.random() < 0.8 for u in unhealthy]
    inverted = [rng.random() < 0.2 for _ in range(capacity)]
    forced = [rng.choice([0, 0, 0, 1, 2]) for _ in range(capacity)]
    az_of = [rng.randrange(len(azs) + 1) for _ in range(capacity)]  # len(azs): none
    az_shifted = [rng.random() < 0.4 for _ in azs]
    slot_levers = SlotLevers(
        capacity=capacity,
        invert=np.array([*inverted, False]),
        forced=np.array([*forced, 0], dtype=np.uint8),
        forced_until=np.array([NOW + 1 if f else -np.inf for f in forced] + [-np.inf]),
        azs=tuple(azs),
        az_of=np.array([*az_of, len(azs)], dtype=np.intp),
        shift_until=np.array([NOW + 1 if s else NOW - 1 for s in az_shifted] + [-np.inf]),
    )
    down = bytes([*unhealthy, 0])
    up = bytes([*healthy, 0])
    decision = decide(levers, slot_levers, down, up, NOW)

    def slot_down(slot: int | None) -> bool:
        if slot is None:
            return False
        if forced[slot]:
            return forced[slot] == 2
        return healthy[slot] if inverted[slot] else unhealthy[slot]

    def slot_shifted(slot: int | None) -> bool:
        return slot is not None and az_of[slot] < len(azs) and az_shifted[az_of[slot]]

    expected = [
        reference_mode([slot_down(s) for s in slots], [slot_shifted(s) for s in slots], m, w)
        for slots, m, w in entries
    ]
    assert list(decision.modes) == expected
    assert decision.shifted_azs == tuple(az for az, on in zip(azs, az_shifted, strict=True) if on)
    # what each mode's view says of each answer is what the mode means
    for index, (slots, _, _) in enumerate(entries):
        mode = expected[index]
        for j, slot in enumerate(slots):
            counted = bool(decision.counted_down[levers.starts[index] + j])
            if mode >= ANSWERED:
                assert counted
                continue
            read = bool(decision.views[mode][capacity if slot is None else slot])
            assert counted == read
            if mode in (OPEN | DEGRADED, PANIC_SHIFT_IGNORED, PANIC_SHIFT_IGNORED | DEGRADED):
                assert not read
            elif mode in (PANIC, PANIC | DEGRADED):
                assert read == slot_shifted(slot)
            elif mode in (SHIFT_IGNORED, SHIFT_IGNORED | DEGRADED):
                assert read == slot_down(slot)
            else:
                assert read == (slot_down(slot) or slot_shifted(slot))


def test_autoshifted_azs_add_to_the_documents_shifts() -> None:
    document = parse_document(row_document(Row("x", "normal", ALL)), now=NOW)
    compiled = compile_records(document, random.Random(1))
    table = np.full(CAPACITY, UP, dtype=np.uint8)
    slots = SlotLevers.of(document)
    mask = slots.az_mask(("b", "z"))  # an AZ no check has is ignored
    assert mask.tolist() == [False, True, False]
    decision = decide(compiled.levers, slots, down_view(table), up_view(table), NOW, mask)
    assert decision.shifted_azs == decision.autoshifted_azs == ("b",)
    assert (decision.now, decision.autoshift_overruled) == (NOW, False)
    chosen, _ = resolve(
        compiled.by_text["www.example.com."].by_type[A],
        decision.views,
        decision.modes[compiled.by_text["www.example.com."].by_type[A].index],
        random.Random(1),
        ALL,
    )
    assert chosen == ["10.0.0.1", "10.0.0.3"]


def test_census_counts_entries_by_lever_and_checks_by_override() -> None:
    row = Row(
        "x",
        "panic",
        ALL,
        table={0: DOWN, 1: DOWN},
        checks={1: {"invert": True} | override("unhealthy"), 2: override("healthy", 60)},
        record={"min_healthy": {"count": 2}},
    )
    _, decision = decided(row)
    counts = census(decision)
    assert counts["panic"] == 1
    assert counts["degraded"] == 1
    assert (counts["override_healthy"], counts["override_unhealthy"]) == (1, 1)
    assert counts["inverted"] == 1
    assert counts["shift_ignored"] == counts["all_down_open"] == 0


def test_census_of_a_fleet_without_levers_counts_nothing_forced() -> None:
    """No override anywhere: the override counts are zero, not an index past the end."""
    _, decision = decided(Row("x", "normal", ALL))
    counts = census(decision)
    assert (counts["override_healthy"], counts["override_unhealthy"], counts["inverted"]) == (
        0,
        0,
        0,
    )


def test_census_counts_all_down_open_records_as_degraded() -> None:
    row = Row("x", "all_down_open", ALL, table={0: DOWN, 1: DOWN, 2: DOWN})
    _, decision = decided(row)
    counts = census(decision)
    assert (counts["all_down_open"], counts["degraded"]) == (1, 1)
    row = Row("x", "all_down_closed", [], table={0: DOWN, 1: DOWN, 2: DOWN},
              record={"when_all_down": "closed"})  # fmt: skip
    counts = census(decided(row)[1])
    assert (counts["all_down_open"], counts["degraded"]) == (0, 1)


def test_census_tells_healthy_overrides_from_unhealthy_ones() -> None:
    row = Row("x", "normal", ALL, checks={s: override("healthy") for s in (0, 1)})
    counts = census(decided(row)[1])
    assert (counts["override_healthy"], counts["override_unhealthy"]) == (2, 0)


def test_min_healthy_percent_compares_exactly() -> None:
    """1 of 2 healthy is 50 %: below 50.5 it panics, at 50 it does not."""

    def mode_of(percent: float) -> str:
        row = Row("x", "?", [], table={0: DOWN}, record={"min_healthy": {"percent": percent}})
        document = row_document(row)
        document["records"][0]["answers"] = document["records"][0]["answers"][:2]
        parsed = parse_document(document, now=NOW)
        compiled = compile_records(parsed, random.Random(1))
        table = np.full(CAPACITY, UP, dtype=np.uint8)
        table[0] = DOWN
        decision = decide(
            compiled.levers, SlotLevers.of(parsed), down_view(table), up_view(table), NOW
        )
        entry = compiled.by_text["www.example.com."].by_type[A]
        return MODE_LABELS[decision.modes[entry.index]]

    assert mode_of(50.5) == "panic"
    assert mode_of(50.0) == "normal"


def test_plain_decides_with_no_lever_on_any_slot() -> None:
    entries = EntryLevers.of([([0, 1], MinHealthy(), WhenAllDown.OPEN)], 4)
    decision = plain(entries, bytes([1, 0, 0, 0, 0]))
    assert decision.forced.tolist() == [0] * 5
    assert not decision.inverted.any()
    assert not decision.shifted.any()


def test_an_entry_without_candidates_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^every entry needs at least one candidate$"):
        EntryLevers.of([([], MinHealthy(), WhenAllDown.OPEN)], 4)


def test_no_entries_decide_nothing() -> None:
    decision = plain(EntryLevers.of([], 4), bytes(5))
    assert decision.modes == b""
    assert len(decision.views) == MODES


# --- constant work: every mode reads every candidate once -----------------------------


class CountingView(bytes):
    reads = 0

    def __getitem__(self, index: Any) -> Any:
        CountingView.reads += 1
        return super().__getitem__(index)


@pytest.mark.parametrize("mode", range(ANSWERED))
def test_every_answered_mode_reads_every_candidate_once(mode: int) -> None:
    compiled, _ = decided(Row("x", "normal", ALL))
    entry = compiled.by_text["www.example.com."].by_type[A]
    views = tuple(CountingView(bytes(CAPACITY + 1)) for _ in range(MODES))
    modes = bytearray(len(compiled.entries))
    modes[entry.index] = mode
    CountingView.reads = 0
    lookup(compiled, "www.example.com.", A, views, bytes(modes), random.Random(1))
    assert CountingView.reads == 3


@pytest.mark.parametrize("policy", ["simple", "multivalue", "weighted", "failover"])
def test_a_shift_counts_its_answers_unhealthy_under_every_policy(policy: str) -> None:
    answers: list[dict[str, Any]] = [
        {"value": "10.0.0.2", "check": 1},  # AZ b: the primary, and the heaviest
        {"value": "10.0.0.1", "check": 0},
    ]
    if policy == "failover":
        answers[0]["role"], answers[1]["role"] = "primary", "secondary"
    if policy == "weighted":
        answers[0]["weight"], answers[1]["weight"] = 255, 1
    raw = row_document(Row("x", "normal", ALL, shifts=[shift("b")]))
    raw["records"] = [{"name": "www.example.com.", "policy": policy, "answers": answers}]
    document = parse_document(raw, now=NOW)
    compiled = compile_records(document, random.Random(1))
    table = np.full(CAPACITY, UP, dtype=np.uint8)
    decision = decide(
        compiled.levers, SlotLevers.of(document), down_view(table), up_view(table), NOW
    )
    for seed in range(20):
        _, _, _, chosen, _, _ = lookup(
            compiled, "www.example.com.", A, decision.views, decision.modes, random.Random(seed)
        )
        assert [json.loads(c)["data"] for c in chosen] == ["10.0.0.1"], (policy, seed)
