"""Whole-table N-of-M against a slot-by-slot reference, and its edge cases (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.condition import Conditioner, Thresholds
from urn.table import Reason, Status, aggregated_byte


def reference(stack: np.ndarray, n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """DESIGN.md section 4 read literally, one slot at a time."""
    capacity = stack.shape[1]
    out = np.zeros(capacity, dtype=np.uint8)
    for slot in range(capacity):
        if m[slot] == 0:
            continue
        observed = [int(v) for v in stack[:, slot] if v != 0][: int(m[slot])]
        if not observed:
            continue
        failures = [min(v, int(Reason.ERROR)) for v in observed if v >= 2]
        if len(failures) >= n[slot]:
            dominant = min(set(failures), key=lambda r: (-failures.count(r), r))
            out[slot] = aggregated_byte(Status.UNHEALTHY, Reason(dominant))
        else:
            out[slot] = Status.HEALTHY
    return out


def run(tables: list[list[int]] | np.ndarray, thresholds: Thresholds) -> np.ndarray:
    stack = np.asarray(tables, dtype=np.uint8).reshape(-1, thresholds.capacity)
    out = np.empty(thresholds.capacity, dtype=np.uint8)
    Conditioner(thresholds.capacity).evaluate(list(stack), thresholds, out)
    return out


VALUES = st.sampled_from([0, 0, 1, 1, 1, 2, 3, 4, 5, 9, 10, 200, 255])


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_matches_the_slot_by_slot_reference(data: st.DataObject) -> None:
    capacity = data.draw(st.integers(1, 40))
    rows = data.draw(st.integers(0, 12))
    stack = np.array(
        data.draw(st.lists(VALUES, min_size=rows * capacity, max_size=rows * capacity)),
        dtype=np.uint8,
    ).reshape(rows, capacity)
    checks = []
    for slot in range(capacity):
        if data.draw(st.booleans()):
            n = data.draw(st.integers(1, 6))
            checks.append((slot, n, data.draw(st.integers(n, 8))))
    thresholds = Thresholds.build(capacity, checks)
    out = np.empty(capacity, dtype=np.uint8)
    Conditioner(capacity, rows=2).evaluate(list(stack), thresholds, out)
    assert out.tolist() == reference(stack, thresholds.failures, thresholds.of_last).tolist()


def test_only_the_m_newest_observations_count() -> None:
    thresholds = Thresholds.build(1, [(0, 2, 3)])
    # newest first: 1, (no data), 1, 3, 3 -> the three newest observations are 1, 1, 3
    assert run([[1], [0], [1], [3], [3]], thresholds)[0] == Status.HEALTHY
    # 1, 3, 3 -> two failures of three
    assert run([[1], [0], [3], [3], [1]], thresholds)[0] == aggregated_byte(
        Status.UNHEALTHY, Reason.REFUSED
    )


def test_dominant_reason_is_the_most_frequent_ties_to_the_lower_code() -> None:
    thresholds = Thresholds.build(2, [(0, 3, 5), (1, 2, 4)])
    tables = [[5, 7], [2, 2], [5, 7], [2, 1], [1, 1]]
    out = run(tables, thresholds)
    assert out[0] == aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)  # 5,2,5,2: tie -> 2
    assert out[1] == aggregated_byte(Status.UNHEALTHY, Reason.TLS)  # 7,2,7: TLS twice


def test_values_no_reason_names_count_as_error() -> None:
    thresholds = Thresholds.build(1, [(0, 1, 1)])
    assert run([[200]], thresholds)[0] == aggregated_byte(Status.UNHEALTHY, Reason.ERROR)


def test_unconfigured_and_unobserved_slots_are_unknown() -> None:
    thresholds = Thresholds.build(3, [(0, 1, 3), (1, 1, 3)])
    out = run([[1, 0, 3], [1, 0, 3]], thresholds)
    assert out.tolist() == [Status.HEALTHY, Status.UNKNOWN, Status.UNKNOWN]
    assert run(np.zeros((0, 3)), thresholds).tolist() == [0, 0, 0]


def test_more_than_255_tables_still_rank_correctly() -> None:
    thresholds = Thresholds.build(9, [(slot, 2, 3) for slot in range(9)])
    stack = np.zeros((300, 9), dtype=np.uint8)
    stack[290:] = 3  # failures only far down the stack, beyond the M newest
    stack[:2] = 1
    stack[256] = 1
    out = run(stack, thresholds)
    assert (out == Status.HEALTHY).all()
    stack[:2] = 0
    stack[256] = 0
    out = run(stack, thresholds)
    assert (out == aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)).all()


def test_buffers_are_reused_and_grow() -> None:
    thresholds = Thresholds.build(5, [(0, 1, 2)])
    conditioner = Conditioner(5, rows=1)
    out = np.empty(5, dtype=np.uint8)
    conditioner.evaluate([np.full(5, 3, np.uint8)] * 4, thresholds, out)
    assert out[0] == aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    stack_before = conditioner.stack
    conditioner.evaluate([np.ones(5, np.uint8)] * 2, thresholds, out)
    assert conditioner.stack is stack_before
    assert out[0] == Status.HEALTHY


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="failures <= of_last"):
        Thresholds.build(2, [(0, 3, 2)])
    with pytest.raises(ValueError, match="thresholds for 2 slots"):
        Conditioner(3).evaluate([], Thresholds.build(2, []), np.empty(3, np.uint8))
