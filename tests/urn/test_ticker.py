"""run_every: ticks on absolute deadlines, never drifts, skips (never bursts) after an overrun."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from urn.clock import FakeClock
from urn.testing import wait_until
from urn.ticker import run_every

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Ticks:
    def __init__(self, clock: FakeClock, cost: float = 0.0) -> None:
        self.clock = clock
        self.cost = cost  # virtual seconds each tick takes (time moves on while it runs)
        self.at: list[float] = []
        self.late: list[float] = []
        self.overrun_once: float = 0.0

    async def tick(self) -> None:
        started = self.clock.monotonic()
        self.at.append(started)
        spent = self.cost + self.overrun_once
        self.overrun_once = 0.0
        if spent:
            # Work that takes virtual time: the test's steps move the clock meanwhile.
            await self.clock.sleep_until(started + spent)


@pytest.fixture
async def tasks() -> AsyncIterator[list[asyncio.Task[None]]]:
    started: list[asyncio.Task[None]] = []
    yield started
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)


async def step(clock: FakeClock, seconds: float, times: int) -> None:
    for _ in range(times):
        await clock.advance(seconds)


async def test_ticks_on_absolute_deadlines_with_offset(tasks: list[asyncio.Task[None]]) -> None:
    clock = FakeClock(start=100.0)
    ticks = Ticks(clock)
    tasks.append(asyncio.create_task(run_every(clock, lambda: 1.0, ticks.tick, offset=0.25)))
    await wait_until(lambda: clock.sleepers == 1, message="the ticker to sleep")
    await step(clock, 0.5, 10)
    assert ticks.at == [100.25, 101.25, 102.25, 103.25, 104.25]


async def test_no_drift_when_each_tick_takes_time(tasks: list[asyncio.Task[None]]) -> None:
    """A tick costing 0.3 s still starts every 1.0 s: deadlines are start + k * interval."""
    clock = FakeClock(start=0.0)
    ticks = Ticks(clock, cost=0.3)
    tasks.append(asyncio.create_task(run_every(clock, lambda: 1.0, ticks.tick)))
    await wait_until(lambda: bool(ticks.at), message="the first tick")
    await step(clock, 0.1, 1000)
    assert len(ticks.at) >= 100
    assert ticks.at[:100] == pytest.approx([float(k) for k in range(100)], abs=1e-9)


async def test_overrun_skips_missed_deadlines_instead_of_bursting(
    tasks: list[asyncio.Task[None]],
) -> None:
    clock = FakeClock(start=0.0)
    ticks = Ticks(clock)
    lateness: list[float] = []
    tasks.append(
        asyncio.create_task(run_every(clock, lambda: 1.0, ticks.tick, on_late=lateness.append))
    )
    await wait_until(lambda: bool(ticks.at), message="the first tick")
    await step(clock, 1.0, 3)  # ticks at 0, 1, 2, 3
    ticks.overrun_once = 3.5  # the tick at 4 runs until 7.5
    await step(clock, 0.25, 28)  # to 10.0
    # 5, 6 and 7 were missed: the next tick is at 8, then 9, 10 -- one each, no burst.
    assert ticks.at == [0.0, 1.0, 2.0, 3.0, 4.0, 8.0, 9.0, 10.0]
    assert lateness == [pytest.approx(2.5)]


async def test_interval_change_applies_from_the_next_deadline(
    tasks: list[asyncio.Task[None]],
) -> None:
    clock = FakeClock(start=0.0)
    ticks = Ticks(clock)
    interval = [1.0]
    tasks.append(asyncio.create_task(run_every(clock, lambda: interval[0], ticks.tick)))
    await wait_until(lambda: bool(ticks.at), message="the first tick")
    await step(clock, 0.5, 4)  # ticks at 0, 1, 2; the tick at 2 already read 1.0
    interval[0] = 0.5  # read after the tick at 3: next deadlines 3.5, 4.0 ...
    await step(clock, 0.5, 4)
    assert ticks.at == [0.0, 1.0, 2.0, 3.0, 3.5, 4.0]


async def test_late_start_is_reported(tasks: list[asyncio.Task[None]]) -> None:
    clock = FakeClock(start=0.0)
    ticks = Ticks(clock)
    lateness: list[float] = []
    tasks.append(
        asyncio.create_task(
            run_every(clock, lambda: 10.0, ticks.tick, offset=1.0, on_late=lateness.append)
        )
    )
    await asyncio.sleep(0)
    await clock.advance(0.5)
    # One advance that jumps well past the deadline wakes the sleeper at its deadline,
    # so the tick itself is on time: FakeClock never reports lateness it did not cause.
    await clock.advance(5.0)
    assert ticks.at == [1.0]
    assert lateness == []
