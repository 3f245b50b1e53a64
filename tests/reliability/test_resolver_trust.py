"""The resolver believes only what it should, in a real fleet.

Each component is its own `python -m urn ROLE` process (sim.fleet). Checked: a replica
whose wall clock runs 15 s ahead wins nothing (tables are aged by receipt, and choosing
among replicas ignores the sender's clock), so once it dies an AZ failure is detected
through the other replica within the usual bound; and when every aggregator dies the
resolver holds its last good table (static stability), serving no dead answer, and says
so on /readyz, /healthz, metrics and explain.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from sim.chaos import detection_bound, detection_report, fast_plan, judge_outage, live_fleet
from sim.observe import DnsWatcher, metric
from sim.testing import skew, wait_until

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from sim.chaos import LiveFleet
    from sim.scenario import FleetPlan

pytestmark = pytest.mark.e2e

AHEAD = 15.0


def _plan(**kwargs: Any) -> FleetPlan:
    return fast_plan(**{"azs": ("a", "b", "c"), "aggregators": 2, "resolvers": 1, **kwargs})


async def _watch(seconds: float) -> None:
    until = time.monotonic() + seconds
    await wait_until(lambda: time.monotonic() >= until, seconds + 5, message="watching")


async def _accepted(live: LiveFleet, sender: str) -> float:
    samples = await live.metrics("resolver-1")
    return metric(samples, "urn_tables_received_total", sender=sender, result="accepted")


async def test_a_replica_whose_clock_runs_ahead_wins_nothing_once_it_dies(tmp_path: Path) -> None:
    plan = _plan()

    def ahead(member: str) -> Sequence[str]:
        return skew.prefix(AHEAD) if member == "aggregator-1" else ()

    def tolerate_the_skew(document: dict[str, Any]) -> None:
        document["skew"] = AHEAD + 5  # its tables are accepted, as in the field

    async with live_fleet(tmp_path, plan, edit=tolerate_the_skew, wrap=ahead) as live:
        await live.wait_answers(dead=())

        async def both_heard() -> bool:
            return min([await _accepted(live, f"aggregator-{i}") for i in (1, 2)]) >= 5

        await wait_until(both_heard, 20, message="the resolver accepting both replicas")
        replicas = (await live.healthz("resolver-1"))["table"]["replicas"]
        assert set(replicas) == {"aggregator-1", "aggregator-2"}, replicas
        assert await live.kill9("aggregator-1") == -9
        watcher = DnsWatcher(live.dns_address(0), live.names, rate=100.0)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            await _watch(1.0)
            failed_at = time.monotonic()
            await live.set_mode("b", "refuse")
            await live.wait_answers(dead={"b"})
            await _watch(2.0)
            restored_at = time.monotonic()
        finally:
            stop.set()
            await task
        table = (await live.healthz("resolver-1"))["table"]
        lateness = await live.lateness()
    assert table["aggregator"] == "aggregator-2", table
    verdict = judge_outage(live.records, watcher.history, plan, "b", (failed_at, restored_at))
    why = f"{detection_report(plan, verdict.detection)}\n{lateness}"
    assert verdict.detection, "no affected name was timed"
    assert verdict.never_turned == [], why
    assert max(verdict.detection.values()) <= detection_bound(plan), f"{verdict.detection}; {why}"
    assert verdict.dead_after_bound == 0, f"{verdict.dead_after_bound} dead answers; {why}"
    assert verdict.healthy_dropped == 0, verdict.dropped_examples


async def test_with_every_aggregator_dead_the_last_good_table_holds(tmp_path: Path) -> None:
    max_age = 3.0
    # Watched this long past max_table_age: nothing in the resolver ages a held table
    # (it is judged by receipt, once), so three times the age is as telling as any longer.
    hold_past = 9.0
    plan = _plan(extra={"max_table_age": max_age})
    async with live_fleet(tmp_path, plan) as live:
        await live.set_mode("b", "refuse")
        await live.wait_answers(dead={"b"})
        await live.wait_aggregators(dead={"b"})
        assert (await live.readyz("resolver-1"))[0] == 200
        watcher = DnsWatcher(live.dns_address(0), live.names, rate=50.0)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            await live.kill9("aggregator-1")
            await live.kill9("aggregator-2")
            silent_at = time.monotonic()

            async def held() -> bool:
                return bool((await live.healthz("resolver-1"))["table"]["state"] == "held")

            await wait_until(held, max_age + 10, message="the resolver holding its table")
            status, ready = await live.readyz("resolver-1")
            assert status == 503
            assert "holding the last good table" in ready["reason"], ready
            assert metric(await live.metrics("resolver-1"), "urn_table_held") == 1
            record = next(r for r in live.records if r["policy"] == "multivalue")
            async with live.session.get(
                f"{live.url('resolver-1')}/v1/explain", params={"name": record["name"]}
            ) as response:
                explained = await response.json()
            assert explained["table"]["state"] == "held"
            async with live.session.get(
                f"{live.url('resolver-1')}/v1/resolve", params={"name": record["name"]}
            ) as response:
                assert (await response.json())["table"] == "held"
            await _watch(silent_at + max_age + hold_past - time.monotonic())
            watched_until = time.monotonic()
        finally:
            stop.set()
            await task
    assert watched_until - silent_at >= max_age + hold_past
    assert sum(1 for _ in watcher.observations(silent_at)) > 20 * (max_age + hold_past)
    wrong = live.wrong_answers(watcher, silent_at, watched_until, dead={"b"})
    assert wrong == [], wrong[:5]
