"""The whole fleet as users run it: real processes from the CLI, an AZ failed and restored.

Asserts, from the query stream over UDP DNS and the HTTP JSON API, that every affected
name stops returning dead answers within the detection bound and that no healthy
answer is ever dropped. The bound is the design's worst case from the intervals
(`sim.chaos.design_detection`: probe interval + probe timeout + push interval +
aggregate lag) times the one test slack factor, $URN_TEST_SLACK (docs/testing.md). A
failure says how late the members' own loops and this test's loop ran meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING

import aiohttp
import pytest
import yaml

from sim.chaos import detection_report, fast_plan, judge_outage, loop_lateness
from sim.farm_layout import layout
from sim.fleet import Fleet
from sim.observe import DnsWatcher, JsonWatcher
from sim.scenario import FleetPlan, attribute, build_document
from sim.testing import free_port, wait_until
from sim.testing.bounds import LoopLag

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

AZS = ("a", "b", "c")
PER_AZ = 12


def _plan() -> FleetPlan:
    return fast_plan(azs=AZS, checkers_per_az=1, aggregators=2, resolvers=1)


@pytest.mark.parametrize("fail_mode", ["refuse", "blackhole"])
async def test_an_az_fails_and_recovers_without_dead_or_dropped_answers(
    tmp_path: Path, fail_mode: str
) -> None:
    plan = _plan()
    base_port = free_port(stable=True)
    control_port = free_port(stable=True)
    control = f"http://127.0.0.1:{control_port}"
    document = build_document(layout(AZS, PER_AZ, base_port), plan)
    config = tmp_path / "urn.yaml"
    config.write_text(yaml.safe_dump(document))
    records = document["records"]
    names = [r["name"] for r in records]
    http_port, dns_port = plan.resolver_ports[0]

    async with Fleet(tmp_path, env={"URN_PUSH_KEY": secrets.token_hex(32)}) as fleet:
        await fleet.start(
            "targets",
            [
                "targets",
                "serve",
                "--azs",
                "3",
                "--per-az",
                str(PER_AZ),
                "--base-port",
                str(base_port),
                "--control",
                f"127.0.0.1:{control_port}",
            ],
            f"{control}/healthz",
        )
        for name, args, health in plan.processes(str(config)):
            await fleet.start(name, args, health)
        await fleet.wait_healthy(timeout=30)

        dns_watch = DnsWatcher(("127.0.0.1", dns_port), names, rate=150.0)
        json_watch = JsonWatcher(f"http://127.0.0.1:{http_port}", names, rate=40.0)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in (dns_watch, json_watch)]
        lag = LoopLag()  # this test's own loop: it stamps every answer it sees
        lag.start()
        try:
            async with aiohttp.ClientSession() as session:

                def every_name_answers_all_azs() -> bool:
                    for record in records:
                        seen = dns_watch.latest(record["name"])
                        if seen is None or seen.rcode != 0:
                            return False
                        if record["policy"] == "multivalue" and len(seen.answers) != 3:
                            return False
                    return True

                await wait_until(every_name_answers_all_azs, 30, message="all answers healthy")
                failed_at = time.monotonic()
                async with session.post(
                    f"{control}/v1/mode", json={"az": "b", "mode": fail_mode}
                ) as response:
                    assert response.status == 200

                def turned_away() -> bool:
                    for record in records:
                        seen = dns_watch.latest(record["name"])
                        if seen is None or seen.at < failed_at + 0.1:
                            return False
                        if any(attribute(v)[0] == "b" for v in seen.answers):  # type: ignore[index]
                            return False
                    return True

                await wait_until(turned_away, 20, message="every name turned away from AZ b")
                # Keep watching a while: a turned-away name must stay turned away.
                settled = time.monotonic()
                await wait_until(lambda: time.monotonic() > settled + 2.0, 5, message="observation")
                restored_at = time.monotonic()
                async with session.post(
                    f"{control}/v1/mode", json={"az": "b", "mode": "healthy"}
                ) as response:
                    assert response.status == 200
                await wait_until(every_name_answers_all_azs, 20, message="AZ b answers back")
                back = time.monotonic()
                await wait_until(lambda: time.monotonic() > back + 1.0, 5, message="observation")
                members = {
                    name: health.removesuffix("/healthz")
                    for name, _, health in plan.processes(str(config))
                    if health is not None
                }
                lateness = f"{await loop_lateness(session, members)}\n  {lag}"
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await lag.stop()

    for transport, watcher in (("udp", dns_watch), ("http", json_watch)):
        verdict = judge_outage(records, watcher.history, plan, "b", (failed_at, restored_at))
        affected = [
            r["name"] for r in records if any(attribute(a["value"])[0] == "b" for a in r["answers"])
        ]  # type: ignore[index]
        why = f"{transport}: {detection_report(plan, verdict.detection)}\n{lateness}"
        assert verdict.queries > len(names), transport
        assert verdict.never_turned == [], why
        assert verdict.dead_after_bound == 0, f"{verdict.dead_after_bound} dead answers; {why}"
        assert verdict.healthy_dropped == 0, f"{verdict.dropped_examples}; {why}"
        if transport == "udp":
            # Every affected name is judged; those whose every answer held the dead value
            # also get a detection time (see sim.verdict).
            assert set(verdict.detection) | set(verdict.unmeasured) == set(affected)
            assert verdict.detection
