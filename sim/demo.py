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

from sim.farm_layout import layout
from sim.fleet import Fleet
from sim.observe import DnsWatcher, Samples, metric, scrape
from sim.scenario import FleetPlan, attribute, build_document
from sim.testing import free_port
from sim.timeline_png import write_png
from sim.verdict import Verdict, judge
from urn.runtime import run_main

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
        self.out.mkdir(parents=True, exist_ok=True)
        self.plan = FleetPlan(
            azs=self.azs,
            checkers_per_az=args.checkers_per_az,
            aggregators=2,
            resolvers=1,
            probe_interval=1.0,
            push_interval=0.5,
            timeout=0.5,
            capacity=max(1024, 4 * args.per_az * len(self.azs)),
            aggregator_ports=(free_port(), free_port()),
            resolver_ports=((free_port(), free_port()),),
            checker_ports=tuple(free_port() for _ in range(len(self.azs) * args.checkers_per_az)),
        )
        self.control = f"http://127.0.0.1:{free_port(stable=True)}"
        self.phases: list[Phase] = []

    def say(self, text: str) -> None:
        print(text, flush=True)

    async def main(self, stop: asyncio.Event) -> int:
        key = secrets.token_hex(32)
        base_port = free_port(stable=True)
        specs = layout(self.azs, self.args.per_az, base_port)
        document = build_document(specs, self.plan)
        config_path = self.out / "urn.yaml"
        config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        self.names = [r["name"] for r in document["records"]]
        self.policies = {r["name"]: r["policy"] for r in document["records"]}
        self.records = {r["name"]: r for r in document["records"]}
        self.sample_names = [
            next(n for n in self.names if self._shows_failover(n, policy))
            for policy in ("multivalue", "weighted", "failover", "simple")
            if policy in self.policies.values()
        ]
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
            http_port, dns_port = self.plan.resolver_ports[0]
            pages = [
                f"  {name:<14} {health.removesuffix('/healthz')}/ui"
                for name, _, health in self.plan.processes(str(config_path))
                if health is not None
            ]
            self.say(
                "fleet up: every process answers /healthz. While it runs, try\n"
                f"  dig @127.0.0.1 -p {dns_port} {self.names[0]} A +short\n"
                f"  curl 'http://127.0.0.1:{http_port}/v1/resolve?name={self.names[0]}&type=A'\n"
                "and watch it in a browser, each process's own status page:\n" + "\n".join(pages)
            )
            watcher = DnsWatcher(("127.0.0.1", dns_port), self.names, rate=200.0)
            watch_stop = asyncio.Event()
            watch_task = asyncio.create_task(watcher.run(watch_stop))
            try:
                code = await self._script(fleet, watcher, stop)
                if code != 130:
                    await self._timeline_png()
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

    async def _timeline_png(self) -> None:
        """Write timeline.png from the aggregator's and the resolver's /v1/status."""
        http_port = self.plan.resolver_ports[0][0]
        urls = {
            "aggregator": f"http://127.0.0.1:{self.plan.aggregator_ports[0]}/v1/status",
            "resolver": f"http://127.0.0.1:{http_port}/v1/status",
        }
        snapshots: dict[str, Any] = {}
        timeout = aiohttp.ClientTimeout(total=5.0)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for role, url in urls.items():
                    async with session.get(url) as response:
                        snapshots[role] = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.say(f"no timeline PNG: /v1/status unreadable ({exc})")
            return
        now = time.monotonic()
        phases = [(p.name, p.started - now, (p.ended or now) - now) for p in self.phases]
        path = self.out / "timeline.png"
        why = await asyncio.to_thread(
            write_png, path, snapshots["aggregator"], snapshots["resolver"], phases
        )
        self.say(f"no timeline PNG: {why}" if why else f"timeline of the run: {path}")

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
            f" | answers by AZ {answers} | {self._samples(watcher)}"
        )

    def _shows_failover(self, name: str, policy: str) -> bool:
        """A name of `policy` with an answer (the primary, for failover) in the AZ to fail."""
        if self.policies[name] != policy:
            return False
        answers = self.records[name]["answers"]
        if policy == "failover":
            answers = [a for a in answers if a["role"] == "primary"]
        return any((attribute(a["value"]) or ("", 0))[0] == self.args.fail_az for a in answers)

    def _samples(self, watcher: DnsWatcher) -> str:
        """The AZs behind the current answers of one name of each policy."""
        cells = []
        for name in self.sample_names:
            seen = watcher.latest(name)
            azs = sorted(
                {where[0] for v in (seen.answers if seen else ()) if (where := attribute(v))}
            )
            short = name.split(".")[0]
            cells.append(f"{short}({self.policies[name][:4]})={''.join(azs) or '-'}")
        return " ".join(cells)

    def _summary(self, watcher: DnsWatcher) -> int:
        dead_az = self.args.fail_az
        bound = self.plan.probe_interval + self.plan.timeout + 2 * self.plan.push_interval
        verdict = judge(
            list(self.records.values()),
            watcher.history,
            dead_az=dead_az,
            failed_at=self.failed_at,
            restored_at=self.restored_at,
            bound=bound,
            settle=bound,
        )
        self.say("")
        self.say("== summary ==")
        self.say(f"{verdict.queries} DNS queries over UDP, {watcher.lost} unanswered")
        detection = Verdict.spread(verdict.detection.values())
        if detection:
            self.say(
                f"turned away from AZ {dead_az}: {len(verdict.detection)} names; last dead answer"
                f" after min {detection['min']:.2f}s, median {detection['median']:.2f}s,"
                f" max {detection['max']:.2f}s (bound {bound:.1f}s)"
            )
        recovery = Verdict.spread(verdict.recovery.values())
        if recovery:
            self.say(
                f"answers from AZ {dead_az} back after min {recovery['min']:.2f}s, median "
                f"{recovery['median']:.2f}s, max {recovery['max']:.2f}s"
            )
        self.say(f"dead answers served after the bound: {verdict.dead_after_bound}")
        self.say(f"names that never turned away: {len(verdict.never_turned)}")
        self.say(f"healthy answers dropped: {verdict.healthy_dropped}")
        for example in verdict.dropped_examples:
            self.say(f"  e.g. {example}")
        self._work_table()
        self.say("result: " + ("OK" if verdict.ok else "PROBLEM (see above)"))
        return 0 if verdict.ok else 1

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
