"""Each checker's own N-of-M verdict, then a quorum of checkers and AZs, whole table at once.

Owns: the fleet verdict of every probed slot (DESIGN.md section 4).
  1. Per fresh checker and slot, from that checker's own probe history (urn.table): no
     verdict when its `last` byte is no-data (0, LOCAL, STALE) or the slot's check changed
     since the table's config; else unhealthy when at least N of its last M probes failed.
  2. Across the checkers with a verdict (v of them, u unhealthy):
       unknown   when v < min_checkers (or v = 0);
       unhealthy when u >= unhealthy_at x v, and, with cross_az, unless the unhealthy
                 verdicts all come from one AZ while another AZ's checkers judge healthy;
       healthy   otherwise.
  So one AZ's checkers seeing the world wrongly cannot take a healthy target down. An
  unhealthy slot carries the dominant reason: the most common failure in the `last` bytes
  of the checkers judging it unhealthy, ties to the lower code, ERROR when none is a
  failure; a code no `Reason` names counts as ERROR.
Never: loops over slots in Python, reads a clock, or allocates per-slot objects.
Cost: O(capacity x fresh checkers) array work per call whatever the slots hold; buffers
are allocated once per (capacity, checker count) and reused. The only Python loops are
over checkers with a foreign config digest, over AZs and over the eight failure codes.
"""

# urn: pure

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from urn.table import HISTORY_BITS, NO_DATA_REASONS, REASON_SHIFT, Reason, SlotArray, Status

if TYPE_CHECKING:
    from collections.abc import Sequence

    from urn.config import Document

__all__ = [
    "MAX_OF_LAST",
    "Conditioner",
    "Observation",
    "Thresholds",
    "checker_verdict",
]

FIRST_FAILURE = int(Reason.TIMEOUT)
LAST_REASON = int(Reason.ERROR)
FAILURE_CODES = tuple(range(FIRST_FAILURE, LAST_REASON + 1))
MAX_OF_LAST = HISTORY_BITS
# Relative slack on `u >= unhealthy_at x v`, so 0.5 x 6 means 3 whatever float rounding does.
_EPSILON = 1e-9


_NO_DATA = tuple(np.uint8(r) for r in NO_DATA_REASONS)


def checker_verdict(last: int, history: int, failures: int, of_last: int) -> Status:
    """One checker's verdict on one slot: what `Conditioner` computes for every slot."""
    if last in NO_DATA_REASONS:
        return Status.UNKNOWN
    failed = (history & ((1 << of_last) - 1)).bit_count()
    return Status.UNHEALTHY if failed >= failures else Status.HEALTHY


@dataclass(frozen=True, slots=True, eq=False)
class Observation:
    """One fresh checker's table, as the two planes of urn.table plus who sent it."""

    last: SlotArray
    history: SlotArray
    az: str
    # Slots whose check changed between this table's config and ours: no verdict there.
    ignore: npt.NDArray[np.bool_] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Thresholds:
    """Per-slot N-of-M and quorum rule, built once per config pass. Unprobed slots: M = 0."""

    failures: SlotArray  # N per slot (1 where unconfigured)
    history_mask: SlotArray  # (1 << M) - 1 per slot: the probes N-of-M reads
    unhealthy_at: npt.NDArray[np.float64]  # fraction of verdicts; 2.0 where unprobed
    min_checkers: npt.NDArray[np.uint16]  # at least 1; more than any fleet where unprobed
    cross_az: npt.NDArray[np.bool_]

    @property
    def capacity(self) -> int:
        return int(self.failures.shape[0])

    @property
    def probed(self) -> npt.NDArray[np.bool_]:
        return self.history_mask > 0

    def needed(self, slot: int, verdicts: int) -> float:
        """Unhealthy verdicts that take `slot` down out of `verdicts`: the tick's own test."""
        return float(self.unhealthy_at[slot]) * verdicts

    def rule_of(self, slot: int) -> dict[str, float | int | bool]:
        """The slot's rule as configured, for explanations."""
        return {
            "failures": int(self.failures[slot]),
            "of_last": int(self.history_mask[slot]).bit_length(),
            "unhealthy_at": float(self.unhealthy_at[slot]) / (1 - _EPSILON),
            "min_checkers": int(self.min_checkers[slot]),
            "cross_az": bool(self.cross_az[slot]),
        }

    @classmethod
    def from_document(cls, document: Document) -> Thresholds:
        """Per-slot arrays for the probed checks of `document`; others stay unknown."""
        return cls.build(
            document.capacity,
            [
                (
                    c.slot,
                    c.failures,
                    c.of_last,
                    c.quorum.unhealthy_at,
                    c.quorum.min_checkers,
                    c.quorum.cross_az,
                )
                for c in document.checks
                if c.is_probed
            ],
        )

    @classmethod
    def build(
        cls, capacity: int, checks: Sequence[tuple[int, int, int, float, int, bool]]
    ) -> Thresholds:
        """From (slot, N, M, unhealthy_at, min_checkers, cross_az); 1 <= N <= M <= 8."""
        failures = np.ones(capacity, dtype=np.uint8)
        mask = np.zeros(capacity, dtype=np.uint8)
        unhealthy_at = np.full(capacity, 2.0)
        min_checkers = np.full(capacity, np.iinfo(np.uint16).max, dtype=np.uint16)
        cross_az = np.ones(capacity, dtype=np.bool_)
        if checks:
            slots = np.array([c[0] for c in checks], dtype=np.intp)
            ns = np.array([c[1] for c in checks], dtype=np.int64)
            ms = np.array([c[2] for c in checks], dtype=np.int64)
            ats = np.array([c[3] for c in checks], dtype=np.float64)
            mins = np.array([c[4] for c in checks], dtype=np.int64)
            if np.any(ns < 1) or np.any(ns > ms) or np.any(ms > MAX_OF_LAST):
                raise ValueError(f"thresholds need 1 <= failures <= of_last <= {MAX_OF_LAST}")
            if np.any(ats <= 0) or np.any(ats > 1) or np.any(mins < 1):
                raise ValueError("quorum needs 0 < unhealthy_at <= 1 and min_checkers >= 1")
            failures[slots] = ns
            mask[slots] = (1 << ms) - 1
            unhealthy_at[slots] = ats * (1 - _EPSILON)
            min_checkers[slots] = mins
            cross_az[slots] = [c[5] for c in checks]
        for array in (failures, mask, unhealthy_at, min_checkers, cross_az):
            array.setflags(write=False)
        return cls(failures, mask, unhealthy_at, min_checkers, cross_az)


class Conditioner:
    """Reusable buffers for the verdicts of up to `rows` checkers over `capacity` slots.

    Buffers grow, never shrink, with the number of fresh checkers; a steady tick
    allocates nothing of size capacity.
    """

    def __init__(self, capacity: int, rows: int = 1) -> None:
        self.capacity = capacity
        shape = (capacity,)
        self._rows = 0
        self._grow(max(rows, 1))
        self._unhealthy_votes = np.empty(shape, dtype=np.uint16)
        self._verdicts = np.empty(shape, dtype=np.uint16)
        self._needed = np.empty(shape, dtype=np.float64)
        self._az_unhealthy = np.empty(shape, dtype=np.bool_)
        self._az_healthy = np.empty(shape, dtype=np.bool_)
        self._unhealthy_azs = np.empty(shape, dtype=np.uint8)
        self._vetoed = np.empty(shape, dtype=np.bool_)
        self._flag = np.empty(shape, dtype=np.bool_)
        self._known = np.empty(shape, dtype=np.bool_)
        self._unhealthy = np.empty(shape, dtype=np.bool_)
        self._counts = np.empty((len(FAILURE_CODES), capacity), dtype=np.uint16)
        self._best = np.empty(shape, dtype=np.uint16)
        self._dominant = np.empty(shape, dtype=np.uint8)
        self._result = np.empty(shape, dtype=np.uint8)

    def _grow(self, rows: int) -> None:
        shape = (rows, self.capacity)
        self._last = np.empty(shape, dtype=np.uint8)
        self._history = np.empty(shape, dtype=np.uint8)
        self._has_verdict = np.empty(shape, dtype=np.bool_)
        self._failed = np.empty(shape, dtype=np.uint8)
        self._votes_unhealthy = np.empty(shape, dtype=np.bool_)
        self._votes_healthy = np.empty(shape, dtype=np.bool_)
        self._codes = np.empty(shape, dtype=np.uint8)
        self._match = np.empty(shape, dtype=np.bool_)
        self._flag_rows = np.empty(shape, dtype=np.bool_)
        self._rows = rows

    def evaluate(
        self, observations: Sequence[Observation], thresholds: Thresholds, out: SlotArray
    ) -> None:
        """Write the aggregated byte of every slot into `out` (probed slots only: others 0)."""
        if thresholds.capacity != self.capacity:
            raise ValueError(f"thresholds for {thresholds.capacity} slots, not {self.capacity}")
        count = len(observations)
        if count == 0:
            out.fill(0)
            return
        if count > self._rows:
            self._grow(max(count, 2 * self._rows))
        # Rows grouped by AZ, so each AZ is one contiguous block of the stack.
        order = sorted(range(count), key=lambda i: observations[i].az)
        last, history = self._last[:count], self._history[:count]
        has_verdict = self._has_verdict[:count]
        for row, index in enumerate(order):
            observation = observations[index]
            np.copyto(last[row], observation.last)
            np.copyto(history[row], observation.history)
        # Ufuncs with `out=` only: a lookup table indexed by bytes would copy the index.
        flag = self._flag_rows[:count]
        np.not_equal(last, _NO_DATA[0], out=has_verdict)
        for no_data in _NO_DATA[1:]:
            np.not_equal(last, no_data, out=flag)
            np.logical_and(has_verdict, flag, out=has_verdict)
        for row, index in enumerate(order):
            ignore = observations[index].ignore
            if ignore is not None:  # verdict, and not ignored
                np.greater(has_verdict[row], ignore, out=has_verdict[row])

        # 1. Every checker's own N-of-M over its probe history.
        failed = np.bitwise_and(history, thresholds.history_mask, out=self._failed[:count])
        np.bitwise_count(failed, out=failed)
        says_unhealthy = np.greater_equal(
            failed, thresholds.failures, out=self._votes_unhealthy[:count]
        )
        np.logical_and(says_unhealthy, has_verdict, out=says_unhealthy)
        says_healthy = np.greater(has_verdict, says_unhealthy, out=self._votes_healthy[:count])

        # 2. The quorum across checkers ...
        unhealthy_votes = np.add.reduce(
            says_unhealthy, axis=0, dtype=np.uint16, out=self._unhealthy_votes
        )
        verdicts = np.add.reduce(has_verdict, axis=0, dtype=np.uint16, out=self._verdicts)
        needed = np.multiply(verdicts, thresholds.unhealthy_at, out=self._needed)
        unhealthy = np.greater_equal(unhealthy_votes, needed, out=self._unhealthy)
        known = np.greater_equal(verdicts, thresholds.min_checkers, out=self._known)
        np.logical_and(unhealthy, known, out=unhealthy)

        # ... and across AZs: a lone AZ's unhealthy verdicts lose to another AZ's healthy.
        unhealthy_azs, vetoed = self._unhealthy_azs, self._vetoed
        unhealthy_azs.fill(0)
        vetoed.fill(False)
        az_unhealthy, az_healthy = self._az_unhealthy, self._az_healthy
        start = 0
        while start < count:
            az = observations[order[start]].az
            end = start + 1
            while end < count and observations[order[end]].az == az:
                end += 1
            np.logical_or.reduce(says_unhealthy[start:end], axis=0, out=az_unhealthy)
            np.logical_or.reduce(says_healthy[start:end], axis=0, out=az_healthy)
            np.add(unhealthy_azs, az_unhealthy, out=unhealthy_azs, casting="unsafe")
            np.greater(az_healthy, az_unhealthy, out=az_healthy)  # healthy, and no dissent
            np.logical_or(vetoed, az_healthy, out=vetoed)
            start = end
        single = np.less(unhealthy_azs, 2, out=self._az_unhealthy)
        np.logical_and(vetoed, single, out=vetoed)
        np.logical_and(vetoed, thresholds.cross_az, out=vetoed)
        np.greater(unhealthy, vetoed, out=unhealthy)

        # Dominant reason: per failure code, how many unhealthy verdicts' last probes carry it.
        # Codes past ERROR count as ERROR; a checker judging unhealthy has a verdict, so its
        # last byte is never a no-data code, and a healthy last probe (1) matches no code.
        codes = np.minimum(last, LAST_REASON, out=self._codes[:count])
        np.multiply(codes, says_unhealthy, out=codes)
        match = self._match[:count]
        best, dominant, better = self._best, self._dominant, self._flag
        best.fill(0)
        dominant.fill(LAST_REASON)
        for lane, code in enumerate(FAILURE_CODES):
            np.equal(codes, code, out=match)
            tally = np.add.reduce(match, axis=0, dtype=np.uint16, out=self._counts[lane])
            np.greater(tally, best, out=better)  # strict: ties keep the lower code
            np.maximum(best, tally, out=best)
            np.copyto(dominant, code, where=better)

        result = self._result
        # status: 0 below min_checkers, else 1 + unhealthy; reason << 2 on unhealthy only.
        np.add(unhealthy, Status.HEALTHY, out=result, dtype=np.uint8, casting="unsafe")
        np.multiply(result, known, out=result, casting="unsafe")
        np.left_shift(dominant, REASON_SHIFT, out=dominant)
        np.multiply(dominant, unhealthy, out=dominant, casting="unsafe")
        np.bitwise_or(result, dominant, out=result)
        np.copyto(out, result)
