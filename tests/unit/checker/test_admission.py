"""Launch admission: the in-flight limit from the work asked for and the fds there are."""

from __future__ import annotations

from checker.admission import HEADROOM_FLOOR, Admission, admission


def test_the_limit_is_twice_the_need_plus_headroom_when_descriptors_allow() -> None:
    # 100 probes living 0.5 s each per 1 s interval: 50 in flight on average.
    sizing = admission([0.5] * 100, 1.0, fd_soft=65_536, fd_reserve=256, max_concurrency=None)
    assert sizing == Admission(needed=50, limit=2 * 50 + HEADROOM_FLOOR)
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
    assert admission([], 1.0, fd_soft=65_536, fd_reserve=256, max_concurrency=None) == Admission(
        0, HEADROOM_FLOOR
    )
