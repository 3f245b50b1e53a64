"""How long a mass AZ failure takes to reach the answers, from the intervals alone.

Owns: the expected detection time of one name under urn's verdict rule, so a benchmark
can print what the intervals promise beside what it measured. With k checkers whose
probes of a check are spread evenly (interval/k apart, docs/verdicts.md), a name turns
away once q = ceil(unhealthy_at x k) checkers each hold `failures` failed probes:
  the q-th checker's first probe after the failure starts (offset + (q-1)/k) x probe
  after it (offset uniform in [0, probe/k)), its N-th one (N-1) x probe later;
  it fails at once (refused) or after the timeout (blackholed);
  the checker's table goes out at the next push instant (the fleet's wall-clock grid);
  the aggregator ticks `aggregate_lag` later and the resolver has the table at once.
Never: measures anything; the failure's phase in the push grid (unless given) and the
checkers' offset are drawn by a seeded generator, so the same arguments always give the
same figures.
Cost: `samples` draws of O(1) arithmetic.
"""

# urn: pure

from __future__ import annotations

import math
import random
from typing import Literal

__all__ = ["expected_detection"]


def expected_detection(
    *,
    probe: float,
    push: float,
    timeout: float,
    lag: float,
    checkers: int,
    unhealthy_at: float,
    failures: int,
    mode: Literal["refuse", "blackhole", "slow"],
    phase: float | None = None,
    samples: int = 20_000,
    seed: int = 7,
) -> dict[str, float]:
    """Median and worst case (seconds) of failure-to-answer time over names.

    Over every failure phase in the push grid, or at `phase` (0 = a push instant) alone.
    """
    needed = max(1, math.ceil(unhealthy_at * checkers - 1e-9))
    delay = 0.0 if mode == "refuse" else timeout
    rng = random.Random(seed)
    times = []
    for _ in range(samples):
        failed_at = (rng.random() if phase is None else phase) * push
        offset = rng.random() * probe / checkers
        reported = failed_at + offset + (needed - 1) * probe / checkers
        reported += (failures - 1) * probe + delay
        pushed = math.ceil(reported / push - 1e-12) * push
        times.append(pushed + lag - failed_at)
    times.sort()
    worst = needed * probe / checkers + (failures - 1) * probe + delay + push + lag
    return {
        "median": round(times[len(times) // 2], 3),
        "max": round(worst if phase is None else times[-1], 3),
        "checkers_needed": needed,
    }
