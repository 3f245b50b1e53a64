"""`urn bench az-failure`: a real fleet loses one AZ at once; urn vs an edge-triggered design.

For each design in turn, against one simulated target farm: start the fleet as separate
processes (`sim.fleet`), a UDP DNS load generator as another (`sim.loadgen`), and
run three phases: steady, one AZ failing at once (farm control API), recovery. Every
half second it scrapes each process's /metrics and reads its CPU from /proc. Figures per
phase and design: CPU per tick and per push interval of checkers and aggregators, CPU
per query of resolvers, bytes pushed per interval by every sender, latency percentiles;
per run: detection and recovery of every affected queried name and the correctness
counters (judged by `sim.verdict`, the same judge as the demo and the e2e test).
Writes report.json, report.md and PNG plots to --out, ends with one JSON line.

Operator levers (issue 18), urn alone: `--shift AZ` shifts a healthy AZ instead (a
document edit, as `urn shift` makes it, ended or left to expire in recovery) and times
its answers leaving and coming back; `--fail-fraction F` fails only part of the AZ, and
`--autoshift` lets the aggregators take the rest away; `--min-healthy` puts a threshold
on every record, so that the constant-work figures hold with levers in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np

from bench.detection_model import expected_detection
from bench.measure import MemberSample, Phase, Sample, latency, phase_work, ratios, work_series
from bench.viewers import Viewers, sizes_by_phase
from sim.chaos import plan_with_ports
from sim.farm_layout import layout
from sim.fleet import Fleet, Member
from sim.loadgen import load_records
from sim.observe import Observation
from sim.scenario import AZS, FleetPlan, answer_value, attribute, build_document
from sim.testing import free_port
from sim.verdict import Verdict, came_back, judge
from urn.config import Defaults, parse_document
from urn.config.levers import parse_time
from urn.config.load import load_text
from urn.runtime import run_main
from urn.shiftedit import edit_text, end_shift, shift_entries, start_shift, with_shifts

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping, Sequence

    from sim.farm_layout import TargetSpec

__all__ = ["add_arguments", "cpu_budget", "failing_targets", "run"]

PROBE_CPU = 35e-6  # measured on this machine: a lean prober's CPU per HTTP probe
FARM_CPU = 35e-6  # and the farm's per probe served
QUERY_CPU = 80e-6  # resolver answer plus load generator, per query (budget estimate)
CONFIG_CPU = 40e-6  # measured here: parsing and applying the document, per check per pass
BUDGET_LIMIT = 0.70
# The levers' settings (issue 18, "Must show"). A 2 of 3 record sits at 66 %, a failover at
# 50 %: in force on every record at every refresh, but no AZ failure takes one below it.
MIN_HEALTHY = {"count": 1, "percent": 50}
AUTOSHIFT = {"unhealthy_share": 0.5, "min_checks": 10}
EXPIRE_INTO_RECOVERY = 1.0  # --shift-ends expire: at least this far into recovery, rounded up
LEVER_POLL_SECONDS = 0.1  # how often an aggregator's /metrics is read for autoshift
# A farm process spends about 40 us per probe served (measured here: python -m
# bench.farm_cost), so one core serves 25,000 probes/s at best; sharding well below that
# keeps the farm's own queueing out of the detection and latency figures.
FARM_PROBES_PER_PROCESS = 15_000
# Measured here, 8 alternating pairs of the 10,000-check blackhole run: resolver p99
# failure/steady median 1.13 with the farm at nice 0, 1.00 at nice 10.
FARM_NICE = 10
SAMPLE_SECONDS = 0.5
ROLES = ("checker", "aggregator", "resolver")
_WANTED = {
    "urn_tick_cpu_seconds_sum": "tick_sum",
    "urn_tick_cpu_seconds_count": "tick_count",
    "urn_push_bytes_total": "push_bytes",
    "urn_queries_total": "queries",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--azs", type=int, default=3)
    parser.add_argument("--checkers-per-az", type=int, default=2)
    parser.add_argument("--probe-interval", type=float, default=5.0, metavar="S")
    parser.add_argument("--push-interval", type=float, default=1.0, metavar="S")
    parser.add_argument("--timeout", type=float, default=1.0, metavar="S")
    parser.add_argument("--aggregators", type=int, default=2)
    parser.add_argument("--resolvers", type=int, default=1)
    parser.add_argument("--qps", type=float, default=2000.0)
    parser.add_argument("--fail-mode", choices=["blackhole", "refuse", "slow"], default="blackhole")
    parser.add_argument("--fail-az", default="b")
    parser.add_argument(
        "--design",
        choices=["urn", "edge", "both", "edge,urn"],
        default=None,
        help="both runs urn then edge against the same farm; edge,urn the other way round"
        " (default both; urn with --shift, --autoshift or --min-healthy, which refuse the"
        " others: the edge design has no operator levers to measure)",
    )
    parser.add_argument(
        "--fail-fraction",
        type=float,
        default=1.0,
        metavar="F",
        help="only this share (0 < F <= 1, default 1) of the failing AZ's targets fail: those"
        " whose id hashes below F (blake2b: the same targets every run); the rest stay"
        " healthy and none of their answers may be dropped (without --autoshift). Any design."
        " With --shift nothing fails unless this is given: then this share of --fail-az"
        " (another AZ) fails at the moment the shift is written, and is restored with it",
    )
    levers = parser.add_argument_group(
        "operator levers (docs/resolver.md); each implies --design urn and refuses another"
    )
    levers.add_argument(
        "--shift",
        metavar="AZ",
        default=None,
        help="instead of a failure, a zonal shift of AZ, whose targets stay healthy: written"
        " into the fleet's config file (urn.shiftedit, atomically) at the failure phase and"
        " ended in recovery (--shift-ends). Its answers must leave within one config plus one"
        " push interval, no other answer may go, and every one must come back",
    )
    levers.add_argument(
        "--shift-ends",
        choices=["end", "expire"],
        default="end",
        help="end: the shift is removed at the start of recovery, as `urn shift end` does;"
        f" expire: it is written with an `until` {EXPIRE_INTO_RECOVERY:g} s (plus up to a"
        " push interval) past the start of recovery, and left to run out (default end)",
    )
    levers.add_argument(
        "--autoshift",
        action="store_true",
        help=f"write `autoshift: {_flow(AUTOSHIFT)}` (and clear_after) into the document: with"
        " --fail-fraction above the share, the rest of the AZ must leave within one push"
        " interval of the threshold being crossed",
    )
    levers.add_argument(
        "--autoshift-clear-after",
        type=float,
        default=5.0,
        metavar="S",
        help="autoshift.clear_after, the seconds the AZ's share must stay below clear_share"
        " before the autoshift ends (default 5, so that it ends within the recovery phase;"
        " urn's own default is 60)",
    )
    levers.add_argument(
        "--min-healthy",
        action="store_true",
        help=f"every record carries `min_healthy: {_flow(MIN_HEALTHY)}`, so that the constant-work"
        " figures are measured with a lever judged on every record at every refresh",
    )
    parser.add_argument("--phase-seconds", type=float, default=20.0, metavar="S")
    parser.add_argument(
        "--config-interval",
        type=float,
        default=5.0,
        metavar="S",
        help="how often every process re-reads and re-applies the whole config (default 5 s,"
        " as in production: a pass over unchanged bytes skips re-validation and the resolver"
        " compiles off its loop, so passes cost every phase the same)",
    )
    parser.add_argument(
        "--failure-phase",
        type=float,
        default=None,
        metavar="F",
        help="fail the AZ F of the way through a push interval (0 = on a checker push"
        " instant); default random. Detection moves with it by up to one push interval",
    )
    parser.add_argument(
        "--failures", type=int, default=None, help="each checker's N of N-of-M (default: urn's)"
    )
    parser.add_argument("--of-last", type=int, default=None, help="M (default: urn's)")
    parser.add_argument(
        "--unhealthy-at",
        type=float,
        default=None,
        metavar="F",
        help="quorum: share of checkers whose verdict takes a slot down (default: urn's)",
    )
    parser.add_argument("--names", type=int, default=None, help="names queried (default qps/8)")
    parser.add_argument(
        "--farm-processes",
        type=int,
        default=None,
        metavar="N",
        help="target farm processes, each serving 1/N of the targets (default: one per"
        f" {FARM_PROBES_PER_PROCESS:,} probes/s, at most a quarter of the cores)",
    )
    parser.add_argument(
        "--farm-nice",
        type=int,
        default=FARM_NICE,
        metavar="N",
        help=f"niceness of the target farm processes, 0-19 (default {FARM_NICE}): the farm"
        " stands in for targets on other machines, and on shared cores its own extra work"
        " in a failure (held blackholed connections) should not come out of the fleet's",
    )
    parser.add_argument(
        "--viewers",
        type=int,
        default=10,
        metavar="N",
        help="simulated status-page viewers polling /v1/status on the resolver and on an"
        " aggregator once per push interval, through every phase (default 10; 0: none)",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def _flow(section: Mapping[str, object]) -> str:
    """A section as YAML flow style: `{count: 1, percent: 50}`."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in section.items()) + "}"


def cpu_budget(
    *,
    checks: int,
    checkers: int,
    probe: float,
    qps: float,
    cores: int,
    processes: int = 0,
    config_interval: float = math.inf,
) -> dict[str, float]:
    """Expected CPU of a configuration, as a fraction of the machine's cores."""
    probes_per_s = checkers * checks / probe
    seconds = probes_per_s * (PROBE_CPU + FARM_CPU) + qps * QUERY_CPU
    seconds += processes * checks * CONFIG_CPU / config_interval
    return {
        "probes_per_s": probes_per_s,
        "cpu_seconds_per_s": seconds,
        "cores": float(cores),
        "fraction": seconds / cores,
    }


def run(args: argparse.Namespace) -> int:
    phase = args.failure_phase
    if phase is not None and not 0.0 <= phase < 1.0:
        _say(f"--failure-phase: {phase} must be in [0, 1)")
        return 2
    if not 0 <= args.farm_nice <= 19:
        _say(f"--farm-nice: {args.farm_nice} must be 0..19")
        return 2
    per_az = max(1, args.checks // args.azs)
    if args.farm_processes is not None and not 1 <= args.farm_processes <= per_az:
        _say(f"--farm-processes: {args.farm_processes} must be 1..{per_az} (targets per AZ)")
        return 2
    problem = _lever_problem(args)
    if problem:
        _say(problem)
        return 2
    return run_main(lambda stop: AzFailure(args).main(stop), args.loop)


def _lever_problem(args: argparse.Namespace) -> str | None:
    """Why the lever options cannot run as given (None: they can); settles --design."""
    if not 0.0 < args.fail_fraction <= 1.0:
        return f"--fail-fraction: {args.fail_fraction:g} must be in (0, 1]"
    azs = AZS[: args.azs]
    if args.shift is not None and args.shift not in azs:
        return f"--shift: {args.shift!r} is not one of the AZs ({', '.join(azs)})"
    if args.shift is not None and args.fail_fraction < 1.0 and args.shift == args.fail_az:
        return (
            f"--shift {args.shift} with --fail-fraction: the shifted AZ stays healthy; fail part"
            " of another (--fail-az)"
        )
    if args.shift is not None and args.fail_fraction < 1.0 and args.shift_ends == "expire":
        return (
            "--shift-ends expire with --fail-fraction: the shift and the failure end together"
            " (--shift-ends end), so that one judge times both"
        )
    if args.autoshift and args.autoshift_clear_after < 0:
        return f"--autoshift-clear-after: {args.autoshift_clear_after:g} must be >= 0"
    levers = [
        flag
        for flag, on in (
            ("--shift", args.shift is not None),
            ("--autoshift", args.autoshift),
            ("--min-healthy", args.min_healthy),
        )
        if on
    ]
    if levers and args.design not in (None, "urn"):
        return (
            f"{', '.join(levers)}: operator levers are measured on urn alone (the edge-"
            f"triggered design has none); --design {args.design} is refused: use --design urn"
            " or leave it out"
        )
    if args.design is None:
        args.design = "urn" if levers else "both"
    return None


def failing_targets(specs: Sequence[TargetSpec], az: str, fraction: float) -> list[str]:
    """The ids of AZ `az`'s targets that --fail-fraction fails: those whose id hashes
    below `fraction` (every one at 1.0), the same ones on every run and machine."""
    return [s.id for s in specs if s.az == az and _unit_hash(s.id) < fraction]


def _unit_hash(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _value_of(target_id: str) -> str:
    """The answer value standing for target `<az>-<index>` (sim.scenario.answer_value)."""
    az, index = target_id.rsplit("-", 1)
    return answer_value(az, int(index))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _gauge(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return math.nan


def _lean_scrape(text: str) -> dict[str, float]:
    """Sums of the few metrics the benchmark needs (all label sets added up)."""
    out = dict.fromkeys((*_WANTED.values(), "pushes_ok", "probes", "probes_healthy"), 0.0)
    for line in text.splitlines():
        if not line.startswith("urn_"):
            continue
        if line.startswith("urn_probes_total{"):
            value = float(line.rsplit(" ", 1)[1])
            out["probes"] += value
            if 'result="healthy"' in line:
                out["probes_healthy"] += value
            continue
        if line.startswith("urn_pushes_total{") and 'result="ok"' in line:
            out["pushes_ok"] += float(line.rsplit(" ", 1)[1])
            continue
        end = line.find("{")
        if end < 0:
            end = line.find(" ")
        field = _WANTED.get(line[:end])
        if field is not None:
            out[field] += float(line.rsplit(" ", 1)[1])
    return out


class AzFailure:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out or Path(tempfile.mkdtemp(prefix="urn-bench-"))
        self.out.mkdir(parents=True, exist_ok=True)
        self.azs = AZS[: args.azs]
        self.per_az: int = max(1, int(args.checks) // int(args.azs))
        self.checkers: int = int(args.azs) * int(args.checkers_per_az)
        shipped = Defaults()
        self.failures = args.failures or shipped.failures
        self.of_last = args.of_last or max(shipped.of_last, self.failures)
        self.unhealthy_at = args.unhealthy_at or shipped.quorum.unhealthy_at
        # Every checker's N-th failed probe, its timeout, and up to two push intervals.
        self.bound = self.failures * args.probe_interval + args.timeout + 2 * args.push_interval
        self.key = secrets.token_hex(32)
        self.cores = len(os.sched_getaffinity(0))
        self.loadavg: dict[tuple[str, str], float] = {}
        # The AZ shifted (--shift) or else the one failing; and whether any target fails:
        # with --shift, only when --fail-fraction asks for it (in another AZ).
        self.az: str = args.shift or args.fail_az
        self.failing_run = args.shift is None or args.fail_fraction < 1.0
        # A zonal shift is a document edit: each resolver's next config pass reads it (one
        # config interval) and its next refresh applies it; a push interval covers that.
        self.shift_bound = float(args.config_interval) + float(args.push_interval)

    # --- setup -----------------------------------------------------------------------

    def farm_processes(self) -> int:
        """--farm-processes, or enough for the probe rate within a quarter of the cores."""
        a = self.args
        if a.farm_processes is not None:
            return int(a.farm_processes)
        probe: float = a.probe_interval
        probes_per_s = self.checkers * self.per_az * len(self.azs) / probe
        wanted = math.ceil(probes_per_s / FARM_PROBES_PER_PROCESS)
        return max(1, min(wanted, self.cores // 4, self.per_az))

    def _plan(self) -> FleetPlan:
        a = self.args
        return plan_with_ports(
            azs=self.azs,
            checkers_per_az=a.checkers_per_az,
            aggregators=a.aggregators,
            resolvers=a.resolvers,
            probe_interval=a.probe_interval,
            push_interval=a.push_interval,
            config_interval=a.config_interval,
            timeout=a.timeout,
            failures=self.failures,
            of_last=self.of_last,
            extra={"quorum": {"unhealthy_at": self.unhealthy_at}},
            capacity=max(1000, math.ceil(self.per_az * len(self.azs) / 1000) * 1000),
        )

    def budget(self) -> dict[str, float]:
        a = self.args
        budget = cpu_budget(
            checks=self.per_az * len(self.azs),
            checkers=self.checkers,
            probe=a.probe_interval,
            qps=a.qps,
            cores=self.cores,
            processes=self.checkers + a.aggregators + a.resolvers,
            config_interval=a.config_interval,
        )
        _say(
            f"budget: {self.checkers} checkers x {self.per_az * len(self.azs)} checks / "
            f"{a.probe_interval:g}s = {budget['probes_per_s']:,.0f} probes/s x "
            f"{(PROBE_CPU + FARM_CPU) * 1e6:.0f}us (prober + farm) + {a.qps:,.0f} qps x "
            f"{QUERY_CPU * 1e6:.0f}us + config passes every {a.config_interval:g}s = "
            f"{budget['cpu_seconds_per_s']:.2f} CPU s/s, "
            f"{100 * budget['fraction']:.0f}% of {self.cores} cores"
        )
        if budget["fraction"] > BUDGET_LIMIT:
            _say(
                "!" * 78 + f"\n!! WARNING: this configuration needs about "
                f"{100 * budget['fraction']:.0f}% of {self.cores} cores (> "
                f"{100 * BUDGET_LIMIT:.0f}%): the machine will saturate and every ratio will\n"
                "!! measure the saturation, not the design. Lower --checks or "
                "--checkers-per-az, or raise --probe-interval.\n" + "!" * 78
            )
        return budget

    # --- the run ---------------------------------------------------------------------

    async def main(self, stop: asyncio.Event) -> int:
        a = self.args
        budget = self.budget()
        design: str = a.design or "both"
        designs = ["urn", "edge"] if design == "both" else design.split(",")
        base_port = free_port(stable=True)
        specs = layout(self.azs, self.per_az, base_port)
        self.specs = specs
        self.failing = failing_targets(specs, a.fail_az, a.fail_fraction)
        shards = self.farm_processes()
        self.controls = [f"http://127.0.0.1:{free_port(stable=True)}" for _ in range(shards)]
        results: dict[str, Any] = {}
        async with (
            Fleet(self.out / "farm") as farm_fleet,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10.0)) as session,
        ):
            self.session = session
            farm: dict[str, Member] = {}
            for index, control in enumerate(self.controls):
                name = "targets" if shards == 1 else f"targets-{index}"
                farm[name] = await farm_fleet.start(
                    name,
                    [
                        "targets",
                        "--log-level",
                        "warning",
                        "serve",
                        "--azs",
                        str(len(self.azs)),
                        "--per-az",
                        str(self.per_az),
                        "--base-port",
                        str(base_port),
                        "--shard",
                        f"{index}/{shards}",
                        "--control",
                        control.removeprefix("http://"),
                    ],
                    f"{control}/healthz",
                )
                if a.farm_nice:
                    os.setpriority(os.PRIO_PROCESS, farm[name].pid, a.farm_nice)  # only raised
            await farm_fleet.wait_healthy(timeout=60)
            _say(
                f"farm up: {len(specs)} targets in AZs {', '.join(self.azs)}, "
                f"{shards} process(es); out {self.out}"
            )
            for design in designs:
                if stop.is_set():
                    break
                results[design] = await self.run_design(design, specs, farm, stop)
        if stop.is_set():
            _say("interrupted: every process stopped")
            return 130
        report = self.report(results, budget)
        (self.out / "report.json").write_text(json.dumps(_finite(report), indent=1, default=_json))
        (self.out / "report.md").write_text(markdown(report))
        if not a.no_plots:
            with contextlib.suppress(ImportError):
                plot(report, results, self.out)
        _say((self.out / "report.md").read_text())
        figures = summary_figures(report)
        line = {"bench": "az-failure", "figures": _finite(figures)}
        print(json.dumps(line, default=_json, allow_nan=False), flush=True)
        return 0

    async def run_design(
        self,
        design: str,
        specs: Sequence[Any],
        farm: Mapping[str, Member],
        stop: asyncio.Event,
    ) -> dict[str, Any]:
        a = self.args
        plan = self._plan()
        document = self._with_levers(build_document(specs, plan))
        run_dir = self.out / design
        run_dir.mkdir(parents=True, exist_ok=True)
        config = run_dir / "config.json"
        config.write_text(json.dumps(document))
        queried = self._queried(document)
        names_file = run_dir / "names.json"
        names_file.write_text(
            json.dumps(
                [{"name": r["name"], "values": [x["value"] for x in r["answers"]]} for r in queried]
            )
        )
        rows_file = run_dir / "queries.bin"
        roles: dict[str, str] = dict.fromkeys(farm, "farm")
        total = 3 * a.phase_seconds
        async with Fleet(run_dir, env={"URN_PUSH_KEY": self.key}) as fleet:
            for name, args, health in plan.processes(str(config)):
                role = args[0]
                if design == "edge":
                    args = ["bench", f"edge-{role}", *args[1:]]
                await fleet.start(name, [*args, "--log-level", "warning"], health)
                roles[name] = role
            await fleet.wait_healthy(timeout=60)
            await self._warm_up(fleet, plan, stop)
            _http, dns = plan.resolver_ports[0]
            await fleet.start(
                "loadgen",
                [
                    "bench",
                    "loadgen",
                    "--server",
                    f"127.0.0.1:{dns}",
                    "--names",
                    str(names_file),
                    "--qps",
                    str(a.qps),
                    "--duration",
                    str(total + 5),
                    "--out",
                    str(rows_file),
                ],
            )
            roles["loadgen"] = "loadgen"
            await self._wait_for_queries(fleet, f"http://127.0.0.1:{_http}/metrics", stop)
            watched = {
                f"http://127.0.0.1:{_http}/v1/status": "resolver",
                f"http://127.0.0.1:{plan.aggregator_ports[0]}/v1/status": "aggregator",
            }
            viewers = Viewers(list(watched), a.viewers, a.push_interval)
            await viewers.start()
            members = {**fleet.members, **farm}
            samples: list[Sample] = []
            sampler = asyncio.create_task(self._sample(members, roles, samples))
            await asyncio.sleep(1.0)  # let the query stream reach its rate
            t0 = time.monotonic()
            await self._phase(design, "steady", t0, a.phase_seconds, samples, roles, stop)
            # Checkers push on the wall-clock instants k * push, so when within that grid
            # the AZ dies sets how long its news waits for a push. Fail at a phase drawn
            # at random (and say which), not at whatever phase set-up happened to leave.
            shift = None
            if a.shift:
                # The phase boundary then costs one edit of the text and one rename.
                shift = ShiftWriter(config, a.shift, self._shift_lead())
                await asyncio.to_thread(shift.prepare, time.time())
            await asyncio.sleep(self._until_phase(a.failure_phase))
            t_fail = time.monotonic()
            failure_phase = time.time() % a.push_interval / a.push_interval
            if shift is not None:
                await asyncio.to_thread(shift.start, time.time())
            if self.failing_run:
                await self._fail()
            t_fail_done = time.monotonic()
            poll: list[tuple[float, float, float]] = []
            poller = (
                asyncio.create_task(self._poll_autoshift(plan, poll))
                if design == "urn" and (a.autoshift or a.fail_fraction < 1.0)
                else None
            )
            await self._phase(design, "failure", t_fail, a.phase_seconds, samples, roles, stop)
            await asyncio.sleep(self._until_phase(None))
            t_recover = time.monotonic()
            recovery_phase = time.time() % a.push_interval / a.push_interval
            t_unshift = t_recover
            if self.failing_run:
                await self._set_mode(a.fail_az, "healthy")
            if shift is not None and a.shift_ends == "end":
                await asyncio.to_thread(shift.end)
            elif shift is not None:  # it runs out by itself, in recovery: timed from then
                t_unshift = shift.until - (time.time() - time.monotonic())
            await self._phase(design, "recovery", t_recover, a.phase_seconds, samples, roles, stop)
            t_end = time.monotonic()
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await viewers.stop()
            await self._snapshot(fleet, plan, run_dir, queried)
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            fleet.kill("loadgen", 15)
            with contextlib.suppress(TimeoutError):
                await fleet.wait_exit("loadgen", timeout=10)
        rows = load_records(rows_file)
        phases = [
            Phase("steady", t0, t_fail),
            Phase("failure", t_fail, t_recover),
            Phase("recovery", t_recover, t_end),
        ]
        history = self._history(rows[rows["t"] >= t0], queried)
        verdict, levers = self._judge(
            queried, history, (t_fail, t_recover, t_unshift), poll, design, shift
        )
        return {
            "design": design,
            "phases": phases,
            "samples": samples,
            "roles": roles,
            "rows": rows,
            "verdict": verdict,
            "queried": queried,
            "t_fail": t_fail,
            "t_fail_applied_s": t_fail_done - t_fail,
            "failure_phase": failure_phase,
            "recovery_phase": recovery_phase,
            "t_recover": t_recover,
            "levers": levers,
            "viewers": {
                "count": a.viewers,
                "snapshot": sizes_by_phase(
                    viewers.seen,
                    {p.name: (p.start, p.end) for p in phases},
                    watched,
                ),
            },
        }

    def _with_levers(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document with --min-healthy on every record and --autoshift's section."""
        a = self.args
        if a.min_healthy:
            for record in document["records"]:
                record["min_healthy"] = dict(MIN_HEALTHY)
        if a.autoshift:
            document["autoshift"] = {**AUTOSHIFT, "clear_after": a.autoshift_clear_after}
        return document

    def _shift_lead(self) -> float:
        """How far after it is written the shift's `until` lies: with --shift-ends expire,
        past the failure phase, the wait for the push-grid instant recovery starts at (at
        most a push interval and a tenth) and EXPIRE_INTO_RECOVERY more; else an hour."""
        a = self.args
        if a.shift_ends == "expire":
            return float(a.phase_seconds) + float(a.push_interval) + 0.1 + EXPIRE_INTO_RECOVERY
        return 3600.0

    async def _fail(self) -> None:
        """The failure: the whole AZ, or only --fail-fraction of its targets."""
        a = self.args
        if a.fail_fraction >= 1.0:
            await self._set_mode(a.fail_az, a.fail_mode)
        elif self.failing:
            await self._set_mode(a.fail_az, a.fail_mode, targets=self.failing)

    async def _poll_autoshift(self, plan: FleetPlan, out: list[tuple[float, float, float]]) -> None:
        """Every LEVER_POLL_SECONDS: (time, the AZ's unhealthy share, its
        urn_autoshift_active) at the first aggregator. The share is the aggregator's own
        `urn_autoshift_unhealthy_share` where autoshift is on, else its unhealthy slots over
        the AZ's checks (only that AZ fails); NaN where it has no such metric."""
        url = plan.aggregator_urls()[0] + "/metrics"
        share = f'urn_autoshift_unhealthy_share{{az="{self.az}"}} '
        unhealthy = 'urn_slots{status="unhealthy"} '
        active = f'urn_autoshift_active{{az="{self.az}"}} '
        deadline = time.monotonic()
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.session.get(url) as response:
                    text = await response.text()
                seen = _gauge(text, share)
                if not math.isfinite(seen):
                    seen = _gauge(text, unhealthy) / self.per_az
                out.append((time.monotonic(), seen, _gauge(text, active)))
            deadline += LEVER_POLL_SECONDS
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    def _judge(
        self,
        queried: Sequence[Mapping[str, Any]],
        history: Mapping[str, Sequence[Observation]],
        times: tuple[float, float, float],
        poll: Sequence[tuple[float, float, float]],
        design: str,
        shift: ShiftWriter | None,
    ) -> tuple[Verdict, dict[str, Any]]:
        """The run's verdict, and the levers' figures (none for a plain run).

        What may go: the failing AZ's answers (only the dead ones under --fail-fraction,
        every one again with autoshift, a push interval later and until it clears), and
        the shifted AZ's. A name whose every answer is among those ignores the shift (a
        shift never empties a name): it is judged as under the failure alone."""
        a = self.args
        t_fail, t_recover, t_unshift = times
        autoshift = bool(a.autoshift) and design == "urn"
        push = float(a.push_interval)
        shifted = self._values(a.shift) if a.shift else set()
        dead = {_value_of(t) for t in self.failing} if self.failing_run else set()
        gone = self._values(a.fail_az) if autoshift or a.fail_fraction >= 1.0 else dead
        gone = gone if self.failing_run else set()
        bound, settle = 0.0, 0.0
        if self.failing_run:
            bound = self.bound + (push if autoshift else 0.0)
            settle = self.bound + (a.autoshift_clear_after + 2 * push if autoshift else 0.0)
        if shifted:
            bound, settle = max(bound, self.shift_bound), max(settle, self.shift_bound)
        ignoring = [r for r in queried if shifted and _values_of(r) <= shifted | gone]
        rest = [r for r in queried if r not in ignoring]
        # With a failure too, the shift ends as the AZ is restored (see _lever_problem).
        at = {"failed_at": t_fail, "restored_at": t_unshift if shifted else t_recover}
        verdict = judge(
            rest, history, dead_az="", bound=bound, settle=settle, dead=shifted | gone, **at
        )
        if ignoring:
            alone = judge(
                ignoring, history, dead_az="", bound=bound, settle=settle, dead=gone, **at
            )
            verdict = _merged(verdict, alone)
        levers: dict[str, Any] = {}
        if shift is not None:
            levers["shift"] = self._shift_figures(rest, history, t_fail, t_unshift, shift, verdict)
            levers["shift"]["ignoring_names"] = len(ignoring)
        if a.fail_fraction < 1.0 or autoshift:
            levers["fail_fraction"] = self._partial_figures(
                queried, history, (t_fail, t_recover), poll, autoshift, gone, verdict
            )
        return verdict, levers

    def _values(self, az: str) -> set[str]:
        """Every answer value standing for a target of `az`."""
        return {_value_of(s.id) for s in self.specs if s.az == az}

    def _partial_figures(
        self,
        queried: Sequence[Mapping[str, Any]],
        history: Mapping[str, Sequence[Observation]],
        times: tuple[float, float],
        poll: Sequence[tuple[float, float, float]],
        autoshift: bool,
        gone: set[str],
        verdict: Verdict,
    ) -> dict[str, Any]:
        """When the dead answers left, when the live ones of the AZ left (autoshift) or that
        they stayed, where the autoshift threshold was crossed, and what came back."""
        a = self.args
        t_fail, t_recover = times
        push = float(a.push_interval)
        common = {"dead_az": a.fail_az, "failed_at": t_fail, "restored_at": t_recover}
        dead = {_value_of(t) for t in self.failing}
        died = judge(queried, history, bound=self.bound, settle=self.bound, dead=dead, **common)
        live = self._values(a.fail_az) - dead
        left = judge(queried, history, bound=self.bound + push, settle=0.0, dead=live, **common)
        back, not_back = came_back(
            queried, history, dead_az=a.fail_az, restored_at=t_recover, dead=gone
        )
        live_leave = Verdict.spread(left.detection.values())
        crossed = _first(poll, lambda x: x[1] >= AUTOSHIFT["unhealthy_share"])
        # The read before the first one at or above the share: the crossing lies between.
        below = max((x[0] for x in poll if crossed is not None and x[0] < crossed), default=None)
        active = _first(poll, lambda x: x[2] >= 1.0)
        cleared = _first(poll, lambda x: x[0] >= t_recover and x[2] == 0.0)
        return {
            "fraction": a.fail_fraction,
            "autoshift": autoshift,
            "dead_targets": len(self.failing),
            "live_targets": self.per_az - len(self.failing),
            "dead_names": _affected(died),
            "dead_leave_s": Verdict.spread(died.detection.values()),
            "dead_bound_s": self.bound,
            "dead_never_left": len(died.never_turned),
            "dead_answers_after_bound": died.dead_after_bound,
            "live_names": _affected(left),
            "live_timed_names": len(left.detection),
            "live_leave_s": live_leave,
            "live_never_left": len(left.never_turned),
            # Live answers of the AZ served later than the detection bound plus a push
            # interval after the failure: none with autoshift, most of them without.
            "live_answers_after_bound": left.dead_after_bound,
            "threshold_crossed_s": None if crossed is None else crossed - t_fail,
            "autoshift_active_s": None if active is None else active - t_fail,
            "autoshift_cleared_s": None if cleared is None else cleared - t_recover,
            "threshold_below_s": None if below is None else below - t_fail,
            "after_threshold_bound_s": push,
            # At most: timed from the last read below the share (the crossing came later).
            "live_leave_after_threshold_s": (
                live_leave["max"] - (below - t_fail) if below is not None and live_leave else None
            ),
            "poll_seconds": LEVER_POLL_SECONDS,
            "back_s": Verdict.spread(back.values()),
            "not_back": len(not_back),
            "healthy_answers_dropped": verdict.healthy_dropped,
        }

    def _shift_figures(
        self,
        rest: Sequence[Mapping[str, Any]],
        history: Mapping[str, Sequence[Observation]],
        t_shift: float,
        t_unshift: float,
        shift: ShiftWriter,
        verdict: Verdict,
    ) -> dict[str, Any]:
        """When the shifted AZ's answers left (against the shift bound) and came back."""
        a = self.args
        left = judge(
            rest,
            history,
            dead_az=self.az,
            failed_at=t_shift,
            restored_at=t_unshift,
            bound=self.shift_bound,
            settle=self.shift_bound,
        )
        back, not_back = came_back(rest, history, dead_az=self.az, restored_at=t_unshift)
        return {
            "az": self.az,
            "ends": a.shift_ends,
            "until": _rfc3339(shift.until),
            "affected_names": _affected(left),
            "timed_names": len(left.detection),
            "leave_s": Verdict.spread(left.detection.values()),
            "leave_bound_s": self.shift_bound,
            "never_left": len(left.never_turned),
            "answers_after_bound": left.dead_after_bound,
            "healthy_answers_dropped": verdict.healthy_dropped,
            "back_s": Verdict.spread(back.values()),
            "back_names": len(back),
            "not_back": len(not_back),
            "not_back_examples": not_back[:5],
        }

    def _until_phase(self, phase: float | None) -> float:
        """Seconds until the wall clock is `phase` of the way through a push interval
        (random when None), at least a tenth of a second from now."""
        push = float(self.args.push_interval)
        target = secrets.randbelow(1000) / 1000 if phase is None else phase
        wait = (target * push - time.time() % push) % push
        return wait if wait >= 0.1 else wait + push

    def _queried(self, document: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The names the load generator asks: enough that each is asked ~8 times a second."""
        count = self.args.names or max(8, int(self.args.qps / 8))
        return list(document["records"][:count])

    @staticmethod
    def _history(
        rows: np.ndarray[Any, Any], queried: Sequence[Mapping[str, Any]]
    ) -> dict[str, list[Observation]]:
        values = [[x["value"] for x in r["answers"]] for r in queried]
        history: dict[str, list[Observation]] = {r["name"]: [] for r in queried}
        answered = rows[~np.isnan(rows["latency"])]
        for t, index, lat, rcode, mask in answered.tolist():
            options = values[index]
            got = frozenset(v for i, v in enumerate(options) if mask >> i & 1)
            if mask >> 15 & 1:
                got = got | {"unexpected"}
            history[queried[index]["name"]].append(Observation(t, got, rcode, lat))
        return history

    async def _warm_up(self, fleet: Fleet, plan: FleetPlan, stop: asyncio.Event) -> None:
        """Until every aggregator hears every checker and holds every slot healthy."""
        deadline = time.monotonic() + 90
        urls = [u + "/metrics" for u in plan.aggregator_urls()]
        while not stop.is_set():
            ready = 0
            for url in urls:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with self.session.get(url) as response:
                        text = await response.text()
                    fresh = _gauge(text, "urn_fresh_checkers ")
                    unhealthy = _gauge(text, 'urn_slots{status="unhealthy"} ')
                    unknown = _gauge(text, 'urn_slots{status="unknown"} ')
                    healthy = _gauge(text, 'urn_slots{status="healthy"} ')
                    if fresh >= self.checkers and unhealthy == 0 == unknown and healthy > 0:
                        ready += 1
            if ready == len(urls):
                break
            if time.monotonic() > deadline:
                _say("warning: the fleet did not converge to all-healthy within 90 s; going on")
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(2 * self.args.push_interval)

    async def _snapshot(
        self, fleet: Fleet, plan: FleetPlan, run_dir: Path, queried: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep every member's final /metrics and the resolver's explanation of a few names."""
        for name, member in fleet.members.items():
            if member.health_url is None:
                continue
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.session.get(member.health_url.replace("/healthz", "/metrics")) as r:
                    (run_dir / f"{name}.metrics.txt").write_text(await r.text())
        http, _ = plan.resolver_ports[0]
        explained = {}
        for record in queried[:12]:
            url = f"http://127.0.0.1:{http}/v1/explain?name={record['name']}"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                async with self.session.get(url) as r:
                    explained[record["name"]] = await r.json(content_type=None)
        (run_dir / "explain.json").write_text(json.dumps(explained, indent=1))

    async def _wait_for_queries(self, fleet: Fleet, url: str, stop: asyncio.Event) -> None:
        """Until the resolver counts answered queries (the generator is up and sending)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stop.is_set():
            if not fleet.members["loadgen"].alive:
                raise RuntimeError(f"loadgen exited:\n{fleet.tail('loadgen')}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.session.get(url) as response:
                    if _lean_scrape(await response.text())["queries"] > 0:
                        return
            await asyncio.sleep(0.2)
        raise RuntimeError("the resolver answered no query within 60 s")

    async def _set_mode(self, az: str, mode: str, targets: Sequence[str] | None = None) -> None:
        """Every farm process at once: they hold disjoint shares of the AZ's targets (the
        layout's every Nth, `urn targets serve --shard`); `targets`: only those of the AZ."""
        shards = len(self.controls)
        bodies: list[dict[str, Any]] = []
        for index in range(shards):
            if targets is None:
                bodies.append({"az": az, "mode": mode})
                continue
            mine = {s.id for s in self.specs[index::shards]}
            bodies.append({"targets": [t for t in targets if t in mine], "mode": mode})

        async def one(control: str, body: dict[str, Any]) -> None:
            if "targets" in body and not body["targets"]:
                return
            for attempt in (1, 2):
                try:
                    async with self.session.post(f"{control}/v1/mode", json=body) as response:
                        if response.status != 200:
                            raise RuntimeError(
                                f"farm {control} refused {mode}: {response.status}"
                                f" {await response.text()}"
                            )
                        return
                except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
                    # Seen once on a loaded machine: the restore's connection reset. A mode
                    # change is idempotent (targets already in it are left alone): again.
                    if attempt == 2:
                        raise
                    _say(f"farm {control}: {exc!r}; asking again")

        await asyncio.gather(*(one(c, b) for c, b in zip(self.controls, bodies, strict=True)))

    async def _sample(
        self, members: Mapping[str, Member], roles: Mapping[str, str], samples: list[Sample]
    ) -> None:
        metric_urls = {
            name: m.health_url.replace("/healthz", "/metrics")
            for name, m in members.items()
            if m.health_url is not None and roles.get(name) in ROLES
        }
        deadline = time.monotonic()
        last: dict[str, dict[str, float]] = {}
        while True:

            async def one(name: str, url: str) -> tuple[str, dict[str, float]]:
                try:
                    async with self.session.get(url) as response:
                        return name, _lean_scrape(await response.text())
                except (aiohttp.ClientError, TimeoutError):
                    return name, {}

            scraped = dict(await asyncio.gather(*(one(n, u) for n, u in metric_urls.items())))
            t = time.monotonic()
            taken: dict[str, MemberSample] = {}
            for name, member in members.items():
                figures = scraped.get(name) or last.get(name, {})  # a missed scrape: carry on
                last[name] = figures
                taken[name] = MemberSample(
                    cpu=member.cpu_seconds(),
                    tick_sum=figures.get("tick_sum", math.nan),
                    tick_count=figures.get("tick_count", math.nan),
                    push_bytes=figures.get("push_bytes", 0.0),
                    pushes_ok=figures.get("pushes_ok", 0.0),
                    probes=figures.get("probes", 0.0),
                    probes_healthy=figures.get("probes_healthy", 0.0),
                    queries=figures.get("queries", 0.0),
                )
            taken["bench"] = MemberSample(cpu=time.process_time())
            samples.append(Sample(t, taken))
            deadline += SAMPLE_SECONDS
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    async def _phase(
        self,
        design: str,
        phase: str,
        start: float,
        seconds: float,
        samples: list[Sample],
        roles: Mapping[str, str],
        stop: asyncio.Event,
    ) -> None:
        end = start + seconds
        self.loadavg[(design, phase)] = os.getloadavg()[0]
        while not stop.is_set():
            now = time.monotonic()
            if now >= end:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(1.0, end - now))
            if not self.args.quiet:
                _say(
                    self._progress(design, phase, time.monotonic() - start, seconds, samples, roles)
                )

    def _progress(
        self,
        design: str,
        phase: str,
        elapsed: float,
        seconds: float,
        samples: Sequence[Sample],
        roles: Mapping[str, str],
    ) -> str:
        if len(samples) < 3:
            return f"[{design}] {phase:<8} {elapsed:5.1f}/{seconds:g}s"
        a, b = samples[-3], samples[-1]
        dt = b.t - a.t
        cpu = sum(b.members[n].cpu - a.members[n].cpu for n in b.members if n in a.members)
        by_role: dict[str, float] = {}
        for name, role in roles.items():
            if name in a.members and name in b.members:
                pushed = b.members[name].push_bytes - a.members[name].push_bytes
                by_role[role] = by_role.get(role, 0.0) + pushed / dt * self.args.push_interval
        qps = (
            sum(
                b.members[n].queries - a.members[n].queries
                for n, r in roles.items()
                if r == "resolver" and n in a.members
            )
            / dt
        )
        return (
            f"[{design}] {phase:<8} {elapsed:5.1f}/{seconds:g}s"
            f"  cpu {100 * cpu / dt / self.cores:3.0f}%"
            f" of {self.cores}  bytes/interval checkers {by_role.get('checker', 0) / 1e3:8.1f}k"
            f" aggregators {by_role.get('aggregator', 0) / 1e3:8.1f}k  resolver {qps:6.0f} q/s"
        )

    # --- figures ---------------------------------------------------------------------

    def model(self, phase: float | None = None) -> dict[str, float]:
        """What the intervals promise for detection (bench/detection_model.py)."""
        a = self.args
        return expected_detection(
            probe=a.probe_interval,
            push=a.push_interval,
            timeout=a.timeout,
            lag=round(0.1 * a.push_interval, 6),
            checkers=self.checkers,
            unhealthy_at=self.unhealthy_at,
            failures=self.failures,
            mode=a.fail_mode,
            phase=phase if phase is not None and math.isfinite(phase) else None,
        )

    def report(self, results: Mapping[str, Any], budget: Mapping[str, float]) -> dict[str, Any]:
        a = self.args
        out: dict[str, Any] = {
            "config": {
                "checks": self.per_az * len(self.azs),
                "azs": len(self.azs),
                "checkers_per_az": a.checkers_per_az,
                "probe_interval": a.probe_interval,
                "push_interval": a.push_interval,
                "timeout": a.timeout,
                "aggregators": a.aggregators,
                "resolvers": a.resolvers,
                "qps": a.qps,
                "fail_mode": a.fail_mode,
                "fail_az": a.fail_az,
                "phase_seconds": a.phase_seconds,
                "config_interval": a.config_interval,
                "failures": self.failures,
                "of_last": self.of_last,
                "unhealthy_at": self.unhealthy_at,
                "detection_bound_s": self.bound,
                "detection_model_s": self.model(),
                "farm_processes": len(self.controls),
                "farm_nice": a.farm_nice,
                "design": a.design,
                "shift": a.shift,
                "shift_ends": a.shift_ends if a.shift else None,
                "shift_bound_s": self.shift_bound,
                "fail_fraction": a.fail_fraction,
                "autoshift": (
                    {**AUTOSHIFT, "clear_after": a.autoshift_clear_after} if a.autoshift else None
                ),
                "min_healthy": dict(MIN_HEALTHY) if a.min_healthy else None,
            },
            "budget": dict(budget),
            "designs": {},
        }
        for design, result in results.items():
            out["designs"][design] = design_report(result, a.push_interval, self.cores)
            model = {} if a.shift else self.model(result["failure_phase"])
            out["designs"][design]["correctness"]["detection_model_s"] = model
            for phase, data in out["designs"][design]["phases"].items():
                data["loadavg_1m_at_start"] = self.loadavg.get((design, phase), math.nan)
        return out


class ShiftWriter:
    """--shift's edits of the fleet's config file, made as `urn shift` makes them
    (urn.shiftedit: only `shifts` changes) and written atomically, so that a process's
    config pass reads the old document or the new one, never half of one."""

    def __init__(self, path: Path, az: str, lead: float) -> None:
        self.path = path
        self.az = az
        self.lead = lead  # seconds from the write to the shift's `until`
        self.until = math.nan  # wall time, once started
        self.text = ""
        self.raw: Mapping[str, Any] = {}

    def entry(self, now: float) -> dict[str, str]:
        return {"az": self.az, "until": _rfc3339(now + self.lead), "reason": _SHIFT_REASON}

    def prepare(self, now: float) -> None:
        """Read the file, and validate it whole with the shift as every process will (a
        10,000-check document takes a while); ConfigError here, not in the fleet."""
        self.text = self.path.read_text()
        self.raw = load_text(self.text)
        entries, _ = start_shift(shift_entries(self.raw), self.entry(now))
        parse_document(with_shifts(self.raw, entries), now)

    def start(self, now: float) -> None:
        """Write the shift (`until` = now + lead, to the millisecond), as `shift start`."""
        entry = self.entry(now)
        self.until = parse_time(entry["until"], "shifts")
        entries, _ = start_shift(shift_entries(self.raw), entry)
        _replace_file(self.path, edit_text(self.text, self.raw, entries).text)

    def end(self) -> None:
        """Remove the shift, as `urn shift end`."""
        text = self.path.read_text()
        raw = load_text(text)
        entries, _ = end_shift(shift_entries(raw), self.az)
        _replace_file(self.path, edit_text(text, raw, entries).text)


_SHIFT_REASON = "urn bench az-failure --shift"


def _rfc3339(seconds: float) -> str:
    """RFC 3339 UTC to the millisecond (urn.config.levers.format_time stops at seconds)."""
    stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _replace_file(path: Path, text: str) -> None:
    """Replace `path` by `text`: a file beside it, then a rename."""
    temporary = path.with_name(f".{path.name}.bench.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _first(
    poll: Sequence[tuple[float, float, float]], test: Callable[[tuple[float, float, float]], bool]
) -> float | None:
    return next((x[0] for x in poll if test(x)), None)


def _values_of(record: Mapping[str, Any]) -> set[str]:
    return {answer["value"] for answer in record["answers"]}


def _merged(one: Verdict, two: Verdict) -> Verdict:
    """Two verdicts over disjoint names as one."""
    return Verdict(
        detection={**one.detection, **two.detection},
        recovery={**one.recovery, **two.recovery},
        never_turned=one.never_turned + two.never_turned,
        unmeasured=one.unmeasured + two.unmeasured,
        dead_after_bound=one.dead_after_bound + two.dead_after_bound,
        healthy_dropped=one.healthy_dropped + two.healthy_dropped,
        dropped_examples=(one.dropped_examples + two.dropped_examples)[:5],
        queries=one.queries + two.queries,
    )


def _affected(verdict: Verdict) -> int:
    return len(verdict.detection) + len(verdict.never_turned) + len(verdict.unmeasured)


def design_report(result: Mapping[str, Any], push: float, cores: int) -> dict[str, Any]:
    roles: dict[str, str] = dict(result["roles"])
    roles_all = {**roles, "bench": "bench"}
    phases: dict[str, Any] = {}
    for phase in result["phases"]:
        members = phase_work(result["samples"], phase, roles_all, push)
        by_role = _by_role(members, roles_all)
        total_cpu = sum(m["cpu_fraction"] for m in members.values())
        phases[phase.name] = {
            "members": members,
            "roles": by_role,
            "latency": latency(result["rows"], phase),
            "machine_cpu_fraction": total_cpu / cores,
        }
    steady = phases.get("steady")
    for name in ("failure", "recovery"):
        if steady is None or name not in phases:
            continue
        phases[name]["ratios"] = {
            "roles": {
                role: ratios(steady["roles"].get(role, {}), figures)
                for role, figures in phases[name]["roles"].items()
            },
            "latency": ratios(steady["latency"], phases[name]["latency"]),
        }
    verdict: Verdict = result["verdict"]
    rows = result["rows"]
    answered = rows[~np.isnan(rows["latency"])]
    gaps = [
        float(np.median(np.diff(t)))
        for t in (answered["t"][answered["name"] == i] for i in range(len(result["queried"])))
        if len(t) > 2
    ]
    return {
        "phases": phases,
        "levers": result.get("levers", {}),
        "correctness": {
            "detection_s": Verdict.spread(verdict.detection.values()),
            "recovery_s": Verdict.spread(verdict.recovery.values()),
            "affected_names": (
                len(verdict.detection) + len(verdict.never_turned) + len(verdict.unmeasured)
            ),
            "timed_names": len(verdict.detection),
            "never_turned": verdict.never_turned,
            "dead_answers_after_bound": verdict.dead_after_bound,
            "healthy_answers_dropped": verdict.healthy_dropped,
            "dropped_examples": verdict.dropped_examples,
            "queries_judged": verdict.queries,
            "query_gap_per_name_s": float(np.median(gaps)) if gaps else math.nan,
            "ok": verdict.ok,
        },
        "failure_applied_s": result["t_fail_applied_s"],
        # Where in the push grid (0 = a checker push instant, 1 = the next one) the AZ
        # failed and came back: detection moves with it by up to one push interval.
        "failure_phase": result["failure_phase"],
        "recovery_phase": result["recovery_phase"],
        # Status-page viewers polling /v1/status through every phase, and the sizes of
        # the snapshots they got (fixed-size: one size, the same in steady and failure).
        "viewers": result.get("viewers", {}),
    }


def _by_role(
    members: Mapping[str, Mapping[str, float]], roles: Mapping[str, str]
) -> dict[str, dict[str, float]]:
    """Per role: mean per member of CPU figures, and bytes per interval summed over members."""
    grouped: dict[str, list[Mapping[str, float]]] = {}
    for name, figures in members.items():
        grouped.setdefault(roles[name], []).append(figures)
    out: dict[str, dict[str, float]] = {}
    for role, items in grouped.items():
        keys: set[str] = set().union(*(i.keys() for i in items))
        merged: dict[str, float] = {}
        for key in sorted(keys):
            values = [i[key] for i in items if key in i and math.isfinite(i[key])]
            if not values:
                merged[key] = math.nan
            elif key in ("bytes_per_interval", "queries_per_s", "cpu_fraction", "probes_per_s"):
                merged[key] = float(sum(values))
            elif key.startswith("peak_"):
                merged[key] = float(max(values))
            else:
                merged[key] = float(np.mean(values))
        merged["members"] = float(len(items))
        out[role] = merged
    return out


def _finite(value: Any) -> Any:
    """The same structure with NaN and infinities as None (strict JSON)."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# --- presentation --------------------------------------------------------------------

_TABLE = (
    ("checker", "probes_per_s", "probes per s (all checkers)", 1.0),
    ("checker", "probe_failure_fraction", "probes failed (%)", 100.0),
    ("checker", "cpu_per_probe", "checker CPU per probe, /proc (us)", 1e6),
    ("checker", "tick_cpu", "checker CPU per tick (ms)", 1e3),
    ("checker", "peak_tick_cpu", "checker CPU per tick, peak 0.5 s window (ms)", 1e3),
    ("checker", "cpu_per_interval", "checker CPU per push interval, /proc (ms)", 1e3),
    ("checker", "bytes_per_interval", "checker bytes pushed per interval (all)", 1.0),
    ("checker", "bytes_per_push", "checker bytes per push", 1.0),
    ("checker", "peak_bytes_per_push", "checker bytes per push, peak", 1.0),
    ("aggregator", "tick_cpu", "aggregator CPU per tick (ms)", 1e3),
    ("aggregator", "peak_tick_cpu", "aggregator CPU per tick, peak 0.5 s window (ms)", 1e3),
    ("aggregator", "cpu_per_interval", "aggregator CPU per push interval, /proc (ms)", 1e3),
    ("aggregator", "bytes_per_interval", "aggregator bytes pushed per interval (all)", 1.0),
    ("aggregator", "bytes_per_push", "aggregator bytes per push", 1.0),
    ("aggregator", "peak_bytes_per_push", "aggregator bytes per push, peak", 1.0),
    ("resolver", "cpu_per_query", "resolver CPU per query, /proc (us)", 1e6),
    ("resolver", "queries_per_s", "resolver queries answered per s", 1.0),
    ("farm", "cpu_fraction", "target farm CPU (cores)", 1.0),
)
_LATENCY = (
    ("p50_ms", "latency p50 (ms)"),
    ("p99_ms", "latency p99 (ms)"),
    ("p999_ms", "latency p99.9 (ms)"),
    ("lost", "queries unanswered"),
)


def _cell(value: Any, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    value = float(value) * scale
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def markdown(report: Mapping[str, Any]) -> str:
    c = report["config"]
    b = report["budget"]
    designs = list(report["designs"])
    lines = [
        "# az-failure benchmark",
        "",
        f"{c['checks']} checks in {c['azs']} AZs, {c['checkers_per_az']} checkers per AZ, "
        f"probe {c['probe_interval']:g}s, push {c['push_interval']:g}s, timeout {c['timeout']:g}s, "
        f"{c['aggregators']} aggregators, {c['resolvers']} resolver(s), {c['qps']:g} qps; "
        f"{_event(c)} for {c['phase_seconds']:g}s; "
        f"each checker {c['failures']} of its last {c['of_last']} probes, quorum"
        f" {c.get('unhealthy_at', math.nan):g} of checkers;"
        f" detection bound {c['detection_bound_s']:g}s;"
        f" config re-read every {c.get('config_interval', math.nan):g}s;"
        f" {c.get('farm_processes', 1)} target farm process(es) at nice"
        f" {c.get('farm_nice', 0)}.",
        f"Budget: {b['probes_per_s']:,.0f} probes/s, about {100 * b['fraction']:.0f}% of "
        f"{b['cores']:.0f} cores.",
        "",
    ]
    for phase in ("steady", "failure", "recovery"):
        lines.append(f"## {phase}")
        lines.append("")
        head = (
            "| figure | "
            + " | ".join(
                f"{d}" + ("" if phase == "steady" else f" | {d} {phase}/steady") for d in designs
            )
            + " |"
        )
        lines.append(head)
        lines.append("|" + "---|" * (1 + len(designs) * (1 if phase == "steady" else 2)))
        rows = [(role, key, label, scale, "roles") for role, key, label, scale in _TABLE]
        rows += [("", key, label, 1.0, "latency") for key, label in _LATENCY]
        for role, key, label, scale, kind in rows:
            cells = []
            for d in designs:
                data = report["designs"][d]["phases"].get(phase, {})
                value = (
                    data.get("roles", {}).get(role, {}).get(key)
                    if kind == "roles"
                    else data.get("latency", {}).get(key)
                )
                cells.append(_cell(value, scale))
                if phase != "steady":
                    r = data.get("ratios", {})
                    ratio = (
                        r.get("roles", {}).get(role, {}).get(key)
                        if kind == "roles"
                        else r.get("latency", {}).get(key)
                    )
                    cells.append(
                        _cell(ratio)
                        if ratio is None or not math.isfinite(ratio)
                        else f"{ratio:.3f}"
                    )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        cpu = [
            _cell(
                report["designs"][d]["phases"].get(phase, {}).get("machine_cpu_fraction", math.nan),
                100,
            )
            + "%"
            for d in designs
        ]
        load = [
            _cell(report["designs"][d]["phases"].get(phase, {}).get("loadavg_1m_at_start"))
            for d in designs
        ]
        lines.append(
            "| machine load average (1 min) at phase start | "
            + " | ".join(x if phase == "steady" else f"{x} | " for x in load)
            + " |"
        )
        lines.append(
            "| machine CPU (all processes) | "
            + " | ".join((x if phase == "steady" else f"{x} | ") for x in cpu)
            + " |"
        )
        lines.append("")
    lines.append("## detection and correctness")
    lines.append("")
    lines.append("| figure | " + " | ".join(designs) + " |")
    lines.append("|---|" + "---|" * len(designs))
    corr = {d: report["designs"][d]["correctness"] for d in designs}
    phases_at = {
        d: "{:.2f} / {:.2f}".format(
            report["designs"][d].get("failure_phase", math.nan),
            report["designs"][d].get("recovery_phase", math.nan),
        )
        for d in designs
    }
    for label, get in (
        ("affected names queried", lambda x: x["affected_names"]),
        ("of them timed (dead value in every answer before)", lambda x: x["timed_names"]),
        ("detection min / median / max (s)", lambda x: _spread(x["detection_s"])),
        (
            "detection the intervals give at this phase: median / max (s)",
            lambda x: _model(x.get("detection_model_s")),
        ),
        (
            "detection the intervals give over every phase: median / max (s)",
            lambda _: _model(c.get("detection_model_s")),
        ),
        ("recovery min / median / max (s)", lambda x: _spread(x["recovery_s"])),
        ("names that never turned away", lambda x: len(x["never_turned"])),
        ("dead answers after the bound", lambda x: x["dead_answers_after_bound"]),
        ("healthy answers dropped", lambda x: x["healthy_answers_dropped"]),
        ("gap between queries of one name (s)", lambda x: _cell(x["query_gap_per_name_s"])),
        ("verdict", lambda x: "OK" if x["ok"] else "PROBLEM"),
    ):
        lines.append(f"| {label} | " + " | ".join(str(get(corr[d])) for d in designs) + " |")
    lines.append(
        "| failure / restore at push-grid phase (0 = a push instant) | "
        + " | ".join(phases_at[d] for d in designs)
        + " |"
    )
    lines.append("")
    lines.extend(_lever_lines(report, designs))
    lines.extend(_viewer_lines(report, designs))
    return "\n".join(lines)


def _lever_lines(report: Mapping[str, Any], designs: Sequence[str]) -> list[str]:
    """The zonal shift's and the partial failure's figures, each beside its bound."""
    c = report["config"]
    lines: list[str] = []
    for d in designs:
        levers = report["designs"][d].get("levers") or {}
        shift = levers.get("shift")
        if shift:
            lines += [
                f"## zonal shift of AZ {shift['az']} ({d}), ended by "
                + ("`urn shift end`-style removal" if shift["ends"] == "end" else "expiry")
                + f", until {shift['until']}",
                "",
                "| figure | value |",
                "|---|---|",
                f"| names with an answer in AZ {shift['az']} queried (timed) |"
                f" {shift['affected_names']} ({shift['timed_names']}) |",
                f"| its answers left: min / median / max (s) | {_spread(shift['leave_s'])} |",
                f"| bound: one config interval + one push interval (s) |"
                f" {shift['leave_bound_s']:g} |",
                f"| names that never left | {shift['never_left']} |",
                f"| its answers after the bound | {shift['answers_after_bound']} |",
                f"| other answers dropped | {shift['healthy_answers_dropped']} |",
                f"| came back: min / median / max (s) | {_spread(shift['back_s'])} |",
                f"| names not back by the end | {shift['not_back']} |",
                "",
            ]
        partial = levers.get("fail_fraction")
        if partial:
            az = c["fail_az"]
            lines += [
                f"## {100 * partial['fraction']:.0f} % of AZ {az} fails ({d}),"
                f" autoshift {'on' if partial['autoshift'] else 'off'}",
                "",
                "| figure | value |",
                "|---|---|",
                f"| targets of AZ {az}: dead / live | {partial['dead_targets']} /"
                f" {partial['live_targets']} |",
                f"| dead answers left: min / median / max (s; bound {partial['dead_bound_s']:g}) |"
                f" {_spread(partial['dead_leave_s'])} |",
                f"| names with a dead answer that never turned | {partial['dead_never_left']} |",
                f"| dead answers after the bound | {partial['dead_answers_after_bound']} |",
                "| autoshift threshold crossed at the first aggregator, between reads (s) |"
                f" {_cell(partial.get('threshold_below_s'))} and"
                f" {_cell(partial['threshold_crossed_s'])} |",
                f"| urn_autoshift_active{{az={az}}} went to 1 (s) |"
                f" {_cell(partial['autoshift_active_s'])} |",
                f"| names with a live answer in AZ {az} (timed) | {partial['live_names']}"
                f" ({partial['live_timed_names']}) |",
                f"| live answers left: min / median / max (s) |"
                f" {_spread(partial['live_leave_s']) if partial['live_leave_s'] else 'never'} |",
                f"| live answers left after the threshold, at most (s; bound"
                f" {partial['after_threshold_bound_s']:g}) |"
                f" {_cell(partial['live_leave_after_threshold_s'])} |",
                f"| names whose live answer never left | {partial['live_never_left']} |",
                "| live answers after the bound + a push |"
                f" {partial['live_answers_after_bound']} |",
                f"| answers dropped that had to stay | {partial['healthy_answers_dropped']} |",
                f"| autoshift cleared after the restore (s) |"
                f" {_cell(partial['autoshift_cleared_s'])} |",
                f"| came back: min / median / max (s) | {_spread(partial['back_s'])} |",
                f"| names not back by the end | {partial['not_back']} |",
                f"(times from the failure unless said; the aggregator's /metrics is read every"
                f" {partial['poll_seconds']:g} s)",
                "",
            ]
    return lines


def _event(c: Mapping[str, Any]) -> str:
    """What the failure phase does, for the report's first line."""
    extra = "".join(
        f"; {name} {c[key]}"
        for name, key in (("autoshift", "autoshift"), ("every record's min_healthy", "min_healthy"))
        if c.get(key)
    )
    share = c.get("fail_fraction", 1.0)
    what = f"AZ {c['fail_az']}" if share >= 1.0 else f"{100 * share:.0f} % of AZ {c['fail_az']}"
    failing = f"{what} fails ({c['fail_mode']})"
    if c.get("shift"):
        shifted = (
            f"AZ {c['shift']} is shifted away (its targets healthy, the shift ended by"
            f" {c['shift_ends']})"
        )
        return shifted + (f" and {failing}" if share < 1.0 else "") + extra
    return failing + extra


def _viewer_lines(report: Mapping[str, Any], designs: Sequence[str]) -> list[str]:
    """The status-page viewers and the snapshot sizes they saw, per design and phase."""
    lines = ["## status-page viewers", ""]
    for d in designs:
        viewers = report["designs"][d].get("viewers") or {}
        if not viewers.get("count"):
            lines.append(f"{d}: no viewers")
            continue
        parts = []
        for member in ("resolver", "aggregator"):
            sizes = []
            for phase in ("steady", "failure", "recovery"):
                seen = viewers["snapshot"].get(phase, {}).get(member, {})
                got = seen.get("sizes") or []
                if not got and seen.get("failed") == seen.get("polls"):
                    sizes.append(f"{phase} not served")  # the edge aggregator has no page
                    continue
                sizes.append(
                    f"{phase} {'/'.join(str(s) for s in got) or 'none'}"
                    + (f" ({seen['failed']} failed)" if seen.get("failed") else "")
                )
            parts.append(f"{member} /v1/status bytes: " + ", ".join(sizes))
        lines.append(f"{d}, {viewers['count']} viewers polling once per push: " + "; ".join(parts))
    lines.append("")
    return lines


def _model(model: Mapping[str, float] | None) -> str:
    if not model:
        return "-"
    return f"{model['median']:.2f} / {model['max']:.2f}"


def _spread(values: Mapping[str, float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{values[k]:.2f}" for k in ("min", "median", "max"))


_SUMMARY_KEYS = (
    "tick_cpu",
    "peak_tick_cpu",
    "cpu_per_interval",
    "bytes_per_interval",
    "bytes_per_push",
    "peak_bytes_per_push",
    "cpu_per_query",
)


def summary_figures(report: Mapping[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {"config": report["config"]}
    for design, data in report["designs"].items():
        f: dict[str, Any] = {}
        for phase, pdata in data["phases"].items():
            for role, values in pdata["roles"].items():
                for key in _SUMMARY_KEYS:
                    if key in values:
                        f[f"{phase}.{role}.{key}"] = values[key]
            for key in ("p50_ms", "p99_ms", "p999_ms"):
                f[f"{phase}.latency.{key}"] = pdata["latency"][key]
            for role, values in pdata.get("ratios", {}).get("roles", {}).items():
                for key in _SUMMARY_KEYS:
                    if key in values:
                        f[f"ratio.{phase}/steady.{role}.{key}"] = values[key]
            for key in ("p50_ms", "p99_ms", "p999_ms"):
                if "ratios" in pdata:
                    f[f"ratio.{phase}/steady.latency.{key}"] = pdata["ratios"]["latency"][key]
        corr = data["correctness"]
        for key in ("min", "median", "max"):
            f[f"detection_s.{key}"] = corr["detection_s"].get(key, math.nan)
            if key in ("median", "max"):
                f[f"detection_model_s.{key}"] = corr.get("detection_model_s", {}).get(key)
            f[f"recovery_s.{key}"] = corr["recovery_s"].get(key, math.nan)
        f["dead_answers_after_bound"] = corr["dead_answers_after_bound"]
        f["healthy_answers_dropped"] = corr["healthy_answers_dropped"]
        f["never_turned"] = len(corr["never_turned"])
        for key in ("failure_phase", "recovery_phase"):
            if key in data:
                f[key] = round(data[key], 3)
        for lever, values in (data.get("levers") or {}).items():
            for key, value in values.items():
                if isinstance(value, dict):
                    for part in ("min", "median", "max"):
                        f[f"{lever}.{key}.{part}"] = value.get(part)
                elif not isinstance(value, list):
                    f[f"{lever}.{key}"] = value
        viewers = data.get("viewers") or {}
        f["viewers"] = viewers.get("count", 0)
        for phase, per in (viewers.get("snapshot") or {}).items():
            for member, seen in per.items():
                f[f"{phase}.{member}.status_bytes"] = seen["sizes"]
        figures[design] = f
    return figures


def plot(report: Mapping[str, Any], results: Mapping[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    push = report["config"]["push_interval"]
    for design, result in results.items():
        series = work_series(result["samples"], result["roles"], push)
        t0 = result["phases"][0].start
        fig, axes = plt.subplots(4, 1, figsize=(10, 12), sharex=True)
        for name, role in result["roles"].items():
            s = series.get(name)
            if not s or role not in ("checker", "aggregator"):
                continue
            t = np.array(s["t"]) - t0
            axes[0].plot(t, np.array(s["cpu_fraction"]) * push * 1e3, label=name, lw=0.8)
            axes[1].plot(t, np.array(s["bytes_per_interval"]) / 1e3, label=name, lw=0.8)
        axes[0].set_ylabel("CPU ms per push interval")
        axes[1].set_ylabel("kB pushed per interval")
        rows = result["rows"]
        answered = rows[~np.isnan(rows["latency"])]
        queried = result["queried"]
        az_of = [[(attribute(a["value"]) or ("?", 0))[0] for a in r["answers"]] for r in queried]
        bins = np.arange(t0 - 1, result["phases"][-1].end + 0.25, 0.25)
        for az in report_azs(report):
            counts = np.zeros(len(bins) - 1)
            for index, azs in enumerate(az_of):
                for bit, where in enumerate(azs):
                    if where != az:
                        continue
                    mine = answered[
                        (answered["name"] == index) & ((answered["mask"] >> bit) & 1 == 1)
                    ]
                    counts += np.histogram(mine["t"], bins)[0]
            axes[2].step(bins[1:] - t0, counts / 0.25, label=f"AZ {az}", lw=0.8)
        axes[2].set_ylabel("answers per s by AZ")
        lat_bins = np.arange(t0 - 1, result["phases"][-1].end + 1.0, 1.0)
        which = np.digitize(answered["t"], lat_bins)
        p50, p99, centers = [], [], []
        for k in range(1, len(lat_bins)):
            lat = answered["latency"][which == k]
            if len(lat):
                centers.append(lat_bins[k] - t0)
                p50.append(float(np.percentile(lat, 50)) * 1e3)
                p99.append(float(np.percentile(lat, 99)) * 1e3)
        axes[3].plot(centers, p50, label="p50")
        axes[3].plot(centers, p99, label="p99")
        axes[3].set_ylabel("latency ms")
        axes[3].set_xlabel("seconds from the start of the steady phase")
        for ax in axes:
            for phase in result["phases"][1:]:
                ax.axvline(phase.start - t0, color="k", ls="--", lw=0.6)
            ax.legend(fontsize=6, ncol=4, loc="upper right")
        fig.suptitle(
            f"az-failure, design {design}: {_event(report['config'])} at the first dashed line",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(out / f"az-failure-{design}.png", dpi=90)
        plt.close(fig)

    _compare(report, results, out, plt)


def _compare(report: Mapping[str, Any], results: Mapping[str, Any], out: Path, plt: Any) -> None:
    """Both designs on one time axis: bytes pushed and CPU per interval, by role."""
    if len(results) < 2:
        return
    push = report["config"]["push_interval"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    for design, result in results.items():
        series = work_series(result["samples"], result["roles"], push)
        t0 = result["phases"][0].start
        for column, role in enumerate(("checker", "aggregator")):
            names = [n for n, r in result["roles"].items() if r == role and series.get(n)]
            if not names:
                continue
            t = np.array(series[names[0]]["t"]) - t0
            size = min(len(series[n]["t"]) for n in names)
            pushed = sum(np.array(series[n]["bytes_per_interval"][:size]) for n in names)
            cpu = sum(np.array(series[n]["cpu_fraction"][:size]) for n in names) * push
            axes[0][column].plot(t[:size], pushed / 1e3, label=design, lw=0.8)
            axes[1][column].plot(t[:size], cpu * 1e3, label=design, lw=0.8)
            axes[0][column].set_title(f"{role}s, all together")
    axes[0][0].set_ylabel("kB pushed per push interval")
    axes[1][0].set_ylabel("CPU ms per push interval")
    for ax in axes.flat:
        for x in (report["config"]["phase_seconds"], 2 * report["config"]["phase_seconds"]):
            ax.axvline(x, color="k", ls="--", lw=0.6)
        ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("seconds from the start of the steady phase")
    fig.suptitle("urn vs edge-triggered: the same AZ failure (dashed: fail, restore)")
    fig.tight_layout()
    fig.savefig(out / "az-failure-compare.png", dpi=90)
    plt.close(fig)


def report_azs(report: Mapping[str, Any]) -> tuple[str, ...]:
    return AZS[: report["config"]["azs"]]
