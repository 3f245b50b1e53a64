"""Autoshift: an AZ most of whose checks fail at once is shifted away whole.

When one AZ's targets fail in bulk, the ones still passing are likely impaired too (a
gray failure: a bad network path, a sick hypervisor fleet), so the whole AZ leaves.
Owns: `AutoshiftPlan` (per config: each probed check's AZ, as an index) and
`AutoshiftState`, the hysteresis carried from tick to tick:
  * starts on the first tick where, for one AZ, at least `min_checks` of its checks have
    a known status, at least `unhealthy_share` of those are unhealthy, and every other
    AZ with known checks is below `clear_share` (two AZs failing together is more likely
    urn's own fault or a region's, and shifting would help neither);
  * one AZ at a time, as Route 53 ARC autoshift;
  * ends once the shifted AZ's share has stayed below `clear_share` for `clear_after`
    seconds; a tick where it has too few known checks to judge neither ends nor clears it
    (static stability: missing data never moves traffic);
  * the document's own shifts take precedence at the resolver (resolver.levers), which
    also never lets a shift empty a name.
The statuses it reads are the quorum's, cross-AZ veto included, so one sick checker or
one AZ's checkers alone cannot start it.
Never: reads a clock (`now`, monotonic seconds, is an argument) or touches sockets.
Cost: O(capacity) array work per tick, the same whatever the table holds.
"""

# urn: pure

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from urn.table import Status, statuses_of

if TYPE_CHECKING:
    from urn.config import Autoshift, Document
    from urn.table import SlotArray

__all__ = ["AutoshiftPlan", "AutoshiftState", "AzShares"]

# numpy scalars: comparing an array with an IntEnum member costs six times as much
_UNKNOWN = np.uint8(Status.UNKNOWN)
_UNHEALTHY = np.uint8(Status.UNHEALTHY)


@dataclass(frozen=True, slots=True, eq=False)
class AutoshiftPlan:
    """What a tick needs to judge autoshift under one config."""

    rule: Autoshift
    azs: tuple[str, ...]  # sorted AZs of the probed checks
    slots: npt.NDArray[np.intp]  # probed checks that name an AZ, grouped by AZ in that order
    starts: npt.NDArray[np.intp]  # where each AZ's group begins in `slots`

    @classmethod
    def from_document(cls, document: Document) -> AutoshiftPlan:
        by_az: dict[str, list[int]] = {}
        for check in document.checks:
            if check.is_probed and check.az is not None:
                by_az.setdefault(check.az, []).append(check.slot)
        azs = tuple(sorted(by_az))
        sizes = [len(by_az[az]) for az in azs]
        return cls(
            rule=document.autoshift,
            azs=azs,
            slots=np.asarray([slot for az in azs for slot in by_az[az]], dtype=np.intp),
            starts=np.cumsum([0, *sizes[:-1]], dtype=np.intp),
        )


@dataclass(frozen=True, slots=True)
class AzShares:
    """One tick's count, per AZ of the plan, of checks known and of those unhealthy."""

    azs: tuple[str, ...]
    known: tuple[int, ...]
    unhealthy: tuple[int, ...]

    @classmethod
    def of(cls, table: SlotArray, plan: AutoshiftPlan) -> AzShares:
        if not plan.azs:
            return cls((), (), ())
        statuses = statuses_of(table[plan.slots])
        known = statuses != _UNKNOWN
        down = statuses == _UNHEALTHY
        # One count per AZ group: a loop over AZs, a few, never over slots; a sixth of what
        # bincount or reduceat over the slots costs.
        bounds = [*plan.starts.tolist(), len(plan.slots)]
        groups = [slice(start, end) for start, end in itertools.pairwise(bounds)]
        return cls(
            plan.azs,
            tuple(int(np.count_nonzero(known[group])) for group in groups),
            tuple(int(np.count_nonzero(down[group])) for group in groups),
        )

    def share(self, az: str) -> float:
        """The unhealthy share of `az`'s known checks (0 when none is known)."""
        i = self.azs.index(az)
        return self.unhealthy[i] / self.known[i] if self.known[i] else 0.0

    @property
    def shares(self) -> dict[str, float]:
        return {az: self.share(az) for az in self.azs}


@dataclass(frozen=True, slots=True)
class AutoshiftState:
    """The autoshift after a tick: the AZ shifted (None: none) and why, for the next tick."""

    az: str | None = None
    since: float | None = None  # when it started (monotonic)
    clear_since: float | None = None  # when its share last fell below clear_share
    shares: AzShares | None = None  # the tick's counts it was judged on
    reason: str = "off"

    def step(self, table: SlotArray, plan: AutoshiftPlan, now: float) -> AutoshiftState:
        """The state after a tick at `now` that computed `table`."""
        rule = plan.rule
        if not rule.enabled:
            return AutoshiftState(reason="off")
        counts = AzShares.of(table, plan)
        if self.az is not None and self.az in plan.azs:
            return self._hold_or_end(counts, rule, now)
        return _start(counts, rule, now)

    def _hold_or_end(self, counts: AzShares, rule: Autoshift, now: float) -> AutoshiftState:
        assert self.az is not None
        known = counts.known[counts.azs.index(self.az)]
        share = counts.share(self.az)
        if known < rule.min_checks or share >= rule.clear_share:
            reason = (
                f"{known} checks known, fewer than min_checks ({rule.min_checks}): held"
                if known < rule.min_checks
                else f"{share:.0%} of its checks unhealthy"
            )
            return AutoshiftState(self.az, self.since, None, counts, reason)
        clear_since = now if self.clear_since is None else self.clear_since
        if now - clear_since >= rule.clear_after:
            return _start(counts, rule, now)  # ended; another AZ may start at once
        left = rule.clear_after - (now - clear_since)
        reason = f"{share:.0%} unhealthy, below clear_share: ends in {left:.0f} s"
        return AutoshiftState(self.az, self.since, clear_since, counts, reason)


def _start(counts: AzShares, rule: Autoshift, now: float) -> AutoshiftState:
    """A new autoshift if exactly one AZ qualifies and the others are healthy, else none."""
    over = [
        az
        for az, known in zip(counts.azs, counts.known, strict=True)
        if known >= rule.min_checks and counts.share(az) >= rule.unhealthy_share
    ]
    if len(over) != 1:
        reason = "no AZ over unhealthy_share" if not over else f"{len(over)} AZs over it: none"
        return AutoshiftState(shares=counts, reason=reason)
    (az,) = over
    sick_others = [
        other
        for other, known in zip(counts.azs, counts.known, strict=True)
        if other != az and known and counts.share(other) >= rule.clear_share
    ]
    if sick_others:
        reason = f"{az} is over unhealthy_share, but {', '.join(sick_others)} not healthy either"
        return AutoshiftState(shares=counts, reason=reason)
    if len([k for k in counts.known if k]) < 2:
        return AutoshiftState(shares=counts, reason=f"{az} is the only AZ with known checks")
    share = counts.share(az)
    return AutoshiftState(az, now, None, counts, f"{share:.0%} of its checks unhealthy")
