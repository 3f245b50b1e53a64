"""Launch admission: the in-flight limit from the work asked for and the fds there are,
and the most probes one wake starts."""

from __future__ import annotations

import pytest

from checker.admission import (
    BURST_FLOOR,
    HEADROOM_FLOOR,
    TICK_MAX,
    TICK_MIN,
    Admission,
    admission,
    per_wake,
    tick_for,
)


def test_the_limit_is_twice_the_need_plus_headroom_when_descriptors_allow() -> None:
    # 100 probes living 0.5 s each per 1 s interval: 50 in flight on average.
    sizing = admission([0.5] * 100, 1.0, fd_soft=65_536, fd_reserve=256, max_concurrency=None)
    assert sizing == Admission(
        needed=50, limit=2 * 50 + HEADROOM_FLOOR, tick=TICK_MAX, per_wake=BURST_FLOOR
    )
    assert not sizing.short


def test_the_fd_limit_less_the_reserve_caps_the_limit() -> None:
    sizing = admission([1.0] * 40, 1.0, fd_soft=300, fd_reserve=256, max_concurrency=None)
    assert sizing.limit == 300 - 256
    assert sizing.needed == 40
    assert not sizing.short  # 44 slots for 40 needed


def test_too_few_descriptors_for_the_work_is_short() -> None:
    sizing = admission([2.0] * 500, 1.0, fd_soft=1024, fd_reserve=256, max_concurrency=None)
    assert sizing.needed == 1000
    assert sizing.limit == 1024 - 256
    assert sizing.short


def test_max_concurrency_caps_below_the_descriptors() -> None:
    sizing = admission([1.0] * 40, 1.0, fd_soft=65_536, fd_reserve=256, max_concurrency=8)
    assert sizing.limit == 8
    assert sizing.short


def test_at_least_one_probe_may_run_whatever_the_reserve() -> None:
    sizing = admission([1.0], 1.0, fd_soft=100, fd_reserve=256, max_concurrency=None)
    assert sizing.limit == 1


def test_no_checks_need_nothing() -> None:
    sizing = admission([], 1.0, fd_soft=65_536, fd_reserve=256, max_concurrency=None)
    assert sizing == Admission(0, HEADROOM_FLOOR, TICK_MAX, BURST_FLOOR)


def test_a_wake_starts_at_most_two_ticks_share_of_the_rate() -> None:
    # 10,000 checks a second, woken every 5 ms: 50 due per wake on average, 100 allowed.
    assert per_wake(10_000, 1.0, 0.005) == 100
    assert per_wake(10_000, 0.5, 0.005) == 200  # twice the rate, twice the batch
    assert per_wake(3, 1.0, 0.005) == BURST_FLOOR  # a few checks still start together


def test_the_loop_wakes_about_once_per_hundred_probes_within_bounds() -> None:
    assert tick_for(10_000, 1.0) == pytest.approx(0.01)  # 10,000/s: every 10 ms
    assert tick_for(13_000, 1.0) == pytest.approx(100 / 13_000)  # 7.7 ms
    assert tick_for(20_000, 1.0) == TICK_MIN  # faster: never below 5 ms
    assert tick_for(50_000, 1.0) == TICK_MIN
    assert tick_for(500, 1.0) == TICK_MAX  # slower: never above 10 ms
    assert tick_for(0, 1.0) == TICK_MAX
    sizing = admission([0.5] * 20_000, 1.0, 65_536, 256, None)
    assert (sizing.tick, sizing.per_wake) == (TICK_MIN, 200)  # 100 due per wake, 200 allowed
