"""How many probes a checker may have in flight: its launch admission limit.

Owns: sizing the concurrency limit from the work the config asks for and the
descriptors the process has. Every probe in flight holds a socket, so the soft fd limit
less a reserve (the HTTP listener, pushes, the config fetch) bounds it; the work asks
for the sum over checks of each probe's longest life (timeout plus sweep slack) per
probe interval.
Never: reads the fd limit, a clock or the config source itself (all are arguments).
Cost: O(checks), once per config pass.
"""

# urn: pure

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["HEADROOM_FLOOR", "Admission", "admission"]

# Headroom: hashed phases are uniform, not evenly spaced, so starts clump; and a
# CPU-starved loop sweeps late, so probes outlive their timeout a little. Both should
# show as lateness of our own, not as a queue of probes waiting for a slot.
HEADROOM_FACTOR = 2
HEADROOM_FLOOR = 64


@dataclass(frozen=True, slots=True)
class Admission:
    """The in-flight probes the config needs on average, and the limit the loop keeps."""

    needed: int
    limit: int

    @property
    def short(self) -> bool:
        """Whether the descriptors (or max_concurrency) allow fewer than the work needs."""
        return self.needed > self.limit


def admission(
    lifetimes: Iterable[float],
    interval: float,
    fd_soft: int,
    fd_reserve: int,
    max_concurrency: int | None,
) -> Admission:
    """The admission for probes living up to `lifetimes` seconds each, every `interval`."""
    needed = math.ceil(sum(lifetimes) / interval)
    allowed = max(1, fd_soft - fd_reserve)
    if max_concurrency is not None:
        allowed = min(allowed, max_concurrency)
    return Admission(needed, min(allowed, HEADROOM_FACTOR * needed + HEADROOM_FLOOR))
