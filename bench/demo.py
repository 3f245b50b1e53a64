"""`urn demo`: a whole local fleet that loses an AZ, turns away from it and comes back.

Starts, as separate processes on loopback, a simulated target farm for three AZs,
checkers in every AZ, two aggregators and a resolver, with a generated config of a few
hundred checks and records of every policy. It watches the resolver over UDP DNS
while it fails AZ b, then restores it, and prints what happened: how fast each name
turned away, whether a healthy answer was ever dropped, and that the work and bytes of
every component stayed flat. Ctrl-C stops everything; nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import yaml

from bench import targets as farm
from bench.fleet import Fleet
from bench.observe import DnsWatcher, Samples, metric, scrape
from bench.scenario import FleetPlan, attribute, build_document
from urn.runtime import run_main
from urn.testing import free_port

if TYPE_CHECKING:
    import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--per-az", type=int, default=100, help="targets per AZ (default 100)")
    parser.add_argument("--checkers-per-az", type=int, default=2)
    parser.add_argument("--fail-az", default="b")
    parser.add_argument(
        "--fail-mode",
        default="blackhole",
        choices=["blackhole", "refuse", "slow"],
        help="how the AZ dies: hangs, refuses connections, or answers too late",
    )
    parser.add_argument("--steady", type=float, default=10.0, help="seconds before the failure")
    parser.add_argument("--failure", type=float, default=15.0, help="seconds the AZ stays down")
    parser.add_argument("--recovery", type=float, default=10.0, help="seconds after restoring")
    parser.add_argument("--out", type=Path, default=None, help="keep config and logs here")
    parser.add_argument("--quiet", action="store_true", help="no live view, summary only")


def run(args: argparse.Namespace) -> int:
    return run_main(lambda stop: Demo(args).main(stop), args.loop)


@dataclass
class Phase:
    name: str
    started: float
    ended: float = 0.0
    metrics_at_start: dict[str, Samples] = field(default_factory=dict)
    metrics_at_end: dict[str, Samples] = field(default_factory=dict)


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.azs = ("a", "b", "c")
        self.out = args.out or Path(tempfile.mkdtemp(prefix="urn-demo-"))
        self.plan = FleetPlan(
            azs=self.azs,
            checkers_per_az=args.checkers_per_az,
            aggregators=2,
            resolvers=1,
            probe_interval=1.0,
            push_interval=0.5,
            timeout=0.5,
            failures=3,
            of_last=2 * len(self.azs) * args.checkers_per_az // 2,
            capacity=max(1024, 4 * args.per_az * len(self.azs)),
            aggregator_ports=(free_port(), free_port()),
            resolver_ports=((free_port(), free_port()),),
            checker_ports=tuple(free_port() for _ in range(len(self.azs) * args.checkers_per_az)),
        )
        self.control = f"http://127.0.0.1:{free_port()}"
        self.phases: list[Phase] = []

    def say(self, text: str) -> None:
        print(text, flush=True)

    async def main(self, stop: asyncio.Event) -> int:
        key = secrets.token_hex(32)
        base_port = free_port()
        specs = farm.layout(self.azs, self.args.per_az, base_port)
        document = build_document(specs, self.plan)
        config_path = self.out / "urn.yaml"
        config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        self.names = [r["name"] for r in document["records"]]
        self.policies = {r["name"]: r["policy"] for r in document["records"]}
        self.records = {r["name"]: r for r in document["records"]}
        self.say(
            f"urn demo: {len(specs)} targets in AZs {', '.join(self.azs)}, "
            f"{len(self.plan.checker_ids)} checkers, 2 aggregators, 1 resolver; "
            f"{len(self.names)} names. Logs and config in {self.out}"
        )
        async with Fleet(self.out, env={"URN_PUSH_KEY": key}) as fleet:
            control_port = int(self.control.rsplit(":", 1)[1])
            await fleet.start(
                "targets",
                [
                    "targets",
                    "serve",
                    "--azs",
                    str(len(self.azs)),
                    "--per-az",
                    str(self.args.per_az),
                    "--base-port",
                    str(base_port),
                    "--control",
                    f"127.0.0.1:{control_port}",
                ],
                f"{self.control}/v1/targets",
            )
            for name, args, health in self.plan.processes(str(config_path)):
                await fleet.start(name, args, health)
            await fleet.wait_healthy(timeout=30)
            self.say("fleet up: every process answers /healthz")
            _http_port, dns_port = self.plan.resolver_ports[0]
            watcher = DnsWatcher(("127.0.0.1", dns_port), self.names, rate=200.0)
            watch_stop = asyncio.Event()
            watch_task = asyncio.create_task(watcher.run(watch_stop))
            try:
                code = await self._script(fleet, watcher, stop)
            finally:
                watch_stop.set()
                await watch_task
        return code

    async def _script(self, fleet: Fleet, watcher: DnsWatcher, stop: asyncio.Event) -> int:
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.session = session
            self.fleet = fleet
            if not await self._until(
                stop, 30.0, lambda: self._all_answers_healthy(watcher), "warm-up"
            ):
                self.say("the fleet never reached all-healthy answers; see the logs")
                return 1
            await self._phase("steady", self.args.steady, watcher, stop)
            await self._set_mode(self.args.fail_az, self.args.fail_mode)
            self.failed_at = time.monotonic()
            self.say(f"--> AZ {self.args.fail_az} fails ({self.args.fail_mode}) at once")
            await self._phase("failure", self.args.failure, watcher, stop)
            await self._set_mode(self.args.fail_az, "healthy")
            self.restored_at = time.monotonic()
            self.say(f"--> AZ {self.args.fail_az} restored")
            await self._phase("recovery", self.args.recovery, watcher, stop)
            if stop.is_set():
                self.say("interrupted: stopping every process")
                return 130
        return self._summary(watcher)

    async def _until(self, stop: asyncio.Event, seconds: float, cond: Any, what: str) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stop.is_set():
            if cond():
                return True
            await asyncio.sleep(0.2)
        return False

    def _all_answers_healthy(self, watcher: DnsWatcher) -> bool:
        for name in self.names:
            seen = watcher.latest(name)
            if seen is None or not seen.answers:
                return False
            if self.policies[name] in ("multivalue", "simple") and len(seen.answers) != len(
                self.azs
            ):
                return False
        return True

    async def _set_mode(self, az: str, mode: str) -> None:
        async with self.session.post(f"{self.control}/v1/mode", json={"az": az, "mode": mode}) as r:
            if r.status != 200:
                raise RuntimeError(f"farm refused mode change: {r.status} {await r.text()}")

    async def _scrape_all(self) -> dict[str, Samples]:
        result: dict[str, Samples] = {}
        for name, member in self.fleet.members.items():
            if member.health_url is None or name == "targets":
                continue
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                result[name] = await scrape(
                    self.session, member.health_url.replace("/healthz", "/metrics")
                )
        return result

    async def _phase(
        self, name: str, seconds: float, watcher: DnsWatcher, stop: asyncio.Event
    ) -> None:
        phase = Phase(name, time.monotonic())
        phase.metrics_at_start = await self._scrape_all()
        self.phases.append(phase)
        end = phase.started + seconds
        while time.monotonic() < end and not stop.is_set():
            if not self.args.quiet:
                await self._live_line(phase, watcher)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(1.0, max(0.0, end - time.monotonic())))
        phase.ended = time.monotonic()
        phase.metrics_at_end = await self._scrape_all()

    async def _live_line(self, phase: Phase, watcher: DnsWatcher) -> None:
        samples = await self._scrape_all()
        agg = samples.get("aggregator-1", {})
        received = metric(agg, "urn_tables_received_total", result="accepted")
        healthy = metric(agg, "urn_slots", status="healthy")
        unhealthy = metric(agg, "urn_slots", status="unhealthy")
        by_az = dict.fromkeys(self.azs, 0)
        for name in self.names:
            seen = watcher.latest(name)
            for value in seen.answers if seen else ():
                where = attribute(value)
                if where:
                    by_az[where[0]] += 1
        answers = " ".join(f"{az}:{count:>3}" for az, count in by_az.items())
        self.say(
            f"{time.monotonic() - phase.started:5.1f}s {phase.name:<9} tables rx {received:>6.0f}"
            f" | slots healthy {healthy:>4.0f} unhealthy {unhealthy:>4.0f}"
            f" | answers by AZ {answers}"
        )

    def _summary(self, watcher: DnsWatcher) -> int:
        dead_az = self.args.fail_az
        detection: list[float] = []
        recovery: list[float] = []
        dropped = 0
        never_turned: list[str] = []
        for name in self.names:
            record = self.records[name]
            azs_of_name = {attribute(a["value"])[0] for a in record["answers"]}  # type: ignore[index]
            if dead_az not in azs_of_name:
                continue
            seen = watcher.history.get(name, [])
            during = [o for o in seen if self.failed_at <= o.at < self.restored_at]
            dead_times = [
                o.at for o in during if any(attribute(v)[0] == dead_az for v in o.answers)
            ]  # type: ignore[index]
            if during and dead_times and dead_times[-1] >= during[-1].at:
                never_turned.append(name)
            elif during:
                detection.append(
                    (dead_times[-1] if dead_times else self.failed_at) - self.failed_at
                )
            after = [o for o in seen if o.at >= self.restored_at]
            back = [o.at for o in after if any(attribute(v)[0] == dead_az for v in o.answers)]  # type: ignore[index]
            if back and record["policy"] in ("multivalue", "simple"):
                recovery.append(back[0] - self.restored_at)
            for o in seen:
                dropped += self._dropped(
                    record, o, dead_az if self.failed_at <= o.at < self.restored_at + 5 else None
                )
        self.say("")
        self.say("== summary ==")
        if detection:
            self.say(
                f"turned away from AZ {dead_az}: {len(detection)} names, after min "
                f"{min(detection):.2f}s, median {statistics.median(detection):.2f}s, "
                f"max {max(detection):.2f}s (last dead answer seen after the failure)"
            )
        if recovery:
            self.say(
                f"answers from AZ {dead_az} back after min {min(recovery):.2f}s, median "
                f"{statistics.median(recovery):.2f}s, max {max(recovery):.2f}s"
            )
        self.say(f"names still answering with AZ {dead_az} when it came back: {len(never_turned)}")
        self.say(f"healthy answers dropped: {dropped}")
        self._work_table()
        ok = not never_turned and dropped == 0 and bool(detection)
        self.say("result: " + ("OK" if ok else "PROBLEM (see above)"))
        return 0 if ok else 1

    def _dropped(self, record: dict[str, Any], seen: Any, dead_az: str | None) -> int:
        """Healthy answers missing from one response (AZ `dead_az` excused)."""
        if seen.rcode != 0:
            return 1
        policy = record["policy"]
        live = {a["value"] for a in record["answers"] if attribute(a["value"])[0] != dead_az}  # type: ignore[index]
        if policy in ("multivalue", "simple"):
            return len(live - seen.answers)
        if policy == "failover":
            primary = next(a["value"] for a in record["answers"] if a["role"] == "primary")
            return int(primary in live and primary not in seen.answers)
        return int(not seen.answers)

    def _work_table(self) -> None:
        self.say("")
        self.say(f"{'work per phase':<34}" + "".join(f"{p.name:>12}" for p in self.phases))
        rows = [
            ("checker CPU per tick (ms)", "checker", "urn_tick_cpu_seconds", 1000.0),
            ("aggregator CPU per tick (ms)", "aggregator", "urn_tick_cpu_seconds", 1000.0),
        ]
        for label, role, name, scale in rows:
            cells = []
            for phase in self.phases:
                values = []
                for member, end in phase.metrics_at_end.items():
                    if not member.startswith(role):
                        continue
                    start = phase.metrics_at_start.get(member, {})
                    count = metric(end, name + "_count") - metric(start, name + "_count")
                    total = metric(end, name + "_sum") - metric(start, name + "_sum")
                    if count > 0:
                        values.append(total / count * scale)
                cells.append(f"{statistics.mean(values):12.3f}" if values else f"{'-':>12}")
            self.say(f"{label:<34}" + "".join(cells))
        for label, role in (
            ("bytes pushed per push, checkers", "checker"),
            ("bytes pushed per push, aggregators", "aggregator"),
        ):
            cells = []
            for phase in self.phases:
                pushed = pushes = 0.0
                for member, end in phase.metrics_at_end.items():
                    if member.startswith(role):
                        start = phase.metrics_at_start.get(member, {})
                        pushed += metric(end, "urn_push_bytes_total") - metric(
                            start, "urn_push_bytes_total"
                        )
                        pushes += metric(end, "urn_pushes_total", result="ok") - metric(
                            start, "urn_pushes_total", result="ok"
                        )
                cells.append(f"{pushed / pushes:12.0f}" if pushes else f"{'-':>12}")
            self.say(f"{label:<34}" + "".join(cells))
