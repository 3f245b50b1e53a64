"""schedule.py: stable seeded phases, one probe per check per interval, no bursts (no I/O)."""

from __future__ import annotations

from collections import Counter

import pytest

from checker.schedule import Schedule, phase, spread_phase


def entries(checker: str, n: int) -> list[tuple[int, float]]:
    return [(slot, phase(checker, f"{slot}/c{slot}")) for slot in range(n)]


def test_phase_is_stable_per_checker_and_differs_across_checkers():
    assert phase("chk-a", "1/x") == phase("chk-a", "1/x")
    assert 0.0 <= phase("chk-a", "1/x") < 1.0
    a = [p for _, p in entries("chk-a", 50)]
    b = [p for _, p in entries("chk-b", 50)]
    assert sum(abs(x - y) < 1e-9 for x, y in zip(a, b, strict=True)) == 0


def test_phases_spread_over_the_interval():
    phases = [p for _, p in entries("chk-a", 1000)]
    deciles = Counter(int(p * 10) for p in phases)
    assert set(deciles) == set(range(10))
    assert min(deciles.values()) > 60


def test_every_check_due_exactly_once_per_interval_in_phase_order():
    schedule = Schedule(1.0, 100.0, entries("chk-a", 20), now=100.0)
    assert schedule.cycle == 0
    seen: Counter[int] = Counter()
    times: list[float] = []
    now = 100.0
    while now < 103.0 - 1e-9:
        now += 0.01
        slots, dues, skipped = schedule.take(now)
        assert skipped == 0
        assert all(due <= now for due in dues)
        seen.update(slots)
        times.extend(dues)
    assert set(seen.values()) == {3}
    assert times == sorted(times)
    by_slot = dict(entries("chk-a", 20))
    first = sorted(times)[:20]
    assert first == sorted(100.0 + by_slot[s] for s in range(20))


def test_nothing_due_before_its_time_and_next_due_is_exact():
    schedule = Schedule(2.0, 0.0, [(5, 0.25), (6, 0.75)], now=0.0)
    assert schedule.next_due() == 0.5
    assert schedule.take(0.49) == ([], [], 0)
    assert schedule.take(0.5) == ([5], [0.5], 0)
    assert schedule.next_due() == 1.5
    assert schedule.take(3.4) == ([6, 5], [1.5, 2.5], 0)
    assert schedule.next_due() == 3.5


def test_starting_mid_cycle_skips_only_what_is_already_past():
    schedule = Schedule(1.0, 0.0, [(1, 0.1), (2, 0.5), (3, 0.9)], now=10.3)
    assert schedule.cycle == 10
    assert schedule.next_due() == pytest.approx(10.5)
    slots, _, _ = schedule.take(11.2)
    assert slots == [2, 3, 1]


def test_stall_longer_than_an_interval_skips_and_counts_instead_of_bursting():
    schedule = Schedule(1.0, 0.0, [(1, 0.1), (2, 0.5), (3, 0.9)], now=0.0)
    slots, dues, skipped = schedule.take(5.55)
    # Probes due before 4.55 are over one interval late: skipped and counted.
    assert skipped == 14  # 0.1 .. 4.5
    assert slots == [3, 1, 2]
    assert dues == pytest.approx([4.9, 5.1, 5.5])


def test_rebuild_keeps_unchanged_phases():
    old = Schedule(1.0, 0.0, entries("chk-a", 10), now=0.0)
    grown = Schedule(1.0, 0.0, [*entries("chk-a", 10), (99, phase("chk-a", "99/c99"))], now=0.0)
    old_offsets = dict(zip(old.slots, old.offsets, strict=True))
    new_offsets = dict(zip(grown.slots, grown.offsets, strict=True))
    assert all(new_offsets[s] == old_offsets[s] for s in old_offsets)


def test_empty_schedule():
    schedule = Schedule(1.0, 0.0, [], now=5.0)
    assert len(schedule) == 0
    assert schedule.next_due() is None
    assert schedule.take(100.0) == ([], [], 0)


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Schedule(0.0, 0.0, [], now=0.0)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_spread_phases_of_one_check_are_evenly_spaced(count: int):
    for key in ("0/web", "17/db", "9999/x"):
        base = phase("", key)
        phases = [spread_phase(key, i, count) for i in range(count)]
        assert phases[0] == base  # hash + 0
        for i, value in enumerate(phases):
            assert 0.0 <= value < 1.0
            assert value == pytest.approx((base + i / count) % 1.0, abs=1e-12)
        ordered = sorted(phases)
        gaps = [b - a for a, b in zip(ordered, [*ordered[1:], ordered[0] + 1.0], strict=True)]
        assert gaps == pytest.approx([1 / count] * count)


def test_three_checkers_phases_are_hash_plus_thirds():
    key = "4/c4"
    base = phase("", key)
    assert spread_phase(key, 0, 3) == base
    assert spread_phase(key, 1, 3) == pytest.approx((base + 1 / 3) % 1.0)
    assert spread_phase(key, 2, 3) == pytest.approx((base + 2 / 3) % 1.0)


def test_spread_phase_depends_on_the_check_not_on_which_checker_asks():
    assert spread_phase("1/a", 1, 3) == spread_phase("1/a", 1, 3)
    bases = {round(spread_phase(f"{slot}/c{slot}", 0, 3), 9) for slot in range(100)}
    assert len(bases) == 100  # checks are still spread over the interval by their hash
