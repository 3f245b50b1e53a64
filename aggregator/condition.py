"""N-of-M conditioning over a stack of checker tables, whole table at once.

Owns: the verdict of every probed slot from the observations in the fresh checker
tables (DESIGN.md section 4): per slot take its M most recent observations (non-zero
values), newest table first; unhealthy when at least N of them are failures (values
>= 2), unknown when there is none, healthy otherwise. An unhealthy slot carries its
dominant failure reason: the most frequent failure value among the considered
observations, ties going to the lowest reason code; a value no `Reason` names counts
as ERROR.
Never: loops over slots in Python, reads a clock, or allocates per-slot objects.
Cost: O(capacity x stacked tables) array work per call whatever the slots hold; every
buffer is allocated once per (capacity, table count) and reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from urn.table import Reason, SlotArray, Status

if TYPE_CHECKING:
    from collections.abc import Sequence

    from urn.config import Document

__all__ = ["Conditioner", "Thresholds"]

FIRST_FAILURE = int(Reason.TIMEOUT)
LAST_REASON = int(Reason.ERROR)
FAILURE_CODES = tuple(range(FIRST_FAILURE, LAST_REASON + 1))
MAX_OF_LAST = 255
_LANE = 8  # slots per uint64 word in the byte-lane (SWAR) counters


def _lane_sum(rows: npt.NDArray[np.bool_], out: npt.NDArray[np.uint64]) -> SlotArray:
    """Per-slot count of true rows, eight slots per uint64 add, as a byte per slot.

    Exact while no slot counts past 255: every sum taken here is of considered
    observations, at most M <= 255 per slot, so no byte lane can carry into the next.
    """
    np.add.reduce(rows.view("<u8"), axis=0, out=out)
    return out.view(np.uint8)


@dataclass(frozen=True, slots=True, eq=False)
class Thresholds:
    """Per-slot N and M, built once per config pass. M = 0 marks a slot nobody probes."""

    failures: SlotArray  # N per slot (1 where unconfigured)
    of_last: SlotArray  # M per slot (0 where unconfigured or calculated)

    @property
    def capacity(self) -> int:
        return int(self.failures.shape[0])

    @property
    def probed(self) -> npt.NDArray[np.bool_]:
        return self.of_last > 0

    @classmethod
    def from_document(cls, document: Document) -> Thresholds:
        """Per-slot arrays for the probed checks of `document`; others stay unknown."""
        return cls.build(
            document.capacity,
            [(c.slot, c.failures, c.of_last) for c in document.checks if c.is_probed],
        )

    @classmethod
    def build(cls, capacity: int, checks: Sequence[tuple[int, int, int]]) -> Thresholds:
        """From (slot, N, M) triples; 1 <= N <= M <= 255."""
        failures = np.ones(capacity, dtype=np.uint8)
        of_last = np.zeros(capacity, dtype=np.uint8)
        if checks:
            table = np.asarray(checks, dtype=np.int64).reshape(-1, 3)
            slots, ns, ms = table[:, 0], table[:, 1], table[:, 2]
            if np.any(ns < 1) or np.any(ns > ms) or np.any(ms > MAX_OF_LAST):
                raise ValueError("thresholds need 1 <= failures <= of_last <= 255")
            failures[slots] = ns
            of_last[slots] = ms
        failures.setflags(write=False)
        of_last.setflags(write=False)
        return cls(failures=failures, of_last=of_last)


class Conditioner:
    """Reusable buffers for N-of-M over stacked tables of `capacity` slots.

    Buffers are padded to a multiple of eight slots (padding is never observed) and
    grow, never shrink, with the number of stacked tables; a steady tick allocates
    nothing of size capacity.
    """

    def __init__(self, capacity: int, rows: int = 1) -> None:
        self.capacity = capacity
        self.width = -(-capacity // _LANE) * _LANE
        width = self.width
        self._rows = 0
        self._grow(max(rows, 1))
        self._n = np.ones(width, dtype=np.uint8)
        self._m = np.zeros(width, dtype=np.uint8)
        self._thresholds: Thresholds | None = None
        self._words = np.empty(width // _LANE, dtype="<u8")
        self._nfail = np.empty(width, dtype=np.uint8)
        self._counts = np.empty((len(FAILURE_CODES), width), dtype=np.uint8)
        self._best = np.empty(width, dtype=np.uint8)
        self._dominant = np.empty(width, dtype=np.uint8)
        self._flag = np.empty(width, dtype=np.bool_)
        self._unhealthy = np.empty(width, dtype=np.bool_)
        self._seen = np.empty(width, dtype=np.bool_)
        self._small = np.empty(width, dtype=np.uint8)
        self._result = np.empty(width, dtype=np.uint8)

    def _grow(self, rows: int) -> None:
        shape = (rows, self.width)
        self.stack = np.zeros(shape, dtype=np.uint8)
        self._observed = np.empty(shape, dtype=np.bool_)
        # A running count of observations: uint8 while it cannot wrap.
        self._rank = np.empty(shape, dtype=np.uint8 if rows <= 255 else np.uint16)
        self._considered = np.empty(shape, dtype=np.bool_)
        self._failed = np.empty(shape, dtype=np.bool_)
        self._values = np.empty(shape, dtype=np.uint8)
        self._match = np.empty(shape, dtype=np.bool_)
        self._rows = rows

    def load(self, tables: Sequence[SlotArray]) -> SlotArray:
        """Copy `tables` (newest first) into the stack; return the filled rows."""
        count = len(tables)
        if count > self._rows:
            self._grow(max(count, 2 * self._rows))
        stack = self.stack[:count]
        for row, table in zip(stack, tables, strict=True):
            np.copyto(row[: self.capacity], table)
        return stack

    def evaluate(self, tables: Sequence[SlotArray], thresholds: Thresholds, out: SlotArray) -> None:
        """Write the aggregated byte of every slot into `out` (probed slots only: others 0)."""
        self.condition(self.load(tables), thresholds, out)

    def _use(self, thresholds: Thresholds) -> None:
        if self._thresholds is not thresholds:
            if thresholds.capacity != self.capacity:
                raise ValueError(f"thresholds for {thresholds.capacity} slots, not {self.capacity}")
            self._n[: self.capacity] = thresholds.failures
            self._m[: self.capacity] = thresholds.of_last
            self._thresholds = thresholds

    def condition(self, stack: SlotArray, thresholds: Thresholds, out: SlotArray) -> None:
        """N-of-M over `stack` (rows newest first, shape (T, width)) into `out`."""
        self._use(thresholds)
        count = stack.shape[0]
        if count == 0:
            out.fill(0)
            return
        n, m = self._n, self._m
        observed = np.not_equal(stack, 0, out=self._observed[:count])
        # rank[t]: observations of the slot in rows 0..t; a loop over tables, not slots.
        rank = self._rank[:count]
        np.copyto(rank[0], observed[0])
        for t in range(1, count):
            np.add(rank[t - 1], observed[t], out=rank[t])
        considered = np.less_equal(rank, m, out=self._considered[:count])
        np.logical_and(considered, observed, out=considered)
        failed = np.greater_equal(stack, FIRST_FAILURE, out=self._failed[:count])
        np.logical_and(failed, considered, out=failed)
        np.copyto(self._nfail, _lane_sum(failed, self._words))
        seen = np.greater(rank[count - 1], 0, out=self._seen)
        np.logical_and(seen, m, out=seen)

        # Dominant reason: per failure code, how many considered failures carry it.
        values = np.multiply(stack, failed, out=self._values[:count])
        np.minimum(values, LAST_REASON, out=values)
        match = self._match[:count]
        best, dominant, better = self._best, self._dominant, self._flag
        for lane, code in enumerate(FAILURE_CODES):
            np.equal(values, code, out=match)
            np.copyto(self._counts[lane], _lane_sum(match, self._words))
        best[:] = self._counts[0]
        dominant.fill(FIRST_FAILURE)
        for lane in range(1, len(FAILURE_CODES)):
            np.greater(self._counts[lane], best, out=better)  # strict: ties keep the lower code
            np.maximum(best, self._counts[lane], out=best)
            np.copyto(dominant, FIRST_FAILURE + lane, where=better)

        unhealthy = np.greater_equal(self._nfail, n, out=self._unhealthy)
        result = self._result
        # status: 0 with no observation, else 1 + unhealthy.
        np.add(unhealthy, Status.HEALTHY, out=result, dtype=np.uint8, casting="unsafe")
        np.multiply(result, seen, out=result, casting="unsafe")
        # reason << 2 on unhealthy slots only (an unhealthy slot has been seen: N >= 1).
        small = self._small
        np.left_shift(dominant, 2, out=small)
        np.multiply(small, unhealthy, out=small, casting="unsafe")
        np.bitwise_or(result, small, out=result)
        np.copyto(out, result[: self.capacity])
