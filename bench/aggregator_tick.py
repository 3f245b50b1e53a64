"""CPU per aggregator tick, steady vs. a third of all slots flipping every tick.

Measures exactly the service's tick decisions (`Window.prune` + `Window.newest_fresh` +
`TickCore.compute` + the autoshift step, what `urn_tick_cpu_seconds` observes) in process
CPU time, for
two aggregators side by side in one run, ticks interleaved (alternating which goes
first) so machine noise hits both alike:
  steady    every checker reports every slot healthy, every tick;
  flipping  a third of the slots (all of AZ a's checks) turn from healthy to failing and
            back on alternate ticks at every checker, so their verdicts flip every tick
            and AZ a is autoshifted away from the first failing tick on.
Both see `checkers` fresh checkers spread over three AZs, `window` tables kept each
(only the newest is read). The ratio flipping/steady is the constant-work figure (goal
1.00 within noise; p99 under 2 ms at capacity 10,000 x 10 checkers).
For scale it also times a plain numpy formulation of the same rule, without reused
buffers.

Run: python -m bench.aggregator_tick [--capacity 10000 --checkers 10 --window 3 --ticks 400]
Ends with one JSON line: {"bench": "aggregator_tick", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field

import numpy as np

from aggregator.autoshift import AutoshiftState
from aggregator.tick import Plan, TickCore
from aggregator.window import Entry, Window
from sim.testing import document_dict
from urn.config import parse_document
from urn.table import Reason, SlotArray, pack_aggregated, statuses_of

STALENESS = 5.0
PUSH = 1.0


AZS = ("a", "b", "c")


def make_plan(capacity: int) -> Plan:
    """Every slot a probed check under urn's shipped verdict rule (1 of 1, then quorum),
    a third of them in each AZ, with autoshift on."""
    checks = [
        {"slot": s, "type": "tcp", "host": "127.0.0.1", "port": 1 + s % 60000,
         "az": AZS[s * len(AZS) // capacity]}
        for s in range(capacity)
    ]  # fmt: skip
    document = document_dict(
        checks, capacity=capacity, staleness=STALENESS, autoshift={"min_checks": 1}
    )
    return Plan.from_document(parse_document(document))


@dataclass
class Aggregator:
    """One simulated aggregator: its window, its tick core and its last table."""

    name: str
    window: Window
    core: TickCore
    plan: Plan
    previous: SlotArray
    autoshift: AutoshiftState = field(default_factory=AutoshiftState)

    def push_round(self, tables: list[tuple[SlotArray, SlotArray]], now: float, k: int) -> None:
        """Every checker's table for this interval arrives (outside the measured tick)."""
        for index, (last, history) in enumerate(tables):
            sender = f"chk-{index:02d}"
            az = AZS[index % len(AZS)]
            self.window.add(Entry(sender, az, k, now, now + index * 1e-3, last, history))

    def tick(self, now: float) -> SlotArray:
        self.window.prune(now, STALENESS)
        entries = self.window.newest_fresh(now, STALENESS)
        out = np.empty(self.plan.capacity, dtype=np.uint8)
        table = self.core.compute(entries, self.plan, out).table
        self.autoshift = self.autoshift.step(table, self.plan.autoshift, now)
        return table


_POPCOUNT = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)


def plain_numpy(
    last: SlotArray, history: SlotArray, azs: np.ndarray, n: np.ndarray, mask: np.ndarray
) -> SlotArray:
    """The same rule written plainly, for scale: fresh arrays for every step."""
    has = (last != 0) & (last != Reason.LOCAL) & (last != Reason.STALE)
    unhealthy = has & (_POPCOUNT[history & mask] >= n)
    healthy = has & ~unhealthy
    votes, bad = has.sum(axis=0), unhealthy.sum(axis=0)
    per_az_bad = np.stack([unhealthy[azs == az].any(axis=0) for az in np.unique(azs)])
    per_az_good = np.stack([healthy[azs == az].any(axis=0) for az in np.unique(azs)])
    vetoed = (per_az_bad.sum(axis=0) < 2) & (per_az_good & ~per_az_bad).any(axis=0)
    down = (bad >= 0.51 * votes) & ~vetoed & (votes > 0)
    codes = np.where(unhealthy, np.minimum(last, 9), 0)
    counts = np.stack([(codes == r).sum(axis=0) for r in range(2, 10)])
    dominant = np.argmax(counts, axis=0) + 2
    status = np.where(votes > 0, 1 + down, 0)
    return pack_aggregated(status.astype(np.uint8), np.where(down, dominant, 0).astype(np.uint8))


def percentile(values: list[int], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) / 1e6


def run(capacity: int, checkers: int, window: int, ticks: int, warmup: int) -> dict[str, float]:
    plan = make_plan(capacity)
    healthy = np.full(capacity, Reason.HEALTHY, dtype=np.uint8)
    failing = healthy.copy()
    failing[: capacity // 3] = Reason.TIMEOUT
    no_failures = np.zeros(capacity, dtype=np.uint8)
    failed_last = (failing != Reason.HEALTHY).astype(np.uint8)
    aggregators = {
        name: Aggregator(
            name, Window(window), TickCore(capacity), plan, np.zeros(capacity, np.uint8)
        )
        for name in ("steady", "flipping")
    }
    samples: dict[str, list[int]] = {name: [] for name in aggregators}
    flipped: dict[str, list[int]] = {name: [] for name in aggregators}
    autoshifted: dict[str, int] = dict.fromkeys(aggregators, 0)
    now = 0.0
    for k in range(warmup + ticks):
        now += PUSH
        # Fresh table objects every round, as the receiver makes them.
        rounds = {
            "steady": [(healthy.copy(), no_failures.copy()) for _ in range(checkers)],
            "flipping": [
                ((failing, failed_last) if k % 2 else (healthy, no_failures))
                for _ in range(checkers)
            ],
        }
        rounds["flipping"] = [(a.copy(), b.copy()) for a, b in rounds["flipping"]]
        order = ("steady", "flipping") if k % 2 else ("flipping", "steady")
        for name in order:
            aggregator = aggregators[name]
            aggregator.push_round(rounds[name], now - 0.5, k + 1)
            started = time.process_time_ns()
            table = aggregator.tick(now)
            cpu = time.process_time_ns() - started
            if k >= warmup:
                samples[name].append(cpu)
                changed = statuses_of(table) != statuses_of(aggregator.previous)
                flipped[name].append(int(np.count_nonzero(changed)))
                autoshifted[name] += aggregator.autoshift.az is not None
            aggregator.previous = table

    last = np.stack([failing] * checkers)
    history = np.stack([failed_last] * checkers)
    azs = np.array([AZS[i % len(AZS)] for i in range(checkers)])[:, None]
    plain: list[int] = []
    for _ in range(max(20, ticks // 4)):
        started = time.process_time_ns()
        plain_numpy(
            last, history, azs[:, 0], plan.thresholds.failures, plan.thresholds.history_mask
        )
        plain.append(time.process_time_ns() - started)

    figures: dict[str, float] = {
        "capacity": capacity,
        "checkers": checkers,
        "window": window,
        "tables_per_tick": checkers,
        "ticks": ticks,
    }
    for name, values in samples.items():
        figures[f"{name}_p50_ms"] = round(percentile(values, 50), 4)
        figures[f"{name}_p99_ms"] = round(percentile(values, 99), 4)
        figures[f"{name}_max_ms"] = round(max(values) / 1e6, 4)
        figures[f"{name}_mean_ms"] = round(float(np.mean(values)) / 1e6, 4)
        figures[f"{name}_slots_flipped_per_tick"] = round(float(np.mean(flipped[name])), 1)
        figures[f"{name}_autoshifted_ticks"] = autoshifted[name]
    figures["ratio_p50"] = round(figures["flipping_p50_ms"] / figures["steady_p50_ms"], 3)
    figures["ratio_mean"] = round(figures["flipping_mean_ms"] / figures["steady_mean_ms"], 3)
    figures["ratio_p99"] = round(figures["flipping_p99_ms"] / figures["steady_p99_ms"], 3)
    figures["plain_numpy_p50_ms"] = round(percentile(plain, 50), 4)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.aggregator_tick", description=__doc__)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--checkers", type=int, default=10)
    parser.add_argument("--window", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    figures = run(args.capacity, args.checkers, args.window, args.ticks, args.warmup)
    print(
        f"aggregator tick, capacity {args.capacity}, {args.checkers} checkers x "
        f"{args.window} tables kept (newest read), {args.ticks} ticks each, interleaved"
        " (process CPU time)"
    )
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8} {'flips/tick':>11}")
    for name in ("steady", "flipping"):
        print(
            f"{name:10} {figures[f'{name}_p50_ms']:8.3f} {figures[f'{name}_p99_ms']:8.3f} "
            f"{figures[f'{name}_max_ms']:8.3f} {figures[f'{name}_mean_ms']:8.3f} "
            f"{figures[f'{name}_slots_flipped_per_tick']:11.1f}"
        )
    print(
        f"ratio flipping/steady: p50 {figures['ratio_p50']:.3f}  mean {figures['ratio_mean']:.3f}"
        f"  p99 {figures['ratio_p99']:.3f}"
    )
    print(f"plain numpy formulation (for scale): p50 {figures['plain_numpy_p50_ms']:.3f} ms")
    print(json.dumps({"bench": "aggregator_tick", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
