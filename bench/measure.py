"""Figures from what the az-failure run recorded: scraped samples and the query stream.

Pure. Owns: per-phase deltas (CPU per tick, CPU per interval, bytes per interval, CPU per
query), latency percentiles, detection and recovery times per affected name, the
correctness counters, and failure/steady ratios.
Detection of a name: from the failure instant to the first answered query after the
last answer that still held a dead value; recovery likewise for the recovered value.
Its resolution is the gap between two queries of one name, reported alongside.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bench.scenario import Scenario

__all__ = [
    "MemberSample",
    "Phase",
    "Sample",
    "correctness",
    "latency",
    "phase_work",
    "ratios",
    "stats",
    "work_series",
]


@dataclass(frozen=True, slots=True)
class MemberSample:
    cpu: float  # process CPU seconds (/proc)
    tick_sum: float = math.nan
    tick_count: float = math.nan
    push_bytes: float = 0.0
    queries: float = 0.0


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # CLOCK_MONOTONIC
    members: Mapping[str, MemberSample]


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start: float
    end: float


@dataclass(slots=True)
class _Window:
    first: Sample
    last: Sample
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        self.seconds = self.last.t - self.first.t


def _window(samples: Sequence[Sample], phase: Phase) -> _Window | None:
    inside = [s for s in samples if phase.start <= s.t <= phase.end]
    if len(inside) < 2:
        return None
    return _Window(inside[0], inside[-1])


def phase_work(
    samples: Sequence[Sample], phase: Phase, roles: Mapping[str, str], push: float
) -> dict[str, dict[str, float]]:
    """Per member: tick CPU, CPU and bytes per push interval, CPU per query (resolvers)."""
    window = _window(samples, phase)
    out: dict[str, dict[str, float]] = {}
    if window is None:
        return out
    intervals = window.seconds / push
    for name, role in roles.items():
        a = window.first.members.get(name)
        b = window.last.members.get(name)
        if a is None or b is None:
            continue
        cpu = b.cpu - a.cpu
        ticks = b.tick_count - a.tick_count
        figures = {
            "cpu_fraction": cpu / window.seconds,
            "cpu_per_interval": cpu / intervals,
            "tick_cpu": (b.tick_sum - a.tick_sum) / ticks if ticks > 0 else math.nan,
            "bytes_per_interval": (b.push_bytes - a.push_bytes) / intervals,
        }
        if role == "resolver":
            queries = b.queries - a.queries
            figures["queries_per_s"] = queries / window.seconds
            figures["cpu_per_query"] = cpu / queries if queries > 0 else math.nan
        out[name] = figures
    return out


def work_series(
    samples: Sequence[Sample], roles: Mapping[str, str], push: float
) -> dict[str, dict[str, list[float]]]:
    """Per member over time: tick CPU, bytes per interval, CPU fraction (for plots)."""
    series: dict[str, dict[str, list[float]]] = {
        name: {"t": [], "tick_cpu": [], "bytes_per_interval": [], "cpu_fraction": []}
        for name in roles
    }
    for a, b in itertools.pairwise(samples):
        dt = b.t - a.t
        if dt <= 0:
            continue
        for name in roles:
            ma, mb = a.members.get(name), b.members.get(name)
            if ma is None or mb is None:
                continue
            s = series[name]
            ticks = mb.tick_count - ma.tick_count
            s["t"].append(b.t)
            s["tick_cpu"].append((mb.tick_sum - ma.tick_sum) / ticks if ticks > 0 else math.nan)
            s["bytes_per_interval"].append((mb.push_bytes - ma.push_bytes) / (dt / push))
            s["cpu_fraction"].append((mb.cpu - ma.cpu) / dt)
    return series


def latency(rows: np.ndarray[Any, Any], phase: Phase) -> dict[str, float]:
    """Latency percentiles (ms) and counts of the queries sent within the phase."""
    inside = rows[(rows["t"] >= phase.start) & (rows["t"] < phase.end)]
    answered = inside[~np.isnan(inside["latency"])]
    lat = answered["latency"].astype(np.float64) * 1000.0
    pct = (lambda q: float(np.percentile(lat, q))) if len(lat) else (lambda q: math.nan)
    seconds = max(phase.end - phase.start, 1e-9)
    return {
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "p999_ms": pct(99.9),
        "max_ms": float(lat.max()) if len(lat) else math.nan,
        "sent": float(len(inside)),
        "answered": float(len(answered)),
        "lost": float(len(inside) - len(answered)),
        "qps": len(answered) / seconds,
    }


def stats(values: Sequence[float]) -> dict[str, float]:
    """min / median / max / count of finite values."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"min": math.nan, "median": math.nan, "max": math.nan, "count": 0.0}
    return {
        "min": float(min(finite)),
        "median": float(np.median(finite)),
        "max": float(max(finite)),
        "count": float(len(finite)),
    }


def correctness(
    rows: np.ndarray[Any, Any],
    scenario: Scenario,
    *,
    t_fail: float,
    t_recover: float,
    t_start: float,
    bound: float,
) -> dict[str, Any]:
    """Detection and recovery per affected name, and the correctness counters."""
    answered = rows[(~np.isnan(rows["latency"])) & (rows["t"] >= t_start)]
    detection: list[float] = []
    recovery: list[float] = []
    undetected: list[str] = []
    unrecovered: list[str] = []
    dead_after_bound = 0
    healthy_dropped = 0
    errors = 0
    unexpected = 0
    gaps: list[float] = []
    for index, tracked in enumerate(scenario.tracked):
        mine = answered[answered["name"] == index]
        if len(mine) == 0:
            continue
        t = mine["t"]
        mask = mine["mask"].astype(np.int64)
        if len(t) > 1:
            gaps.append(float(np.median(np.diff(t))))
        dead = scenario.dead_bits(tracked)
        live = sum(1 << i for i in range(len(tracked.values))) & ~dead
        errors += int(np.count_nonzero(mine["rcode"] != 0))
        unexpected += int(np.count_nonzero(mask & (1 << 15)))
        failing = (t >= t_fail) & (t < t_recover)
        after_bound = (t >= t_fail + bound) & (t < t_recover)
        dead_after_bound += int(np.count_nonzero((mask & dead != 0) & after_bound))
        if dead:
            det = _settle_time(t, (mask & dead) == 0, failing, t_fail)
            if det is None:
                undetected.append(tracked.name)
            else:
                detection.append(det)
        # Values that must be answered: every live one (multivalue, simple), the
        # primary while it is healthy (failover); weighted answers one, so only an empty
        # answer counts as a drop.
        alive_dead_az = (t < t_fail) | (t >= t_recover + bound)
        empty = mask == 0
        if tracked.policy == "multivalue":
            missing_live = (mask & live) != live
            missing_recovered = ((mask & dead) != dead) & alive_dead_az
            healthy_dropped += int(np.count_nonzero(missing_live | missing_recovered | empty))
            if dead:
                rec = _settle_time(t, (mask & dead) == dead, t >= t_recover, t_recover)
                if rec is None:
                    unrecovered.append(tracked.name)
                else:
                    recovery.append(rec)
        elif tracked.policy == "failover":
            primary = 1
            wrong = ((mask & primary) == 0) & alive_dead_az
            healthy_dropped += int(np.count_nonzero(wrong | empty))
            rec = _settle_time(t, (mask & primary) != 0, t >= t_recover, t_recover)
            if rec is None:
                unrecovered.append(tracked.name)
            else:
                recovery.append(rec)
        else:
            healthy_dropped += int(np.count_nonzero(empty))
    return {
        "detection_s": stats(detection),
        "recovery_s": stats(recovery),
        "undetected": undetected,
        "unrecovered": unrecovered,
        "dead_answers_after_bound": dead_after_bound,
        "healthy_answers_dropped": healthy_dropped,
        "error_rcodes": errors,
        "unexpected_answers": unexpected,
        "detection_bound_s": bound,
        "query_gap_per_name_s": float(np.median(gaps)) if gaps else math.nan,
        "affected_names": sum(1 for tr in scenario.tracked if scenario.dead_bits(tr)),
    }


def _settle_time(
    t: np.ndarray[Any, Any], good: np.ndarray[Any, Any], window: np.ndarray[Any, Any], since: float
) -> float | None:
    """Seconds from `since` to the first good answer after the last bad one in `window`."""
    t_in = t[window]
    good_in = good[window]
    if len(t_in) == 0 or not good_in[-1]:
        return None
    bad = np.flatnonzero(~good_in)
    first_good = bad[-1] + 1 if len(bad) else 0
    return float(t_in[first_good] - since)


def ratios(steady: Mapping[str, float], other: Mapping[str, float]) -> dict[str, float]:
    """other / steady for every figure both have (NaN where steady is 0 or missing)."""
    out: dict[str, float] = {}
    for key, value in other.items():
        base = steady.get(key)
        if base is None or not math.isfinite(base) or base == 0 or not math.isfinite(value):
            out[key] = 1.0 if base == 0 and value == 0 else math.nan
        else:
            out[key] = value / base
    return out
