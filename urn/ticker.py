"""Fixed-interval drivers on absolute deadlines.

`run_every`: tick k is due at `start + offset + k * interval`, on this process's own
phase. `run_aligned`: ticks fall on wall-clock instants `k * interval + lag`, the same
instants in every process whose clock is in sync, so a pipeline can be phased (checkers
push on the instant, aggregators tick `lag` later). Either way a tick that overruns
never causes a burst of catch-up ticks: missed deadlines are counted and skipped.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from urn.clock import Clock

__all__ = ["LATE_SHARE", "next_aligned", "run_aligned", "run_every"]

# Waking this share of an interval after the planned instant counts as late: timers
# always fire a little after their deadline, and that noise is not news.
LATE_SHARE = 0.1


async def run_every(
    clock: Clock,
    interval: Callable[[], float],
    tick: Callable[[], Awaitable[None]],
    *,
    offset: float = 0.0,
    on_late: Callable[[float], None] | None = None,
) -> None:
    """Call `tick` once per interval forever; `on_late(seconds)` reports late starts."""
    deadline = clock.monotonic() + offset
    while True:
        await clock.sleep_until(deadline)
        lateness = clock.monotonic() - deadline
        if on_late is not None and lateness > 0:
            on_late(lateness)
        await tick()
        step = interval()
        deadline += step
        now = clock.monotonic()
        if now > deadline:
            if on_late is not None:
                on_late(now - deadline)
            skipped = int((now - deadline) // step) + 1
            deadline += skipped * step


def next_aligned(wall: float, interval: float, lag: float) -> float:
    """The first wall-clock instant `k * interval + lag` strictly after `wall`."""
    return (math.floor((wall - lag) / interval) + 1) * interval + lag


async def run_aligned(
    clock: Clock,
    interval: Callable[[], float],
    tick: Callable[[], Awaitable[None]],
    *,
    lag: Callable[[], float] = lambda: 0.0,
    on_late: Callable[[float], None] | None = None,
) -> None:
    """Call `tick` at every wall-clock instant `k * interval() + lag()`, forever.

    Why wall-clock instants: a checker that pushes on the instant and an aggregator
    that ticks `lag` after it hand a fresh result on within `lag`, where two free-running
    phases cost half an interval on average and a whole one at worst. Clocks out of
    sync lose only that phasing, never a tick. The wall clock is read afresh each
    time, so a stepped clock re-phases at once; a tick never follows the previous one
    by less than half an interval, so a clock stepped back cannot double a tick.
    `on_late(seconds)` reports an instant missed (the tick overran it, or the loop
    woke too late for it).
    """
    previous: float | None = None  # monotonic time of the last tick's instant
    while True:
        step = interval()
        now = clock.monotonic()
        wall = clock.time()
        earliest = now
        if previous is not None:
            earliest = max(now, previous + step / 2)
            if on_late is not None and now > previous + step * (1 + LATE_SHARE):
                on_late(now - (previous + step))  # the last tick overran an instant
        instant = next_aligned(wall + (earliest - now), step, lag())
        deadline = now + (instant - wall)
        await clock.sleep_until(deadline)
        woke = clock.monotonic() - deadline
        if on_late is not None and woke > step * LATE_SHARE:
            on_late(woke)
        previous = deadline
        await tick()
