"""Soak: a live fleet under query load while processes are killed at random.

    python -m bench.soak [--minutes 10] [--seed N] [--kill-every S] [--flap-every S]

A target farm, 3 checkers (AZs a, b, c), 2 aggregators and 2 resolvers, every one a
real process. Both resolvers are queried over UDP DNS the whole time. Every
`--kill-every` seconds on average one random member gets kill -9 and is restarted at
once (never two of a role down together). With `--flap-every`, AZ b's targets are
also switched dead and back. Reported: queries, answers served wrongly (outside the
detection bound after an AZ change, and outside the fail-open window of a resolver
restarted without a table), queries lost (mostly to a resolver being down), kills per
role, and each process's resident memory from warm-up to the end (growth per member
that lived through the whole measured run; `--spare` keeps one of each role unkilled).
Goal: zero wrong, memory flat.
Ends with one JSON line: {"bench": "soak", "figures": {...}}.
Bounded: stops after `--minutes`, and every process is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.chaos import LiveFleet, fast_plan, live_fleet, right_answer
from sim.observe import DnsWatcher

__all__ = ["main", "soak"]

ROLES = ("checker", "aggregator", "resolver")


@dataclass
class Timeline:
    """What was done when (monotonic seconds), to judge answers against."""

    dead: list[tuple[float, frozenset[str]]] = field(default_factory=lambda: [(0.0, frozenset())])
    restarts: list[tuple[float, float, str]] = field(default_factory=list)  # killed, up, who

    def dead_at(self, at: float) -> tuple[frozenset[str], float]:
        """The dead AZs at `at` and when that last changed."""
        current: frozenset[str] = frozenset()
        since = 0.0
        for when, dead in self.dead:
            if when > at:
                break
            current, since = dead, when
        return current, since

    def restarting(self, member: str, at: float, grace: float) -> bool:
        """Between `member`'s kill and `grace` after it answered again."""
        return any(m == member and killed <= at <= up + grace for killed, up, m in self.restarts)


def _wrong(
    live: LiveFleet,
    watcher: DnsWatcher,
    resolver: str,
    timeline: Timeline,
    since: float,
    grace: float,
) -> tuple[int, int, list[str]]:
    """(answers judged, answers wrong, examples) for one resolver's query stream."""
    judged = wrong = 0
    examples: list[str] = []
    for name, seen in watcher.observations(since):
        dead, changed = timeline.dead_at(seen.at)
        if seen.at - changed < grace:
            continue  # inside the detection bound after an AZ change: either is fine
        if dead and timeline.restarting(resolver, seen.at, grace):
            continue  # restarted without a table: fail open is the contract until one comes
        judged += 1
        if not right_answer(live.record(name), seen.answers, seen.rcode, dead):
            wrong += 1
            if len(examples) < 5:
                examples.append(
                    f"t={seen.at - since:.2f}s {resolver} {name} {sorted(seen.answers)}"
                    f" dead={sorted(dead)}"
                )
    return judged, wrong, examples


async def soak(
    run_dir: Path,
    *,
    minutes: float,
    seed: int,
    kill_every: float,
    flap_every: float,
    per_az: int,
    rate: float,
    spare: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    rng = random.Random(seed)
    plan = fast_plan(azs=("a", "b", "c"), aggregators=2, resolvers=2, capacity=1024)
    grace = plan.probe_interval + plan.timeout + 2 * plan.push_interval + plan.probe_interval
    duration = minutes * 60.0
    warm_up = min(20.0, duration / 5)
    timeline = Timeline()
    kills: dict[str, int] = dict.fromkeys(ROLES, 0)
    rss: dict[str, list[tuple[float, int]]] = {}
    async with live_fleet(run_dir, plan, per_az=per_az) as live:
        for resolver in (0, 1):
            await live.wait_answers(dead=(), resolver=resolver, timeout=30)
        watchers = [DnsWatcher(live.dns_address(r), live.names, rate=rate / 2) for r in (0, 1)]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in watchers]
        started = time.monotonic()
        timeline.dead = [(started, frozenset())]
        members = [n for n in live.fleet.members if n.startswith(ROLES) and n not in spare]
        next_kill = started + warm_up + rng.expovariate(1 / kill_every)
        next_flap = started + warm_up + flap_every if flap_every else float("inf")
        next_sample = started
        restarted_at: dict[str, float] = {}
        try:
            while (now := time.monotonic()) < started + duration:
                if now >= next_sample:
                    for member, value in live.rss().items():
                        rss.setdefault(member, []).append((now, value))
                    next_sample = now + 5.0
                if now >= next_kill:
                    victim = rng.choice(members)
                    killed = time.monotonic()
                    await live.kill9(victim)
                    await live.restart(victim)
                    restarted_at[victim] = time.monotonic()
                    timeline.restarts.append((killed, restarted_at[victim], victim))
                    kills[victim.split("-")[0]] += 1
                    next_kill = time.monotonic() + rng.expovariate(1 / kill_every)
                if now >= next_flap:
                    dead = timeline.dead[-1][1]
                    await live.set_mode("b", "healthy" if dead else "refuse")
                    timeline.dead.append(
                        (time.monotonic(), frozenset() if dead else frozenset("b"))
                    )
                    next_flap = time.monotonic() + flap_every
                await asyncio.sleep(0.2)  # the soak's own pace; every fault is on a deadline
            for member, value in live.rss().items():
                rss.setdefault(member, []).append((time.monotonic(), value))
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        measured_from = started + warm_up
        judged = wrong = 0
        examples: list[str] = []
        for index, watcher in enumerate(watchers):
            j, w, e = _wrong(live, watcher, f"resolver-{index + 1}", timeline, started, grace)
            judged, wrong, examples = judged + j, wrong + w, examples + e
        memory: dict[str, dict[str, float]] = {}
        for member, samples in sorted(rss.items()):
            # From the first sample after warm-up (or after its last restart) to the end.
            since = max(measured_from, restarted_at.get(member, 0.0) + 5.0)
            window = [value for at, value in samples if at >= since]
            if len(window) >= 2:
                memory[member] = {
                    "start_mib": round(window[0] / 2**20, 2),
                    "end_mib": round(window[-1] / 2**20, 2),
                    "growth_mib": round((window[-1] - window[0]) / 2**20, 2),
                    "restarted": member in restarted_at,
                }
    survivors = [m for m in memory.values() if not m["restarted"]]
    events = sorted(
        [(at - started, f"killed {member}") for at, _, member in timeline.restarts]
        + [(at - started, f"dead={sorted(dead)}") for at, dead in timeline.dead[1:]]
    )
    return {
        "minutes": minutes,
        "seed": seed,
        "queries": sum(len(h) for w in watchers for h in w.history.values()),
        "judged": judged,
        "wrong": wrong,
        "wrong_examples": examples,
        "lost": sum(w.lost for w in watchers),
        "kills": kills,
        "flaps": len(timeline.dead) - 1,
        "memory": memory,
        "max_growth_mib_survivors": max((m["growth_mib"] for m in survivors), default=0.0),
        "events": [f"t={at:.2f}s {what}" for at, what in events],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-every", type=float, default=15.0, help="mean seconds between kills")
    parser.add_argument(
        "--flap-every", type=float, default=0.0, help="seconds between AZ b flips (0: none)"
    )
    parser.add_argument("--per-az", type=int, default=16, help="targets per AZ")
    parser.add_argument("--rate", type=float, default=200.0, help="queries per second in all")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    parser.add_argument(
        "--spare",
        default="checker-b1,aggregator-1,resolver-2",
        help="members never killed, whose memory spans the whole run (comma-separated)",
    )
    args = parser.parse_args(argv)
    run_dir = Path(tempfile.mkdtemp(prefix="urn-soak-"))
    try:
        figures = asyncio.run(
            soak(
                run_dir,
                minutes=args.minutes,
                seed=args.seed,
                kill_every=args.kill_every,
                flap_every=args.flap_every,
                per_az=args.per_az,
                rate=args.rate,
                spare=frozenset(filter(None, args.spare.split(","))),
            )
        )
    finally:
        if args.keep:
            print(f"logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(f"queries {figures['queries']}, judged {figures['judged']}, wrong {figures['wrong']}")
    print(f"lost {figures['lost']} (a resolver down or restarting), kills {figures['kills']}")
    for member, memory in figures["memory"].items():
        flag = " (restarted)" if memory["restarted"] else ""
        print(
            f"  {member:14} {memory['start_mib']:8.1f} -> {memory['end_mib']:8.1f} MiB"
            f"  ({memory['growth_mib']:+.2f}){flag}"
        )
    for example in figures["wrong_examples"]:
        print("  wrong:", example)
    if figures["wrong"]:
        print("  events:", "; ".join(figures["events"]))
    print(json.dumps({"bench": "soak", "figures": figures}))
    return 0 if figures["wrong"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
