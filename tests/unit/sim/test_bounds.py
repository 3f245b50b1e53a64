"""Real-time test bounds: the intervals' worst case times one slack factor, and the
lateness report a failed bound prints."""

from __future__ import annotations

import asyncio
import time

import pytest

from sim.chaos import design_detection, detection_bound, fast_plan, member_lateness
from sim.scenario import FleetPlan
from sim.testing.bounds import DEFAULT_SLACK, SLACK_ENV, LoopLag, slack


def test_slack_comes_from_the_environment_and_is_at_least_one() -> None:
    assert slack({}) == DEFAULT_SLACK == 2.0
    assert slack({SLACK_ENV: " "}) == DEFAULT_SLACK
    assert slack({SLACK_ENV: "1"}) == 1.0
    assert slack({SLACK_ENV: "3.5"}) == 3.5
    for bad in ("0.5", "fast", "nan", "inf", "-2"):
        with pytest.raises(ValueError, match=SLACK_ENV):
            slack({SLACK_ENV: bad})


def test_the_detection_bound_is_the_intervals_worst_case_times_the_slack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = fast_plan()  # probe 0.5, timeout 0.25, push 0.25: lag 0.025
    assert design_detection(plan) == pytest.approx(0.5 + 0.25 + 0.25 + 0.025)
    monkeypatch.setenv(SLACK_ENV, "1")
    assert detection_bound(plan) == pytest.approx(1.025)
    monkeypatch.setenv(SLACK_ENV, "2")
    assert detection_bound(plan) == pytest.approx(2.05)
    # Each failed probe a checker must see costs one probe interval more.
    slower = FleetPlan(probe_interval=1.0, push_interval=0.5, timeout=0.5, failures=2)
    assert design_detection(slower) == pytest.approx(2 * 1.0 + 0.5 + 0.5 + 0.05)


def test_a_members_lateness_names_late_ticks_late_probes_and_skips() -> None:
    aggregator = {"urn_ticks_late_total": 3.0, "urn_ticks_late_created": 1e9}
    assert member_lateness("aggregator-1", aggregator) == "aggregator-1: 3 ticks late"
    checker = {
        "urn_ticks_late_total": 0.0,
        "urn_probe_lateness_seconds_count": 4.0,
        "urn_probe_lateness_seconds_sum": 0.1,
        'urn_probe_lateness_seconds_bucket{le="0.01"}': 2.0,
        'urn_probe_lateness_seconds_bucket{le="0.05"}': 3.0,
        'urn_probe_lateness_seconds_bucket{le="0.1"}': 4.0,
        'urn_probe_lateness_seconds_bucket{le="+Inf"}': 4.0,
        "urn_probes_skipped_total": 1.0,
    }
    assert member_lateness("checker-a1", checker) == (
        "checker-a1: 0 ticks late, 4 probes started 25.0 ms late on average,"
        " the latest at most 100 ms late, 1 skipped"
    )
    checker['urn_probe_lateness_seconds_bucket{le="0.1"}'] = 3.0
    assert "the latest over 5 s late" in member_lateness("checker-a1", checker)


def hold_the_loop(seconds: float) -> None:
    """Block whoever calls: from a coroutine, the whole event loop."""
    time.sleep(seconds)


async def test_loop_lag_sees_a_blocked_loop() -> None:
    async with LoopLag(step=0.01) as lag:
        await asyncio.sleep(0.03)
        hold_the_loop(0.06)  # the watcher wakes at least 50 ms late
        await asyncio.sleep(0.03)
    assert lag.worst >= 0.05
    assert lag.late >= 1
    assert "event loop woke up to" in str(lag)
