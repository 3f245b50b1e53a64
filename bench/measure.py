"""Figures from what the az-failure run recorded: scraped samples and the query stream.

Pure. Owns: per-phase deltas (CPU per tick, CPU per interval, bytes per interval and per push,
CPU per query), their peaks over sample windows, latency percentiles, and failure/steady
ratios. Detection, recovery and the correctness counters are `sim.verdict`'s.
"""

# urn: pure

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "MemberSample",
    "Phase",
    "Sample",
    "latency",
    "phase_work",
    "ratios",
    "work_series",
]


@dataclass(frozen=True, slots=True)
class MemberSample:
    cpu: float  # process CPU seconds (/proc)
    tick_sum: float = math.nan
    tick_count: float = math.nan
    push_bytes: float = 0.0
    pushes_ok: float = 0.0
    probes: float = 0.0
    probes_healthy: float = 0.0
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
    """Per member: tick CPU, CPU and bytes per push interval, CPU per query (resolvers).

    Peaks are the largest value over consecutive sample pairs within the phase: mean tick
    CPU, CPU fraction, and bytes per push (bytes / pushes sent, exact per window).
    """
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
        probes = b.probes - a.probes
        if probes > 0:
            figures["probes_per_s"] = probes / window.seconds
            figures["probe_failure_fraction"] = 1 - (b.probes_healthy - a.probes_healthy) / probes
            figures["cpu_per_probe"] = cpu / probes
        pushes = b.pushes_ok - a.pushes_ok
        figures["bytes_per_push"] = (b.push_bytes - a.push_bytes) / pushes if pushes else math.nan
        figures.update(_peaks(samples, phase, name))
        if role == "resolver":
            queries = b.queries - a.queries
            figures["queries_per_s"] = queries / window.seconds
            figures["cpu_per_query"] = cpu / queries if queries > 0 else math.nan
        out[name] = figures
    return out


def _peaks(samples: Sequence[Sample], phase: Phase, name: str) -> dict[str, float]:
    inside = [s for s in samples if phase.start <= s.t <= phase.end and name in s.members]
    tick: list[float] = []
    cpu: list[float] = []
    per_push: list[float] = []
    for a, b in itertools.pairwise(inside):
        ma, mb = a.members[name], b.members[name]
        ticks = mb.tick_count - ma.tick_count
        if ticks > 0:
            tick.append((mb.tick_sum - ma.tick_sum) / ticks)
        if b.t > a.t:
            cpu.append((mb.cpu - ma.cpu) / (b.t - a.t))
        pushes = mb.pushes_ok - ma.pushes_ok
        if pushes > 0:
            per_push.append((mb.push_bytes - ma.push_bytes) / pushes)
    return {
        "peak_tick_cpu": max(tick, default=math.nan),
        "peak_cpu_fraction": max(cpu, default=math.nan),
        "peak_bytes_per_push": max(per_push, default=math.nan),
    }


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

    def pct(q: float) -> float:
        return float(np.percentile(lat, q)) if len(lat) else math.nan

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
