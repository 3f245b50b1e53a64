"""Process faults in a real fleet: kill -9 and restart each role while queries flow.

Every component is its own `python -m urn ROLE` process (sim.fleet); the target farm
is `urn targets serve`; queries go over UDP DNS. Checked: the others keep serving, no
wrong answer is served while a member is down, restarted senders' tables are accepted
(sequences seeded from wall time outrun the ones sent before the crash), and a resolver
restarted while no table can reach it answers per fail_open, says so in /healthz, and
answers right as soon as a table arrives. Also staleness under `on_stale: open`: when
every aggregator goes silent, resolvers keep the last table, report its age, and read
every slot unknown after max_table_age.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from sim.chaos import LiveFleet, fast_plan, live_fleet, right_answer
from sim.observe import DnsWatcher, metric
from sim.testing import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from sim.scenario import FleetPlan

pytestmark = pytest.mark.e2e


def _plan(**kwargs: Any) -> FleetPlan:
    return fast_plan(**{"azs": ("a", "b", "c"), "aggregators": 2, "resolvers": 2, **kwargs})


async def _accepted(live: LiveFleet, member: str, sender: str, result: str = "accepted") -> float:
    return metric(
        await live.metrics(member), "urn_tables_received_total", sender=sender, result=result
    )


async def _grows(live: LiveFleet, member: str, sender: str, by: float = 3) -> None:
    start = await _accepted(live, member, sender)

    async def grown() -> bool:
        return await _accepted(live, member, sender) >= start + by

    await wait_until(grown, 20, message=f"{member} accepting tables from {sender}")


async def test_kill_and_restart_a_checker_and_an_aggregator_under_query_load(
    tmp_path: Path,
) -> None:
    async with live_fleet(tmp_path, _plan()) as live:
        for resolver in (0, 1):
            await live.wait_answers(dead=(), resolver=resolver)
        watchers = [DnsWatcher(live.dns_address(r), live.names, rate=80.0) for r in (0, 1)]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in watchers]
        try:
            started = time.monotonic()
            # A checker dies: the other two keep every slot observed, nothing changes.
            assert await live.kill9("checker-a1") == -9
            await _grows(live, "aggregator-1", "checker-b1")
            await live.restart("checker-a1")
            # Its fresh sequence (wall-time seed) outruns what it sent before dying.
            await _grows(live, "aggregator-1", "checker-a1")
            await _grows(live, "aggregator-2", "checker-a1")
            # An aggregator dies: resolvers keep fresh tables from the other one.
            assert await live.kill9("aggregator-1") == -9
            await _grows(live, "resolver-1", "aggregator-2")
            for resolver in ("resolver-1", "resolver-2"):
                assert (await live.healthz(resolver))["table"]["state"] == "fresh"
            await live.restart("aggregator-1")
            await _grows(live, "resolver-1", "aggregator-1")
            await _grows(live, "resolver-2", "aggregator-1")
            calm_until = time.monotonic()
            # The restarted members still do their job: an AZ failure is detected.
            await live.set_mode("b", "refuse")
            for resolver in (0, 1):
                await live.wait_answers(dead={"b"}, resolver=resolver)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        for watcher in watchers:
            assert sum(1 for _ in watcher.observations(started)) > 50
            assert live.wrong_answers(watcher, started, calm_until, dead=()) == []
        for member, sender in (
            ("aggregator-1", "checker-a1"),
            ("aggregator-2", "checker-a1"),
            ("resolver-1", "aggregator-1"),
            ("resolver-2", "aggregator-1"),
        ):
            assert await _accepted(live, member, sender, "replayed") == 0


async def test_kill_a_resolver_while_the_other_serves_and_restart_it_without_a_table(
    tmp_path: Path,
) -> None:
    async with live_fleet(tmp_path, _plan()) as live:
        await live.set_mode("b", "refuse")
        for resolver in (0, 1):
            await live.wait_answers(dead={"b"}, resolver=resolver)
        await live.wait_aggregators(dead={"b"})  # the last table each sends will say so
        watcher = DnsWatcher(live.dns_address(1), live.names, rate=80.0)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            started = time.monotonic()
            # No table can reach a resolver while both aggregators are down.
            await live.kill9("aggregator-1")
            await live.kill9("aggregator-2")
            assert await live.kill9("resolver-1") == -9
            await live.restart("resolver-1")
            health = await live.healthz("resolver-1")
            assert health["table"]["state"] == "no table yet", health
            assert health["fail_open"] is True
            status, ready = await live.readyz("resolver-1")
            assert (status, ready["reason"]) == (503, "no aggregated table received yet")
            # Without a table every status is unknown, which counts as healthy: the
            # restarted resolver answers as if AZ b were up, and said so above.
            for name in live.names:
                got = await live.query(name, resolver=0)
                assert got is not None, name
                assert right_answer(live.record(name), got[1], got[0], dead=()), (name, got)
            # The other resolver kept its last table and still turns away from b.
            for name in live.names:
                got = await live.query(name, resolver=1)
                assert got is not None, name
                assert right_answer(live.record(name), got[1], got[0], dead={"b"}), (name, got)
            await live.restart("aggregator-1")
            await live.restart("aggregator-2")
            await live.wait_answers(dead={"b"}, resolver=0)
            assert (await live.healthz("resolver-1"))["table"]["state"] == "fresh"
            assert (await live.readyz("resolver-1"))[0] == 200
            ended = time.monotonic()
        finally:
            stop.set()
            await task
        assert live.wrong_answers(watcher, started, ended, dead={"b"}) == []
        assert sum(1 for _ in watcher.observations(started)) > 20


async def test_with_on_stale_open_silent_aggregators_fail_open_after_max_table_age(
    tmp_path: Path,
) -> None:
    """`on_stale: open` (the default holds: tests/reliability/test_resolver_trust.py)."""
    max_age = 4.0  # the checks of the table in force get 3 s of its life, asserted below
    plan = _plan(resolvers=1, extra={"max_table_age": max_age, "on_stale": "open"})
    async with live_fleet(tmp_path, plan) as live:
        await live.set_mode("b", "refuse")
        await live.wait_answers(dead={"b"})
        await live.wait_aggregators(dead={"b"})
        await live.kill9("aggregator-1")
        await live.kill9("aggregator-2")
        silent_at = time.monotonic()

        async def facts() -> dict[str, Any]:
            table: dict[str, Any] = (await live.healthz("resolver-1"))["table"]
            return table

        # The last table stays in force and its age is reported as it grows.
        async def aged() -> bool:
            return (await facts())["age"] >= 1.0

        await wait_until(aged, 10, message="table age to pass 1s")
        table = await facts()
        answers = {name: await live.query(name) for name in live.names}
        after = await facts()
        # Every query above ran while the last table was in force, or the test says so.
        assert (table["state"], after["state"]) == ("fresh", "fresh"), (
            f"the checks took {time.monotonic() - silent_at:.1f}s of silence, past "
            f"max_table_age {max_age}s: {table}, {after}"
        )
        for name, got in answers.items():
            assert got is not None, name
            assert right_answer(live.record(name), got[1], got[0], dead={"b"}), (name, got)
        assert table["max_age"] == max_age
        assert metric(await live.metrics("resolver-1"), "urn_table_age_seconds") >= 1.0

        async def stale() -> bool:
            return (await facts())["state"] == "stale"

        await wait_until(stale, 15, message="resolver to call its table stale")
        assert (await facts())["age"] > max_age
        status, ready = await live.readyz("resolver-1")
        assert status == 503
        assert "every slot unknown" in ready["reason"], ready
        assert metric(await live.metrics("resolver-1"), "urn_table_age_seconds") > max_age
        # The stale table is no longer believed: every slot unknown, every answer given.
        await live.wait_answers(dead=(), timeout=5)
        await live.restart("aggregator-1")
        await live.restart("aggregator-2")
        await live.wait_answers(dead={"b"})
        assert (await facts())["state"] == "fresh"
        assert (await live.readyz("resolver-1"))[0] == 200


async def test_an_aggregator_resumed_from_a_freeze_does_not_undo_a_detection(
    tmp_path: Path,
) -> None:
    """SIGSTOP past `staleness`, then SIGCONT: its first tables must not say UNKNOWN.

    Before the aggregator re-warmed after a stall, the resumed replica pushed a table
    computed from an empty window; resolvers take the newest table, so they answered
    with the dead AZ for a tick or two (seen in 3 runs out of 4).
    """
    async with live_fleet(tmp_path, _plan(resolvers=1)) as live:
        await live.set_mode("b", "refuse")
        await live.wait_answers(dead={"b"})
        await live.wait_aggregators(dead={"b"})
        watcher = DnsWatcher(live.dns_address(0), live.names, rate=150.0)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            started = time.monotonic()
            live.pause("aggregator-1")  # a VM pause, a long GC, SIGSTOP: silent, not dead
            await _grows(live, "resolver-1", "aggregator-2", by=8)  # > staleness passes
            live.resume("aggregator-1")
            await _grows(live, "resolver-1", "aggregator-1", by=8)
            ended = time.monotonic()
        finally:
            stop.set()
            await task
        assert live.wrong_answers(watcher, started, ended, dead={"b"}) == []
