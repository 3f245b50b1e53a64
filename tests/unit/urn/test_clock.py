"""FakeClock moves only when told and wakes sleepers at their own deadlines, in order."""

from __future__ import annotations

import asyncio

from urn.clock import FakeClock, SystemClock


async def test_fake_clock_starts_where_told() -> None:
    clock = FakeClock(start=50.0, wall_offset=1_000.0)
    assert clock.monotonic() == 50.0
    assert clock.time() == 1_050.0
    await clock.advance(2.5)
    assert (clock.monotonic(), clock.time()) == (52.5, 1_052.5)


async def test_sleepers_wake_in_deadline_order_at_their_deadline() -> None:
    clock = FakeClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append((name, clock.monotonic()))

    tasks = [
        asyncio.create_task(sleeper(name, deadline))
        for name, deadline in [("c", 3.0), ("a", 1.0), ("d", 7.0), ("b", 2.0), ("b2", 2.0)]
    ]
    await asyncio.sleep(0)
    assert clock.sleepers == 5
    await clock.advance(5.0)
    assert woke == [("a", 1.0), ("b", 2.0), ("b2", 2.0), ("c", 3.0)]
    assert clock.monotonic() == 5.0
    assert clock.sleepers == 1
    await clock.advance(2.0)
    assert woke[-1] == ("d", 7.0)
    await asyncio.gather(*tasks)


async def test_nothing_wakes_before_its_deadline() -> None:
    clock = FakeClock(start=0.0)
    task = asyncio.create_task(clock.sleep_until(1.0))
    await clock.advance(0.999)
    assert not task.done()
    await clock.advance(0.001)
    assert task.done()


async def test_past_deadline_returns_at_once() -> None:
    clock = FakeClock(start=10.0)
    await asyncio.wait_for(clock.sleep_until(5.0), timeout=1.0)
    await asyncio.wait_for(clock.sleep_until(10.0), timeout=1.0)


async def test_sleeper_that_sleeps_again_inside_one_advance_is_woken_again() -> None:
    clock = FakeClock(start=0.0)
    seen: list[float] = []

    async def loop() -> None:
        deadline = 0.0
        while True:
            deadline += 1.0
            await clock.sleep_until(deadline)
            seen.append(clock.monotonic())

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await clock.advance(3.5)
    assert seen == [1.0, 2.0, 3.0]
    task.cancel()


async def test_cancelled_sleeper_is_skipped() -> None:
    clock = FakeClock(start=0.0)
    cancelled = asyncio.create_task(clock.sleep_until(1.0))
    kept = asyncio.create_task(clock.sleep_until(2.0))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert clock.sleepers == 1
    await clock.advance(2.0)
    assert kept.done()
    assert cancelled.cancelled()


async def test_system_clock_sleep_until_past_deadline_returns() -> None:
    clock = SystemClock()
    assert clock.time() > 1_600_000_000
    await asyncio.wait_for(clock.sleep_until(clock.monotonic() - 1.0), timeout=1.0)
    await asyncio.wait_for(clock.sleep_until(clock.monotonic() + 0.001), timeout=1.0)
