"""Faults of urn's own checkers in a real fleet: a checker that sees the world wrongly.

Every target is healthy, but AZ a's checkers see every AZ b and AZ c target as refused:
checks name their targets by host name, each checker process runs in its own mount
namespace (`unshare --mount`) with its own /etc/hosts, and AZ a's hosts file points AZ b
and c's names at a loopback address where nothing listens. That is the fault the
verdict rule exists for (a checker's own network path, name resolution or fd limit):
one AZ's checkers alone never take a healthy target down, even with one more checker
dead, while a real failure during the fault is still detected within the bound. Also:
the dying AZ takes its checkers with it (kill -9 and blackhole in the same instant).

Queries go over UDP DNS the whole time and every answer is judged (sim.verdict).
Skips only where a mount namespace cannot be made (not root, no unshare).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest

from sim.chaos import (
    LiveFleet,
    detection_bound,
    detection_report,
    fast_plan,
    judge_outage,
    live_fleet,
)
from sim.observe import DnsWatcher, metric
from sim.scenario import attribute
from sim.testing import free_port, wait_until
from urn.config import parse_document

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from pathlib import Path

    from sim.farm_layout import TargetSpec
    from sim.scenario import FleetPlan
    from sim.verdict import Verdict

pytestmark = pytest.mark.e2e

DOMAIN = "farm.urn.test"
NOWHERE = "127.254.0.1"  # loopback, and nothing listens there: every connect is refused
PER_AZ = 4
BIND_HOSTS = 'mount --bind "$0" /etc/hosts && exec "$@"'


def _with_hosts_file(hosts: str) -> tuple[str, ...]:
    """The command prefix that runs the rest in a mount namespace seeing `hosts` as /etc/hosts."""
    return ("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", BIND_HOSTS, hosts)


def _namespace_problem() -> str | None:
    """Why a process cannot get its own /etc/hosts here, or None when it can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        [*_with_hosts_file("/etc/hosts"), "true"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if probe.returncode != 0:
        return f"cannot bind-mount /etc/hosts in a mount namespace: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def namespaces() -> None:
    problem = _namespace_problem()
    if problem is not None:
        pytest.skip(problem)


@dataclasses.dataclass
class Views:
    """Each checker's /etc/hosts: the truth, or AZ a's lie about AZs b and c."""

    directory: Path
    addresses: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> address

    def retarget(self, spec: TargetSpec) -> TargetSpec:
        name = f"{spec.id}.{DOMAIN}"
        self.addresses[name] = spec.host
        return dataclasses.replace(spec, host=name)

    def hosts_file(self, blind_to: Collection[str]) -> Path:
        lines = ["127.0.0.1 localhost"]
        for name, address in sorted(self.addresses.items()):
            az = name.split("-", 1)[0]
            lines.append(f"{NOWHERE if az in blind_to else address} {name}")
        path = self.directory / f"hosts-blind-to-{''.join(sorted(blind_to)) or 'none'}"
        path.write_text("\n".join(lines) + "\n")
        return path

    def wrap(self, member: str) -> Sequence[str]:
        if not member.startswith("checker-"):
            return ()
        az = member.removeprefix("checker-")[0]
        hosts = self.hosts_file(blind_to=("b", "c") if az == "a" else ())
        return _with_hosts_file(str(hosts))


def _plan(checkers_per_az: int) -> FleetPlan:
    return fast_plan(azs=("a", "b", "c"), checkers_per_az=checkers_per_az, aggregators=2)


def _turned_away_in_time(
    live: LiveFleet,
    watcher: DnsWatcher,
    plan: FleetPlan,
    outage: tuple[float, float],
    lateness: str,
) -> Verdict:
    """AZ b's outage judged; every affected name was timed, and turned away from AZ b
    within the detection bound, never served a dead answer after it. `lateness`
    (LiveFleet.lateness) goes into the message of a failed bound."""
    bound = detection_bound(plan)
    verdict = judge_outage(live.records, watcher.history, plan, "b", outage)
    why = f"{detection_report(plan, verdict.detection)}\n{lateness}"
    assert verdict.detection, "no affected name was timed"
    assert verdict.never_turned == [], why
    assert max(verdict.detection.values()) <= bound, f"{verdict.detection}; {why}"
    assert verdict.dead_after_bound == 0, f"{verdict.dead_after_bound} dead answers; {why}"
    return verdict


async def _blind_checkers_report_refused(live: LiveFleet, checkers: int) -> None:
    """Wait until the aggregators hear every checker, and AZ a's saying AZ b is refused."""
    slot = next(c["slot"] for c in live.document["checks"] if c["az"] == "b")

    async def seen() -> bool:
        for aggregator in ("aggregator-1", "aggregator-2"):
            samples = await live.metrics(aggregator)
            if metric(samples, "urn_fresh_checkers") != checkers:
                return False
            async with live.session.get(f"{live.url(aggregator)}/v1/slots/{slot}") as response:
                body: dict[str, Any] = await response.json()
            verdicts = {c["checker"]: (c["verdict"], c["last"]) for c in body["checkers"]}
            if verdicts.get("checker-a1") != ("unhealthy", "refused"):
                return False
        return True

    await wait_until(seen, 30, message="AZ a's checkers seeing AZ b refused")


async def _resolver_explains_the_veto(live: LiveFleet) -> None:
    """The resolver's /v1/explain names the checkers behind an answer and the AZ vetoed."""
    record = next(r for r in live.records if r["policy"] == "multivalue")
    url = f"{live.url('resolver-1')}/v1/explain?name={record['name']}"
    seen: dict[str, Any] = {}

    async def explained() -> bool:
        async with live.session.get(url) as response:
            body: dict[str, Any] = await response.json()
        answers = {a["value"]: a for r in body["records"] for a in r["answers"]}
        seen.update(next(a for value, a in answers.items() if attribute(value)[0] == "b"))
        if seen["status"] == "unknown" or "checkers" not in seen:
            return False
        # Every checker's verdict in: on a loaded machine one may be between tables.
        return all(c["verdict"] != "unknown" for c in seen["checkers"])

    await wait_until(explained, 10, message="the resolver explaining an AZ b answer")
    assert seen["status"] == "healthy"
    verdicts = {c["checker"]: (c["az"], c["verdict"]) for c in seen["checkers"]}
    assert verdicts["checker-a1"] == ("a", "unhealthy")
    assert verdicts["checker-b1"] == ("b", "healthy")
    assert seen["quorum"]["outcome"].startswith("healthy:"), seen["quorum"]


async def _watch(watcher: DnsWatcher, seconds: float) -> None:
    until = time.monotonic() + seconds
    await wait_until(lambda: time.monotonic() >= until, seconds + 5, message="watching")


@pytest.mark.parametrize(
    ("checkers_per_az", "watch_s"),
    # 8 and 5 s at 100 queries/s: 32 and 20 aggregator ticks (FAST_FLEET pushes every
    # 0.25 s) with the sick AZ's veto in force
    [pytest.param(2, 8.0, id="3x2"), pytest.param(1, 5.0, id="3x1")],
)
async def test_one_azs_checkers_seeing_wrongly_drop_no_healthy_answer(
    tmp_path: Path, namespaces: None, checkers_per_az: int, watch_s: float
) -> None:
    views = Views(tmp_path)
    plan = _plan(checkers_per_az)
    async with live_fleet(
        tmp_path, plan, per_az=PER_AZ, retarget=views.retarget, wrap=views.wrap
    ) as live:
        await _blind_checkers_report_refused(live, 3 * checkers_per_az)
        await live.wait_answers(dead=())
        await _resolver_explains_the_veto(live)
        watcher = DnsWatcher(live.dns_address(0), live.names, rate=100.0)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            started = time.monotonic()
            await _watch(watcher, watch_s)
            # One more fault: a healthy checker of another AZ dies.
            assert await live.kill9("checker-b1") == -9
            await _watch(watcher, watch_s / 2)
            calm_until = time.monotonic()
            # A real failure during the fault: AZ b's targets go dark.
            failed_at = time.monotonic()
            await live.set_mode("b", "blackhole")
            await live.wait_answers(dead={"b"})
            await _watch(watcher, 2.0)
            restored_at = time.monotonic()
            await live.set_mode("b", "healthy")
            await live.wait_answers(dead=())
            lateness = await live.lateness()
        finally:
            stop.set()
            await task
    assert sum(1 for _ in watcher.observations(started)) > 50 * watch_s
    calm = live.wrong_answers(watcher, started, calm_until, dead=())
    assert calm == [], calm[:5]
    verdict = _turned_away_in_time(live, watcher, plan, (failed_at, restored_at), lateness)
    # AZ a's checkers call AZ c down too: AZ c must never be dropped.
    assert verdict.healthy_dropped == 0, verdict.dropped_examples


async def test_an_az_dying_with_its_checkers_is_detected_and_drops_nothing_else(
    tmp_path: Path,
) -> None:
    plan = _plan(checkers_per_az=2)
    async with live_fleet(tmp_path, plan, per_az=PER_AZ) as live:
        await live.wait_answers(dead=())
        watcher = DnsWatcher(live.dns_address(0), live.names, rate=100.0)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            await _watch(watcher, 1.0)
            failed_at = time.monotonic()
            live.fleet.kill("checker-b1")
            live.fleet.kill("checker-b2")
            await live.set_mode("b", "blackhole")
            await live.wait_answers(dead={"b"})
            # Past the staleness of the dead checkers' last tables, too.
            await _watch(watcher, 3.0)
        finally:
            stop.set()
            await task
        restored_at = time.monotonic()  # judged up to here; the return is not this test's
        lateness = await live.lateness()
    verdict = _turned_away_in_time(live, watcher, plan, (failed_at, restored_at), lateness)
    assert verdict.healthy_dropped == 0, verdict.dropped_examples


def _digest(document: dict[str, Any]) -> str:
    return parse_document(document).digest.hex()[:16]


async def _applied(live: LiveFleet, member: str, digest: str) -> bool:
    samples = await live.metrics(member)
    return metric(samples, "urn_config_digest_info", digest=digest) == 1


async def _all_applied(live: LiveFleet, digest: str) -> bool:
    members = [name for name in live.fleet.members if name != "targets"]
    return all([await _applied(live, member, digest) for member in members])


async def _judged_dead(live: LiveFleet, slot: int, digest: str, verdicts: list[str]) -> bool:
    """Whether aggregator-1, on config `digest`, judges `slot` unhealthy; keeps the verdicts."""
    if not await _applied(live, "aggregator-1", digest):
        return False
    async with live.session.get(f"{live.url('aggregator-1')}/v1/slots/{slot}") as response:
        body: dict[str, Any] = await response.json()
    verdicts.extend(c["verdict"] for c in body["checkers"])
    return bool(body["verdict"]["status"] == "unhealthy")


async def test_a_slot_moved_to_another_target_never_answers_from_the_old_ones_health(
    tmp_path: Path,
) -> None:
    """Dead target -> live one -> dead again, three times, under one slot and one answer.

    Once the resolver has applied the config that points the slot at the live target, no
    answer may drop the slot's value (only the old, dead target's data could); once an
    aggregator has applied the config that points it back at the dead target, none of its
    checkers' verdicts on the slot may be "healthy" (only the old, live target's could).
    """
    plan = _plan(checkers_per_az=1)
    dead_port = free_port()  # closed again at once: connections to it are refused
    live_document: dict[str, Any] = {}

    def point_at_dead(document: dict[str, Any]) -> None:
        live_document.update(json.loads(json.dumps(document)))
        check = next(c for c in document["checks"] if c["name"] == "a-0")
        check["port"] = dead_port

    async with live_fleet(tmp_path, plan, per_az=PER_AZ, edit=point_at_dead) as live:
        dead_document = live.document
        slot = next(c["slot"] for c in dead_document["checks"] if c["name"] == "a-0")
        name = next(
            r["name"]
            for r in dead_document["records"]
            if r["policy"] == "multivalue" and any(a["check"] == slot for a in r["answers"])
        )
        value = next(
            a["value"] for r in dead_document["records"] for a in r["answers"] if a["check"] == slot
        )
        watcher = DnsWatcher(live.dns_address(0), [name], rate=100.0)

        async def answered(present: bool) -> bool:
            got = await live.query(name)
            return got is not None and (value in got[1]) == present

        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        windows: list[tuple[float, float]] = []  # resolver on the live config: never dropped
        verdicts: list[str] = []
        try:
            await wait_until(lambda: answered(False), 20, message="the dead target turned away")
            for _ in range(3):
                live_digest, dead_digest = _digest(live_document), _digest(dead_document)
                live.rewrite_config(json.dumps(live_document))
                await wait_until(
                    functools.partial(_applied, live, "resolver-1", live_digest),
                    10,
                    interval=0.01,
                    message="the resolver on the live target's config",
                )
                since = time.monotonic()
                await wait_until(lambda: answered(True), 10, message="the live target answered")
                # Every process has applied the live config before the next change: a
                # receiver can mask a changed slot only for configs it has applied (a
                # table from one it never saw is taken as it is, docs/verdicts.md).
                await wait_until(
                    functools.partial(_all_applied, live, live_digest),
                    15,
                    message="every process on the live target's config",
                )
                await _watch(watcher, 1.0)
                windows.append((since, time.monotonic()))  # until the dead config is written
                live.rewrite_config(json.dumps(dead_document))
                await wait_until(
                    functools.partial(_judged_dead, live, slot, dead_digest, verdicts),
                    10,
                    interval=0.01,
                    message="the slot judged dead under the dead target's config",
                )
                await wait_until(lambda: answered(False), 10, message="turned away again")
        finally:
            stop.set()
            await task
    dropped = [
        f"{seen.at - start:.2f}s after the live config"
        for start, end in windows
        for _, seen in watcher.observations(start)
        if seen.at < end and value not in seen.answers
    ]
    assert sum(1 for _ in watcher.observations()) > 100
    assert dropped == [], dropped[:5]
    assert "healthy" not in verdicts, verdicts
