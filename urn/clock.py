"""One source of time for every component.

Owns: monotonic time (for deadlines and durations), wall time (for table timestamps
and staleness across processes) and sleeping until an absolute monotonic deadline.
Never: sleeps for a relative interval in a ticker; callers compute absolute deadlines
so drift cannot build up. `FakeClock` lets tests step time without waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once monotonic() >= deadline."""


class SystemClock:
    """The real clocks of this process."""

    # The function itself, not a method that calls it: the probe path reads it twice
    # per probe.
    monotonic = staticmethod(time.monotonic)

    def time(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class FakeClock:
    """A clock that moves only when told; `advance` wakes sleepers in deadline order."""

    def __init__(self, start: float = 1_000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_offset
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone (as NTP may): monotonic time does not move."""
        self._wall_offset += seconds

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), waiter))
        await waiter

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its own deadline, in order."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, waiter = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not waiter.done():
                waiter.set_result(None)
            # Let the woken task run (and perhaps schedule its next sleep) before moving on.
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        await asyncio.sleep(0)

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, w in self._sleepers if not w.done())
