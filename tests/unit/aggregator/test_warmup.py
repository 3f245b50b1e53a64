"""The warm-up rule: when a replica's table may be pushed (pure, no clock)."""

from __future__ import annotations

from aggregator.warmup import is_blind, warm_up_seconds, warming_up


def test_warm_up_is_window_push_intervals_at_most_staleness_unless_set() -> None:
    assert warm_up_seconds(3, 1.0, 5.0, None) == 3.0
    assert warm_up_seconds(10, 1.0, 5.0, None) == 5.0
    assert warm_up_seconds(3, 1.0, 5.0, 0.0) == 0.0


def test_a_tick_is_blind_with_nothing_fresh_or_after_a_stall() -> None:
    assert is_blind(0, 10.0, 9.0, 5.0)
    assert not is_blind(3, 10.0, 9.0, 5.0)
    assert not is_blind(3, 10.0, None, 5.0)  # the first tick
    assert is_blind(3, 20.0, 9.0, 5.0)  # 11 s since the last tick: a freeze
    assert not is_blind(3, 14.0, 9.0, 5.0)


def test_it_pushes_only_once_warm_up_has_passed_since_start_or_blindness() -> None:
    assert warming_up(0.0, None, None, 3.0)  # no config yet
    assert warming_up(2.9, 0.0, None, 3.0)
    assert not warming_up(3.0, 0.0, None, 3.0)
    assert warming_up(5.0, 0.0, 4.0, 3.0)  # blind at 4: again until 7
    assert not warming_up(7.0, 0.0, 4.0, 3.0)
    assert not warming_up(7.0, 6.0, None, 0.0)
