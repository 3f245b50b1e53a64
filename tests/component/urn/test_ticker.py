"""run_every and run_aligned: absolute deadlines, no drift, skip (never burst) after overruns."""

from __future__ import annotations

import asyncio

import pytest

from sim.testing import wait_until
from urn.clock import FakeClock
from urn.ticker import next_aligned, run_aligned, run_every


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


async def step(clock: FakeClock, seconds: float, times: int) -> None:
    for _ in range(times):
        await clock.advance(seconds)


async def test_ticks_on_absolute_deadlines_with_offset(running: list[asyncio.Task[None]]) -> None:
    clock = FakeClock(start=100.0)
    ticks = Ticks(clock)
    running.append(asyncio.create_task(run_every(clock, lambda: 1.0, ticks.tick, offset=0.25)))
    await wait_until(lambda: clock.sleepers == 1, message="the ticker to sleep")
    await step(clock, 0.5, 10)
    assert ticks.at == [100.25, 101.25, 102.25, 103.25, 104.25]


async def test_no_drift_when_each_tick_takes_time(running: list[asyncio.Task[None]]) -> None:
    """A tick costing 0.3 s still starts every 1.0 s: deadlines are start + k * interval."""
    clock = FakeClock(start=0.0)
    ticks = Ticks(clock, cost=0.3)
    running.append(asyncio.create_task(run_every(clock, lambda: 1.0, ticks.tick)))
    await wait_until(lambda: bool(ticks.at), message="the first tick")
    await step(clock, 0.1, 1000)
    assert len(ticks.at) >= 100
    assert ticks.at[:100] == pytest.approx([float(k) for k in range(100)], abs=1e-9)


async def test_overrun_skips_missed_deadlines_instead_of_bursting(
    running: list[asyncio.Task[None]],
) -> None:
    clock = FakeClock(start=0.0)
    ticks = Ticks(clock)
    lateness: list[float] = []
    running.append(
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
    running: list[asyncio.Task[None]],
) -> None:
    clock = FakeClock(start=0.0)
    ticks = Ticks(clock)
    interval = [1.0]
    running.append(asyncio.create_task(run_every(clock, lambda: interval[0], ticks.tick)))
    await wait_until(lambda: bool(ticks.at), message="the first tick")
    await step(clock, 0.5, 4)  # ticks at 0, 1, 2; the tick at 2 already read 1.0
    interval[0] = 0.5  # read after the tick at 3: next deadlines 3.5, 4.0 ...
    await step(clock, 0.5, 4)
    assert ticks.at == [0.0, 1.0, 2.0, 3.0, 3.5, 4.0]


async def test_late_start_is_reported(running: list[asyncio.Task[None]]) -> None:
    clock = FakeClock(start=0.0)
    ticks = Ticks(clock)
    lateness: list[float] = []
    running.append(
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


# --- run_aligned: ticks on wall-clock instants k * interval + lag -------------------------


def test_next_aligned_is_strictly_after_and_on_the_grid() -> None:
    assert next_aligned(1000.3, 1.0, 0.1) == pytest.approx(1001.1)
    assert next_aligned(1000.05, 1.0, 0.1) == pytest.approx(1000.1)
    assert next_aligned(1000.1, 1.0, 0.1) == pytest.approx(1001.1)  # strictly after
    assert next_aligned(1000.0, 0.25, 0.0) == pytest.approx(1000.25)


async def test_processes_started_apart_tick_on_the_same_wall_instants(
    running: list[asyncio.Task[None]],
) -> None:
    """Two processes (their own monotonic clocks) meet on the shared wall-clock grid."""
    first = FakeClock(start=0.3, wall_offset=1000.0)  # wall 1000.3
    second = FakeClock(start=50.0, wall_offset=950.72)  # wall 1000.72
    first_ticks, second_ticks = Ticks(first), Ticks(second)
    running.append(asyncio.create_task(run_aligned(first, lambda: 1.0, first_ticks.tick)))
    running.append(
        asyncio.create_task(run_aligned(second, lambda: 1.0, second_ticks.tick, lag=lambda: 0.1))
    )
    await wait_until(lambda: first.sleepers == 1 and second.sleepers == 1, message="both asleep")
    for _ in range(40):
        await first.advance(0.1)
        await second.advance(0.1)
    assert [round(t + 1000.0, 6) for t in first_ticks.at] == [1001.0, 1002.0, 1003.0, 1004.0]
    assert [round(t + 950.72, 6) for t in second_ticks.at] == [1001.1, 1002.1, 1003.1, 1004.1]


async def test_aligned_overrun_skips_instants_and_reports_it(
    running: list[asyncio.Task[None]],
) -> None:
    clock = FakeClock(start=0.5, wall_offset=0.0)
    ticks = Ticks(clock)
    lateness: list[float] = []
    running.append(
        asyncio.create_task(run_aligned(clock, lambda: 1.0, ticks.tick, on_late=lateness.append))
    )
    await wait_until(lambda: clock.sleepers == 1, message="the ticker to sleep")
    await step(clock, 0.5, 5)  # to 3.0: ticks at 1, 2, 3
    ticks.overrun_once = 2.6  # the tick at 4 runs until 6.6
    await step(clock, 0.25, 16)  # to 7.0
    assert ticks.at == pytest.approx([1.0, 2.0, 3.0, 4.0, 7.0])
    assert lateness == [pytest.approx(1.6)]  # 6.6 is 1.6 s past the missed instant at 5


async def test_a_wall_clock_stepped_back_never_doubles_a_tick(
    running: list[asyncio.Task[None]],
) -> None:
    clock = FakeClock(start=0.0, wall_offset=0.0)
    at: list[float] = []

    async def tick() -> None:
        at.append(clock.monotonic())
        if len(at) == 1:
            clock.step_wall(-0.02)  # NTP steps back during the tick: instant 1.0 comes again

    running.append(asyncio.create_task(run_aligned(clock, lambda: 1.0, tick)))
    await wait_until(lambda: clock.sleepers == 1, message="the ticker to sleep")
    await step(clock, 0.01, 400)  # to 4.0
    # Not 1.02 (wall 1.0 again): at least half an interval apart, then on the new grid.
    assert at == pytest.approx([1.0, 2.02, 3.02])


async def test_a_wall_clock_step_rephases_from_the_next_tick(
    running: list[asyncio.Task[None]],
) -> None:
    clock = FakeClock(start=0.0, wall_offset=0.0)
    ticks = Ticks(clock)
    running.append(asyncio.create_task(run_aligned(clock, lambda: 1.0, ticks.tick)))
    await wait_until(lambda: clock.sleepers == 1, message="the ticker to sleep")
    await step(clock, 0.5, 2)  # tick at 1.0; the next is planned for 2.0
    clock.step_wall(-0.9)  # from here wall k.0 is monotonic k.9
    await step(clock, 0.1, 40)  # to 5.0
    assert ticks.at == pytest.approx([1.0, 2.0, 2.9, 3.9, 4.9])
