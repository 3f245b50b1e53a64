"""When each assigned check is probed: a fixed phase inside a fixed interval.

Owns: the probe timetable. Probe of check i in cycle c is due at
`epoch + (c * interval) + offset_i`, with `offset_i = phase_i * interval` and the epoch on
the fleet's wall-clock grid (multiples of the interval). When the document names the k
checkers of a check, the i-th of them probes it at `spread_phase(check, i, k)`: a hash of
the check plus i/k, so the target sees exactly k probes per interval, evenly spaced, and
the fleet hears of a failure within interval/k per checker. Otherwise the phase is a hash
of (checker id, check). Either way it is stable, different across checkers (the fleet
never probes in lockstep), and independent of which other checks exist: rebuilding the
schedule for added or removed checks leaves every unchanged check's phase alone.
Never: looks at probe results. No backoff, no fast re-check, no modes: every check is
due exactly once per interval whatever happened to its last probe.
Cost: O(1) amortised per due probe; O(checks log checks) per rebuild (config pass).

A cursor that falls more than one interval behind (a stalled process) jumps forward and
reports how many probes it skipped, so the service can count them; it never bursts. A
`take` may be capped: probes due but not taken stay due, in order, for the next take, so
a backlog is the cursor's lag and nothing else (no queue, no second copy of a probe).
"""

# urn: pure

from __future__ import annotations

import bisect
import hashlib
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Schedule", "phase", "spread_phase"]


def phase(checker_id: str, key: str) -> float:
    """A stable fraction in [0, 1) for this checker and check."""
    digest = hashlib.blake2b(f"{checker_id}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def spread_phase(key: str, index: int, count: int) -> float:
    """The phase of the `index`-th of `count` checkers of a check: evenly spaced."""
    return (phase("", key) + index / count) % 1.0


class Schedule:
    """Timetable of (slot, offset) pairs over a fixed interval, with a cursor."""

    __slots__ = ("_cycle", "_index", "_n", "epoch", "interval", "offsets", "slots")

    def __init__(
        self, interval: float, epoch: float, entries: Iterable[tuple[int, float]], now: float
    ) -> None:
        """`entries` are (slot, phase in [0,1)); the cursor starts at the first probe due >= now."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        ordered = sorted(entries, key=lambda e: (e[1], e[0]))
        self.interval = interval
        self.epoch = epoch
        self.slots: list[int] = [slot for slot, _ in ordered]
        self.offsets: list[float] = [ph * interval for _, ph in ordered]
        self._n = len(ordered)
        self._cycle = 0
        self._index = 0
        self._seek(now)

    def __len__(self) -> int:
        return self._n

    def _seek(self, now: float) -> None:
        elapsed = now - self.epoch
        cycle = math.floor(elapsed / self.interval) if elapsed > 0 else 0
        start = self.epoch + cycle * self.interval
        index = bisect.bisect_left(self.offsets, now - start) if elapsed > 0 else 0
        if index >= self._n:
            cycle, index = cycle + 1, 0
        self._cycle, self._index = cycle, index

    @property
    def cycle(self) -> int:
        """The cycle the next due probe belongs to."""
        return self._cycle

    def next_due(self) -> float | None:
        """When the next probe is due, or None when nothing is scheduled."""
        if not self._n:
            return None
        return self.epoch + self._cycle * self.interval + self.offsets[self._index]

    def take(self, now: float, limit: int | None = None) -> tuple[list[int], list[float], int]:
        """Slots due by `now` (at most `limit` of them), their due times, and how many
        probes were skipped.

        A probe due more than one interval ago is skipped (its check's next probe is
        already due); the service counts it, it is never reported as a target failure.
        Due probes beyond `limit` are left for the next take.
        """
        slots: list[int] = []
        dues: list[float] = []
        n = self._n
        if not n:
            return slots, dues, 0
        skipped = 0
        interval = self.interval
        offsets = self.offsets
        cycle, index = self._cycle, self._index
        start = self.epoch + cycle * interval
        due = start + offsets[index]
        if now - due > interval:
            before = cycle * n + index
            self._seek(now - interval)
            cycle, index = self._cycle, self._index
            skipped = cycle * n + index - before
            start = self.epoch + cycle * interval
            due = start + offsets[index]
        room = -1 if limit is None else limit  # counts down to 0; from -1 it never gets there
        while due <= now and room:
            room -= 1
            slots.append(self.slots[index])
            dues.append(due)
            index += 1
            if index == n:
                index = 0
                cycle += 1
                start = self.epoch + cycle * interval
            due = start + offsets[index]
        self._cycle, self._index = cycle, index
        return slots, dues, skipped
