"""How many probes a checker may have in flight, how often its loop wakes, and how many
probes one wake starts: its launch admission.

Owns: sizing the concurrency limit from the work the config asks for and the
descriptors the process has. Every probe in flight holds a socket, so the soft fd limit
less a reserve (the HTTP listener, pushes, the config fetch) bounds it; the work asks
for the sum over checks of each probe's longest life (timeout plus sweep slack) per
probe interval. The wake cadence (`tick`): about TICK_PROBES probes fall due per wake,
within [TICK_MIN, TICK_MAX]. And the most probes one wake may start: BURST_FACTOR ticks'
share of the configured rate, so a late wake (or a backlog) is worked off over the next
wakes in batches that never grow with the lateness, each after the loop has read the
answers waiting, instead of in one batch that holds the loop from reading them.
Never: reads the fd limit, a clock or the config source itself (all are arguments).
Cost: O(checks), once per config pass.
"""

# urn: pure

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BURST_FLOOR",
    "HEADROOM_FLOOR",
    "TICK_MAX",
    "TICK_MIN",
    "Admission",
    "admission",
    "per_wake",
    "tick_for",
]

# Headroom: hashed phases are uniform, not evenly spaced, so starts clump; and a
# CPU-starved loop sweeps late, so probes outlive their timeout a little. Both should
# show as lateness of our own, not as a queue of probes waiting for a slot.
HEADROOM_FACTOR = 2
HEADROOM_FLOOR = 64
# A wake costs about as much as a few probes (the loop and the process it wakes are
# scheduled; on a VM each is an interprocessor interrupt), so a slow config wakes rarely,
# and a fast one often enough that a batch, and the lateness starting it adds, stay small.
# Never coarser than 10 ms: the grid is lateness the checker adds by design, and a wake
# every 10 ms instead of 20 costs nothing measurable at 5,000 probes/s (CPU per probe
# 0.99 of it, six interleaved pairs of bench.checker_throughput scenarios).
TICK_MIN = 0.005
TICK_MAX = 0.01
TICK_PROBES = 100
# Per wake: hashed phases clump (a tick's count varies by a few times its square root),
# and a backlog should drain at about the rate it is due, not all at once.
BURST_FACTOR = 2
BURST_FLOOR = 16


@dataclass(frozen=True, slots=True)
class Admission:
    """The in-flight probes the config needs on average, the limit the loop keeps, the
    probe loop's wake cadence (seconds) and the most probes one wake starts."""

    needed: int
    limit: int
    tick: float
    per_wake: int

    @property
    def short(self) -> bool:
        """Whether the descriptors (or max_concurrency) allow fewer than the work needs."""
        return self.needed > self.limit


def tick_for(checks: int, interval: float) -> float:
    """The wake cadence for `checks` probes per `interval`: TICK_PROBES due per wake,
    within [TICK_MIN, TICK_MAX]."""
    if checks <= 0:
        return TICK_MAX
    return min(TICK_MAX, max(TICK_MIN, TICK_PROBES * interval / checks))


def per_wake(checks: int, interval: float, tick: float) -> int:
    """The most probes one wake starts: BURST_FACTOR ticks' share of `checks` per
    `interval` (at least BURST_FLOOR)."""
    return max(BURST_FLOOR, math.ceil(BURST_FACTOR * checks * tick / interval))


def admission(
    lifetimes: Sequence[float],
    interval: float,
    fd_soft: int,
    fd_reserve: int,
    max_concurrency: int | None,
) -> Admission:
    """The admission for probes living up to `lifetimes` seconds each (one per check),
    every `interval`."""
    needed = math.ceil(sum(lifetimes) / interval)
    allowed = max(1, fd_soft - fd_reserve)
    if max_concurrency is not None:
        allowed = min(allowed, max_concurrency)
    limit = min(allowed, HEADROOM_FACTOR * needed + HEADROOM_FLOOR)
    tick = tick_for(len(lifetimes), interval)
    return Admission(needed, limit, tick, per_wake(len(lifetimes), interval, tick))
