"""condition.py's cost and immutability promises, measured (no I/O).

An aggregator holds one `Conditioner` and one `Thresholds` per config pass for the whole
table, so their size per slot is what a million-slot fleet pays: every buffer is one byte
a slot (a flag or a reason) except the counts (two bytes) and the needed-votes product
(eight). A buffer silently widened to numpy's default float64 multiplies that. These tests
hold the footprint to that budget, and the first tick of a fleet-sized conditioner to
"allocates nothing of table size", as the steady ones already are.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from aggregator.condition import FAILURE_CODES, Conditioner, Observation, Thresholds
from urn.table import Status

CAPACITY = 100_000
# Per slot: 9 one-byte planes per checker row; then two uint16 counts, one float64, eight
# flags and bytes, one uint16 tally per failure code, one uint16 best.
ROW_BYTES = 9
TABLE_BYTES = 2 + 2 + 8 + 8 + 2 * len(FAILURE_CODES) + 2 + 1
SLACK = 4096  # the objects themselves


def _allocated(build: object) -> int:
    """Bytes still held after calling `build` (the object it returns is kept alive)."""
    assert callable(build)
    tracemalloc.start()
    try:
        kept = build()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return current


@pytest.mark.parametrize("rows", [1, 4])
def test_conditioner_buffers_fit_the_per_slot_budget(rows: int) -> None:
    held = _allocated(lambda: Conditioner(CAPACITY, rows=rows))
    assert held <= (ROW_BYTES * rows + TABLE_BYTES) * CAPACITY + SLACK


def test_default_conditioner_is_sized_for_one_checker() -> None:
    held = _allocated(lambda: Conditioner(CAPACITY))
    assert held <= (ROW_BYTES + TABLE_BYTES) * CAPACITY + SLACK


def test_thresholds_fit_the_per_slot_budget() -> None:
    # failures, history mask, cross_az: one byte; min_checkers: two; unhealthy_at: eight.
    held = _allocated(lambda: Thresholds.build(CAPACITY, []))
    assert held <= 13 * CAPACITY + SLACK


def test_thresholds_are_read_only() -> None:
    thresholds = Thresholds.build(4, [(1, 2, 3, 0.5, 1, True)])
    arrays = (
        thresholds.failures,
        thresholds.history_mask,
        thresholds.unhealthy_at,
        thresholds.min_checkers,
        thresholds.cross_az,
    )
    for array in arrays:
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1


def test_bad_quorum_is_refused_with_the_rule_spelt_out() -> None:
    with pytest.raises(
        ValueError, match=r"^quorum needs 0 < unhealthy_at <= 1 and min_checkers >= 1$"
    ):
        Thresholds.build(2, [(0, 1, 1, 0.0, 1, True)])


def test_first_tick_of_a_fleet_sized_conditioner_allocates_nothing_of_table_size() -> None:
    capacity, rows = 400_000, 3
    thresholds = Thresholds.build(capacity, [(s, 1, 1, 0.5, 1, True) for s in range(64)])
    fleet = [
        Observation(
            last=np.ones(capacity, dtype=np.uint8),
            history=np.zeros(capacity, dtype=np.uint8),
            az=az,
        )
        for az in ("a", "b", "c")[:rows]
    ]
    conditioner = Conditioner(capacity, rows=rows)
    out = np.empty(capacity, dtype=np.uint8)
    tracemalloc.start()
    try:
        conditioner.evaluate(fleet, thresholds, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < capacity // 2  # one row plane alone would be `capacity` bytes
    assert out[:64].tolist() == [int(Status.HEALTHY)] * 64  # every checker says healthy
