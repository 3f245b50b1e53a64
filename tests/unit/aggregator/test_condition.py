"""Whole-table verdicts against a slot-by-slot reference, and their edge cases (no I/O).

The rule (per checker N-of-M over its own probe history, then a quorum of checkers and
AZs) is read literally in `reference`, one slot and one checker at a time, with exact
fractions; `Conditioner` must agree with it on every slot of every drawn fleet.
"""

from __future__ import annotations

import tracemalloc
from collections import Counter
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.condition import Conditioner, Observation, Thresholds, checker_verdict
from urn.table import Reason, Status, aggregated_byte

OK, REFUSED, TIMEOUT = int(Reason.HEALTHY), int(Reason.REFUSED), int(Reason.TIMEOUT)
TLS = int(Reason.TLS)
LOCAL, STALE = int(Reason.LOCAL), int(Reason.STALE)


class Rule(NamedTuple):
    slot: int
    failures: int
    of_last: int
    unhealthy_at: float
    min_checkers: int
    cross_az: bool


def reference(observations: list[Observation], rules: dict[int, Rule], capacity: int) -> list[int]:
    """The rule read literally, one slot at a time."""
    out = []
    for slot in range(capacity):
        rule = rules.get(slot)
        if rule is None:  # no probed check owns the slot
            out.append(0)
            continue
        # 1. each checker's own verdict: (az, unhealthy?, last byte)
        verdicts: list[tuple[str, bool, int]] = []
        for observation in observations:
            last = int(observation.last[slot])
            history = int(observation.history[slot])
            if last in (0, LOCAL, STALE):
                continue  # no data
            if observation.ignore is not None and observation.ignore[slot]:
                continue  # the slot's target changed since that table's config
            failed = sum((history >> bit) & 1 for bit in range(rule.of_last))
            verdicts.append((observation.az, failed >= rule.failures, last))
        # 2. the quorum
        v = len(verdicts)
        u = sum(1 for _, bad, _ in verdicts if bad)
        if v == 0 or v < rule.min_checkers:
            out.append(int(Status.UNKNOWN))
            continue
        unhealthy = u >= Fraction(repr(rule.unhealthy_at)) * v
        unhealthy_azs = {az for az, bad, _ in verdicts if bad}
        healthy_azs = {az for az, bad, _ in verdicts if not bad}
        vetoed = rule.cross_az and len(unhealthy_azs) < 2 and bool(healthy_azs - unhealthy_azs)
        if not unhealthy or vetoed:
            out.append(int(Status.HEALTHY))
            continue
        # 3. the dominant reason among the unhealthy verdicts' last probes
        codes = [min(last, int(Reason.ERROR)) for _, bad, last in verdicts if bad and last >= 2]
        if codes:
            tally = Counter(codes)
            dominant = min(tally, key=lambda code: (-tally[code], code))
        else:
            dominant = int(Reason.ERROR)
        out.append(aggregated_byte(Status.UNHEALTHY, Reason(dominant)))
    return out


def obs(last: list[int], history: list[int] | None = None, az: str = "a") -> Observation:
    """One checker's table; without `history`, each slot's one last probe."""
    last_array = np.array(last, dtype=np.uint8)
    if history is None:
        history_array = (last_array >= 2) & (last_array != LOCAL) & (last_array != STALE)
        history_array = history_array.astype(np.uint8)
    else:
        history_array = np.array(history, dtype=np.uint8)
    return Observation(last_array, history_array, az)


def run(observations: list[Observation], thresholds: Thresholds) -> list[int]:
    out = np.empty(thresholds.capacity, dtype=np.uint8)
    Conditioner(thresholds.capacity).evaluate(observations, thresholds, out)
    return out.tolist()


LAST = st.sampled_from([0, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 200, 255])
AZS = st.sampled_from(["a", "b", "c"])
UNHEALTHY_AT = st.one_of(
    st.sampled_from([1.0, 0.82, 0.51, 0.5, 1 / 3, 2 / 3]),
    st.integers(1, 1000).map(lambda i: i / 1000),
)


@st.composite
def observations(draw: st.DrawFn, capacity: int) -> Observation:
    # some checkers see everything fine or everything failing (as one AZ's checkers do when
    # their own network is at fault), so the AZ rule gets cases to decide
    mood = draw(st.sampled_from(["random", "random", "healthy", "failing"]))
    last = draw(st.lists(LAST, min_size=capacity, max_size=capacity))
    history = draw(st.lists(st.integers(0, 255), min_size=capacity, max_size=capacity))
    if mood == "healthy":
        last = [v if v in (0, LOCAL, STALE) else OK for v in last]
        history = [0] * capacity
    elif mood == "failing":
        last = [v if v != OK else REFUSED for v in last]
        history = [0xFF] * capacity
    ignore = None
    if draw(st.booleans()):
        ignore = np.array(
            draw(st.lists(st.booleans(), min_size=capacity, max_size=capacity)), dtype=np.bool_
        )
    return Observation(
        np.array(last, dtype=np.uint8), np.array(history, dtype=np.uint8), draw(AZS), ignore
    )


@st.composite
def rules(draw: st.DrawFn, capacity: int) -> dict[int, Rule]:
    out = {}
    for slot in range(capacity):
        if draw(st.integers(0, 4)) == 0:
            continue  # unprobed
        n = draw(st.integers(1, 8))
        out[slot] = Rule(
            slot,
            n,
            draw(st.integers(n, 8)),
            draw(UNHEALTHY_AT),
            draw(st.integers(1, 4)),
            draw(st.booleans()),
        )
    return out


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_matches_the_slot_by_slot_reference(data: st.DataObject) -> None:
    capacity = data.draw(st.integers(1, 24))
    fleet = data.draw(st.lists(observations(capacity), max_size=10))
    drawn = data.draw(rules(capacity))
    thresholds = Thresholds.build(capacity, list(drawn.values()))
    conditioner = Conditioner(capacity, rows=data.draw(st.integers(1, 3)))
    out = np.empty(capacity, dtype=np.uint8)
    conditioner.evaluate(fleet, thresholds, out)
    assert out.tolist() == reference(fleet, drawn, capacity)
    # the same conditioner again, on a subset in another order: its buffers carry nothing
    shuffled = data.draw(st.permutations(fleet))
    subset = shuffled[: data.draw(st.integers(0, len(fleet)))]
    conditioner.evaluate(subset, thresholds, out)
    assert out.tolist() == reference(subset, drawn, capacity)


def test_checker_verdict_is_the_per_slot_rule() -> None:
    # 2 of the last 3 probes (bit 0 newest)
    assert checker_verdict(OK, 0b000, 2, 3) is Status.HEALTHY
    assert checker_verdict(REFUSED, 0b001, 2, 3) is Status.HEALTHY
    assert checker_verdict(REFUSED, 0b011, 2, 3) is Status.UNHEALTHY
    assert checker_verdict(OK, 0b110, 2, 3) is Status.UNHEALTHY  # newest fine, two before not
    assert checker_verdict(REFUSED, 0b11001, 2, 3) is Status.HEALTHY  # bits 3, 4 are too old
    for no_data in (0, LOCAL, STALE):
        assert checker_verdict(no_data, 0xFF, 1, 8) is Status.UNKNOWN
    assert checker_verdict(200, 0b1, 1, 1) is Status.UNHEALTHY


def test_dominant_reason_is_the_most_frequent_ties_to_the_lower_code() -> None:
    thresholds = Thresholds.build(3, [(s, 1, 1, 0.5, 1, False) for s in range(3)])
    fleet = [
        obs([5, TLS, TIMEOUT]),
        obs([TIMEOUT, TIMEOUT, TLS]),
        obs([5, TLS, OK]),
        obs([TIMEOUT, OK, OK]),
    ]
    out = run(fleet, thresholds)
    assert out[0] == aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)  # 5,2,5,2: tie -> 2
    assert out[1] == aggregated_byte(Status.UNHEALTHY, Reason.TLS)  # 7,2,7: TLS twice
    # slot 2: TIMEOUT and TLS once each, two healthy: 2 of 4 >= 0.5 -> tie, the lower code
    assert out[2] == aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)


def test_the_reason_comes_only_from_checkers_judging_unhealthy() -> None:
    # N = 2 of 2: a checker whose last probe failed once is healthy; its TLS must not count
    thresholds = Thresholds.build(2, [(0, 2, 2, 0.5, 1, False), (1, 2, 2, 0.5, 1, False)])
    fleet = [
        obs([TIMEOUT, OK], [0b11, 0b11]),  # slot 1: unhealthy though the newest probe is fine
        obs([TLS, OK], [0b01, 0b10]),
        obs([TLS, OK], [0b01, 0b00]),
    ]
    out = run(fleet, thresholds)
    # slot 0: one unhealthy (TIMEOUT) of three: below half -> healthy
    assert out[0] == Status.HEALTHY
    fleet.append(obs([TIMEOUT, OK], [0b11, 0b11]))
    out = run(fleet, thresholds)
    assert out[0] == aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)  # not TLS (2 healthy)
    # slot 1: unhealthy verdicts whose last probes are all healthy: ERROR
    assert out[1] == aggregated_byte(Status.UNHEALTHY, Reason.ERROR)


def test_codes_no_reason_names_count_as_error() -> None:
    thresholds = Thresholds.build(3, [(s, 1, 1, 1.0, 1, True) for s in range(3)])
    down_error = aggregated_byte(Status.UNHEALTHY, Reason.ERROR)
    assert run([obs([200, 12, 255])], thresholds) == [down_error] * 3
    # and they outvote a lower code seen less often
    fleet = [obs([200, 12, 255]), obs([12, 12, 255]), obs([TIMEOUT, TIMEOUT, TIMEOUT])]
    assert run(fleet, thresholds) == [down_error] * 3
    # LOCAL and STALE are above ERROR too, but they are no data, not failures
    assert run([obs([LOCAL, STALE, 0], [1, 1, 1])], thresholds) == [0, 0, 0]


def test_unconfigured_and_unobserved_slots_are_unknown() -> None:
    thresholds = Thresholds.build(4, [(0, 1, 3, 0.51, 1, True), (1, 1, 3, 0.51, 1, True)])
    fleet = [obs([OK, 0, REFUSED, REFUSED]), obs([OK, 0, REFUSED, OK])]
    assert run(fleet, thresholds) == [Status.HEALTHY, Status.UNKNOWN, 0, 0]
    assert run([], thresholds) == [0, 0, 0, 0]
    assert thresholds.probed.tolist() == [True, True, False, False]


def test_many_checkers_count_past_255() -> None:
    thresholds = Thresholds.build(2, [(0, 1, 1, 0.5, 300, True), (1, 1, 1, 0.5, 1, True)])
    fleet = [obs([REFUSED, REFUSED], az="a") for _ in range(150)]
    fleet += [obs([OK, OK], az="b") for _ in range(149)]
    # 299 verdicts < min_checkers 300
    assert run(fleet, thresholds)[0] == Status.UNKNOWN
    fleet.append(obs([REFUSED, REFUSED], az="b"))
    # 300 verdicts, 151 unhealthy from two AZs: at least half
    out = run(fleet, thresholds)
    assert out == [aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)] * 2


@pytest.mark.parametrize(("at", "total", "needed"), [(0.28, 25, 7), (0.51, 100, 51), (0.5, 6, 3)])
def test_the_fraction_is_read_as_the_decimal_written(at: float, total: int, needed: int) -> None:
    # 0.28 x 25 is 7.000000000000001 in floats; the rule means 7 checkers
    thresholds = Thresholds.build(1, [(0, 1, 1, at, 1, False)])
    for unhealthy, expected in ((needed, int(Status.UNHEALTHY)), (needed - 1, int(Status.HEALTHY))):
        fleet = [obs([REFUSED]) for _ in range(unhealthy)]
        fleet += [obs([OK]) for _ in range(total - unhealthy)]
        assert run(fleet, thresholds)[0] & 0b11 == expected
        assert run(fleet, thresholds) == reference(fleet, {0: Rule(0, 1, 1, at, 1, False)}, 1)


def test_buffers_are_reused_and_grow() -> None:
    capacity = 5
    thresholds = Thresholds.build(capacity, [(0, 1, 2, 0.51, 1, True)])
    conditioner = Conditioner(capacity, rows=1)
    out = np.empty(capacity, dtype=np.uint8)
    conditioner.evaluate([obs([REFUSED] * capacity)] * 4, thresholds, out)
    assert out[0] == aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    grown = conditioner._last
    assert grown.shape[0] >= 4
    conditioner.evaluate([obs([OK] * capacity)] * 2, thresholds, out)
    assert conditioner._last is grown  # fewer checkers: the same buffers
    assert out[0] == Status.HEALTHY
    conditioner.evaluate([obs([REFUSED] * capacity)] * 9, thresholds, out)
    assert conditioner._last.shape[0] >= 9
    assert out[0] == aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)


def _evaluation_peak(capacity: int) -> int:
    """Peak bytes traced while a warmed-up Conditioner evaluates 4 checkers' tables."""
    thresholds = Thresholds.build(
        capacity, [(s, 2, 3, 0.51, 2, True) for s in range(0, capacity, 3)]
    )
    rng = np.random.default_rng(7)
    fleet = [
        Observation(
            rng.integers(0, 12, capacity, dtype=np.uint8),
            rng.integers(0, 256, capacity, dtype=np.uint8),
            az,
            rng.integers(0, 2, capacity, dtype=np.uint8).astype(bool) if az == "c" else None,
        )
        for az in ("a", "a", "b", "c")
    ]
    conditioner = Conditioner(capacity, rows=len(fleet))
    out = np.empty(capacity, dtype=np.uint8)
    conditioner.evaluate(fleet, thresholds, out)
    expected = out.copy()
    tracemalloc.start()
    try:
        conditioner.evaluate(fleet, thresholds, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.tolist() == expected.tolist()
    return peak


def test_a_steady_evaluation_allocates_nothing_of_table_size() -> None:
    """Conditioner's promise: a steady tick allocates nothing of size capacity.

    numpy's casting buffers (a fixed 8,192 elements) are all it allocates: the peak is the
    same for a table four times as large, and far below one plane of it.
    """
    small, large = _evaluation_peak(200_000), _evaluation_peak(800_000)
    assert small < 200_000 // 2
    assert large <= small + 4096


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="failures <= of_last"):
        Thresholds.build(2, [(0, 3, 2, 0.5, 1, True)])
    with pytest.raises(ValueError, match="failures <= of_last"):
        Thresholds.build(2, [(0, 0, 2, 0.5, 1, True)])
    with pytest.raises(ValueError, match="of_last <= 8"):
        Thresholds.build(2, [(0, 1, 9, 0.5, 1, True)])
    for at in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match="0 < unhealthy_at <= 1"):
            Thresholds.build(2, [(0, 1, 1, at, 1, True)])
    with pytest.raises(ValueError, match="min_checkers >= 1"):
        Thresholds.build(2, [(0, 1, 1, 0.5, 0, True)])
    with pytest.raises(ValueError, match="thresholds for 2 slots"):
        Conditioner(3).evaluate([], Thresholds.build(2, []), np.empty(3, np.uint8))


def test_rule_of_reads_back_the_configured_rule() -> None:
    thresholds = Thresholds.build(3, [(1, 2, 5, 0.82, 3, False)])
    assert thresholds.rule_of(1) == {
        "failures": 2,
        "of_last": 5,
        "unhealthy_at": 0.82,
        "min_checkers": 3,
        "cross_az": False,
    }
    assert thresholds.rule_of(0)["of_last"] == 0  # unprobed
