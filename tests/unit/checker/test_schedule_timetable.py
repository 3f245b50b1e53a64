"""schedule.py against the timetable its docstring defines, at intervals other than 1 s.

A probe of the check at phase p in cycle c (c >= 0) is due at epoch + c x interval +
p x interval. The cursor starts at the first probe due at or after `now` (cycle 0's first
when `now` is before the epoch); `take(now)` returns every probe due by `now` in due order,
except that probes due more than one interval before `now` are skipped and counted, and
`take(now, limit)` returns only the first `limit` of them (the rest stay due). The
reference below enumerates that timetable outright; every value is a multiple of 1/16, so
the floating-point sums are exact and the comparison can be too.
"""

from __future__ import annotations

import random

import pytest

from checker.schedule import Schedule


class Timetable:
    """The documented timetable, enumerated: no cursor arithmetic, no bisection."""

    def __init__(
        self, interval: float, epoch: float, entries: list[tuple[int, float]], now: float
    ) -> None:
        ordered = sorted(entries, key=lambda e: (e[1], e[0]))
        self.slots = [slot for slot, _ in ordered]
        self.offsets = [ph * interval for _, ph in ordered]
        self.interval, self.epoch = interval, epoch
        self.position = 0  # cycle * n + index of the next probe
        while self.due(self.position) < now:
            self.position += 1

    def due(self, position: int) -> float:
        cycle, index = divmod(position, len(self.slots))
        return self.epoch + cycle * self.interval + self.offsets[index]

    def take(self, now: float, limit: int | None = None) -> tuple[list[int], list[float], int]:
        skipped = 0
        while now - self.due(self.position) > self.interval:
            self.position += 1
            skipped += 1
        slots: list[int] = []
        dues: list[float] = []
        while self.due(self.position) <= now and (limit is None or len(slots) < limit):
            slots.append(self.slots[self.position % len(self.slots)])
            dues.append(self.due(self.position))
            self.position += 1
        return slots, dues, skipped


def _sixteenths(rng: random.Random, low: int, high: int) -> float:
    return rng.randint(low, high) / 16


@pytest.mark.parametrize("seed", range(12))
def test_take_follows_the_timetable_through_steps_and_stalls(seed: int) -> None:
    rng = random.Random(seed)
    interval = rng.choice([0.25, 0.5, 2.0, 4.0])
    epoch = rng.choice([0.0, 3.0, 100.0])
    n = rng.randint(1, 6)
    entries = [(slot, _sixteenths(rng, 0, 15)) for slot in rng.sample(range(50), n)]
    start = epoch + rng.choice([-2 * interval, 0.0, interval / 4, 3.5 * interval])
    schedule = Schedule(interval, epoch, entries, now=start)
    model = Timetable(interval, epoch, entries, start)
    assert schedule.next_due() == model.due(model.position)
    now = start
    for _ in range(40):
        # Mostly short steps, now and then a stall of several intervals.
        step = interval * (_sixteenths(rng, 0, 8) if rng.random() < 0.8 else rng.randint(2, 5))
        now += step
        assert schedule.take(now) == model.take(now)
        assert schedule.next_due() == model.due(model.position)
        assert schedule.cycle == model.position // n


@pytest.mark.parametrize("seed", range(12))
def test_a_capped_take_leaves_the_rest_due_and_still_skips_what_is_over_an_interval_late(
    seed: int,
) -> None:
    rng = random.Random(100 + seed)
    interval = rng.choice([0.25, 0.5, 2.0])
    n = rng.randint(1, 8)
    entries = [(slot, _sixteenths(rng, 0, 15)) for slot in rng.sample(range(50), n)]
    schedule = Schedule(interval, 0.0, entries, now=0.0)
    model = Timetable(interval, 0.0, entries, 0.0)
    now = 0.0
    for _ in range(60):
        step = interval * (_sixteenths(rng, 0, 8) if rng.random() < 0.8 else rng.randint(1, 3))
        now += step
        limit = rng.randint(0, 3)
        taken = schedule.take(now, limit)
        assert taken == model.take(now, limit)
        assert len(taken[0]) <= limit
        assert schedule.next_due() == model.due(model.position)


def test_what_a_cap_leaves_is_taken_next_in_due_order() -> None:
    schedule = Schedule(1.0, 0.0, [(1, 0.125), (2, 0.25), (3, 0.375)], now=0.0)
    assert schedule.take(0.5, 2) == ([1, 2], [0.125, 0.25], 0)
    assert schedule.next_due() == 0.375  # already due: the cursor lags, nothing queued
    assert schedule.take(0.5, 2) == ([3], [0.375], 0)
    assert schedule.take(0.5, 0) == ([], [], 0)


def test_starting_before_the_epoch_waits_for_cycle_zero() -> None:
    schedule = Schedule(0.5, 10.0, [(1, 0.25), (2, 0.75)], now=8.0)
    assert schedule.cycle == 0
    assert schedule.next_due() == 10.125
    assert schedule.take(10.0) == ([], [], 0)
    assert schedule.take(10.5) == ([1, 2], [10.125, 10.375], 0)


def test_starting_early_in_a_cycle_skips_the_probes_already_past() -> None:
    schedule = Schedule(2.0, 0.0, [(1, 0.0625), (2, 0.25), (3, 0.75)], now=0.25)
    assert schedule.next_due() == 0.5  # slot 1 was due at 0.125, before we started
    assert schedule.cycle == 0


def test_starting_after_a_cycles_last_probe_moves_to_the_next_cycle() -> None:
    schedule = Schedule(0.5, 0.0, [(1, 0.25), (2, 0.5)], now=1.375)
    assert schedule.cycle == 3
    assert schedule.next_due() == 1.625
    assert schedule.take(1.875) == ([1, 2], [1.625, 1.75], 0)


def test_stall_counts_every_probe_it_skipped_from_mid_cycle() -> None:
    schedule = Schedule(2.0, 0.0, [(1, 0.125), (2, 0.5), (3, 0.875)], now=1.5)
    assert schedule.next_due() == 1.75  # slot 3 of cycle 0
    slots, dues, skipped = schedule.take(9.0)
    # Due at 1.75, 2.25, 3, 3.75, 4.25, 5, 5.75, 6.25: over one interval (2 s) late.
    assert skipped == 8
    assert (slots, dues) == ([2, 3, 1, 2], [7.0, 7.75, 8.25, 9.0])


def test_equal_phases_are_probed_in_slot_order_whatever_the_input_order() -> None:
    schedule = Schedule(1.0, 0.0, [(9, 0.5), (4, 0.5), (7, 0.5)], now=0.0)
    assert schedule.slots == [4, 7, 9]
    assert schedule.take(0.5) == ([4, 7, 9], [0.5, 0.5, 0.5], 0)


@pytest.mark.parametrize("interval", [0.0, -1.0])
def test_a_non_positive_interval_is_refused_saying_so(interval: float) -> None:
    with pytest.raises(ValueError, match=r"^interval must be positive$"):
        Schedule(interval, 0.0, [(1, 0.5)], now=0.0)
