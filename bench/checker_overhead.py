"""Checker overhead: CPU per probe of urn's checker next to the edge checker, same engine.

Both designs drive `checker.probers.ProbeEngine` against the same healthy target farm, so
CPU per probe beyond the engine's is each design's own scheduling and bookkeeping. The
edge checker (`bench/edge/checker.py`: 20 ms buckets, verdicts into an outbox) is the
floor urn must reach. Each run is a fresh process pinned to the checker CPU, the farm
pinned to the other; designs alternate within each round so they see similar noise.

With `--hog`, a busy-loop process pinned to the checker CPU competes for it during each
measured run (bounded in time, killed by the bench): the checker gets about half a core,
so it may fall behind. Every target is healthy and answers at once, so any TIMEOUT verdict
is the checker confusing its own overload with target failure; the bench reports the
share of such verdicts and the probes each design skipped or started late.

    python -m bench.checker_overhead                 # 5,000 probes/s, 3 rounds, no hog
    python -m bench.checker_overhead --hog --rounds 2
    python -m bench.checker_overhead --quick

Ends with one JSON line: {"bench": "checker_overhead", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.checker_throughput import (
    PUSH_KEY,
    _pin,
    _schedstat,
    _start_farm,
    _stolen,
    _stop_farm,
    checker_config,
)
from urn.table import Reason

BENCH = "checker_overhead"
DESIGNS = ("urn", "edge")
HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


async def _urn(path: str, spec: dict[str, Any]) -> dict[str, Any]:

    from checker.app import TUNING, build_service
    from checker.settings import CheckerSettings
    from sim.testing import MemoryTransport
    from urn.runtime import tune_process

    fd_limit = tune_process(TUNING)  # as `urn checker` tunes its process
    service = await build_service(
        CheckerSettings(id="chk-bench", az="a", config=path, fd_limit=fd_limit),
        environ={"URN_PUSH_KEY": PUSH_KEY},
        transport=MemoryTransport(),
    )
    registry = service.metrics.registry

    def snapshot() -> dict[str, float]:
        counts = {
            r.label: (registry.get_sample_value("urn_probes_total", {"result": r.label}) or 0)
            + service._counts[r]
            for r in Reason
        }
        skipped = registry.get_sample_value("urn_probes_skipped_total") or 0
        counts["skipped"] = skipped + service._skipped
        counts["started"] = service.probes_started
        return counts

    await service.start()
    try:
        return await _measure(spec, snapshot)
    finally:
        await service.stop()


async def _edge(path: str, spec: dict[str, Any]) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from bench.edge.checker import EdgeChecker
    from urn.source import ConfigLoader

    checker = EdgeChecker("chk-bench", "a", CollectorRegistry())
    loader = ConfigLoader(path, checker.clock, checker.metrics, {"URN_PUSH_KEY": PUSH_KEY})
    await loader.load_first(checker.apply)
    started = 0
    engine_start = checker.engine.start

    def counting_start(target: Any, now: float) -> None:
        nonlocal started
        started += 1
        engine_start(target, now)

    checker.engine.start = counting_start  # type: ignore[method-assign]

    def snapshot() -> dict[str, float]:
        counts: dict[str, float] = {r.label: checker._counts[r] for r in Reason}
        counts["skipped"] = 0  # the edge loop never skips: it starts a stalled bucket late
        counts["started"] = started
        return counts

    task = asyncio.create_task(checker.probe_loop())
    try:
        return await _measure(spec, snapshot)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        checker.engine.abort_all()


def _start_hog(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    """A busy loop on the checker's CPU, ending by itself a little after the window."""
    code = HOG.format(seconds=spec["duration"] + 5)
    hog = subprocess.Popen([sys.executable, "-c", code])
    if spec.get("cpu") is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(hog.pid, {spec["cpu"]})
    return hog


async def _measure(spec: dict[str, Any], snapshot: Any) -> dict[str, Any]:
    await asyncio.sleep(spec["warmup"])
    hog = _start_hog(spec) if spec["hog"] else None
    try:
        before = snapshot()
        cpu0, wall0, sched0 = time.process_time(), time.monotonic(), _schedstat()
        stolen0 = _stolen(spec.get("cpu"))
        await asyncio.sleep(spec["duration"])
        cpu1, wall1, sched1 = time.process_time(), time.monotonic(), _schedstat()
        stolen1 = _stolen(spec.get("cpu"))
        after = snapshot()
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    delta = {key: after[key] - before[key] for key in after}
    done = sum(delta[r.label] for r in Reason)
    wall = wall1 - wall0
    return {
        "wall_s": wall,
        "cpu_s": cpu1 - cpu0,
        "runq_wait_share": (sched1[1] - sched0[1]) / wall,
        "steal_share": (stolen1 - stolen0) / wall,
        "started": delta["started"],
        "completed": done,
        "skipped": delta["skipped"],
        "reasons": {r.label: delta[r.label] for r in Reason if delta[r.label]},
    }


def child_main(spec: dict[str, Any]) -> None:
    import uvloop

    _pin(spec.get("cpu"))
    path, _ = checker_config(spec)
    run = _urn if spec["design"] == "urn" else _edge
    try:
        result = uvloop.run(run(path, spec))
    finally:
        Path(path).unlink(missing_ok=True)
    print(json.dumps(result), flush=True)


def one(args: argparse.Namespace, design: str, targets: list[tuple[int, str]]) -> dict[str, Any]:
    spec = {
        "design": design,
        "targets": targets,
        "checks": args.checks,
        "interval": args.checks / args.rate,
        "timeout": args.timeout,
        "warmup": args.warmup,
        "duration": args.duration,
        "cpu": args.checker_cpu,
        "hog": args.hog,
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.checker_overhead", "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=args.warmup + args.duration + 120,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{design} run failed ({out.returncode}): {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    done = max(result["completed"], 1)
    result["cpu_us_per_probe"] = result["cpu_s"] / done * 1e6
    result["timeout_share"] = result["reasons"].get(Reason.TIMEOUT.label, 0) / done
    result["completed_per_s"] = result["completed"] / result["wall_s"]
    print(
        f"  {design:5} done {result['completed_per_s']:7.0f}/s"
        f"  cpu {result['cpu_s'] / result['wall_s'] * 100:5.1f}%"
        f"  {result['cpu_us_per_probe']:6.1f} us/probe"
        f"  timeouts {result['timeout_share'] * 100:5.2f}%  skipped {result['skipped']:.0f}"
        f"  starved {result['runq_wait_share'] * 100:3.0f}%"
        f"  stolen {result['steal_share'] * 100:3.0f}%  {result['reasons']}",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=5_000.0, help="offered probes per second")
    parser.add_argument("--timeout", type=float, default=0.25)
    parser.add_argument("--targets", type=int, default=200, help="target ports in the farm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--hog", action="store_true", help="a busy loop shares the checker CPU")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--checker-cpu", type=int, default=0)
    parser.add_argument("--farm-cpu", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0
    if args.quick:
        args.rounds, args.warmup, args.duration = 1, 1.0, 3.0
    print(
        f"checker overhead: {args.checks} checks at {args.rate:.0f} probes/s, timeout"
        f" {args.timeout}s, checker on CPU {args.checker_cpu}, farm on CPU {args.farm_cpu}"
        + (", a CPU hog shares the checker CPU" if args.hog else "")
    )
    farm, targets = _start_farm("healthy", args.targets, 0.0, args.farm_cpu)
    runs: dict[str, list[dict[str, Any]]] = {d: [] for d in DESIGNS}
    try:
        for round_ in range(args.rounds):
            order = DESIGNS if round_ % 2 == 0 else DESIGNS[::-1]
            print(f"round {round_ + 1} of {args.rounds}")
            for design in order:
                runs[design].append(one(args, design, targets))
    finally:
        _stop_farm(farm)
    figures: dict[str, Any] = {
        "checks": args.checks,
        "offered_per_s": args.rate,
        "timeout_s": args.timeout,
        "hog": args.hog,
        "rounds": args.rounds,
    }
    for design in DESIGNS:
        rs = runs[design]
        figures[f"{design}_cpu_us_per_probe"] = round(
            float(np.median([r["cpu_us_per_probe"] for r in rs])), 1
        )
        figures[f"{design}_done_per_s"] = round(
            float(np.median([r["completed_per_s"] for r in rs]))
        )
        figures[f"{design}_timeout_share"] = round(
            float(np.median([r["timeout_share"] for r in rs])), 4
        )
        figures[f"{design}_timeouts"] = int(
            sum(r["reasons"].get(Reason.TIMEOUT.label, 0) for r in rs)
        )
        figures[f"{design}_skipped"] = int(sum(r["skipped"] for r in rs))
        figures[f"{design}_steal_share"] = round(
            float(np.median([r["steal_share"] for r in rs])), 3
        )
        figures[f"{design}_runq_wait_share"] = round(
            float(np.median([r["runq_wait_share"] for r in rs])), 2
        )
    # Per round, urn over the edge run next to it (similar noise); the median is given.
    figures["cpu_per_probe_urn_over_edge"] = round(
        float(
            np.median(
                [
                    u["cpu_us_per_probe"] / e["cpu_us_per_probe"]
                    for u, e in zip(runs["urn"], runs["edge"], strict=True)
                ]
            )
        ),
        3,
    )
    figures["machine_cpus"] = os.cpu_count()
    print(
        f"urn {figures['urn_cpu_us_per_probe']} us/probe vs edge"
        f" {figures['edge_cpu_us_per_probe']} us/probe:"
        f" ratio {figures['cpu_per_probe_urn_over_edge']};"
        f" healthy-target timeouts urn {figures['urn_timeouts']}, edge {figures['edge_timeouts']}"
    )
    print(json.dumps({"bench": BENCH, "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
