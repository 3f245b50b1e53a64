"""Operator levers, decided once per refresh: the down views queries read, each entry's mode.

Owns: the levers' precedence (docs/resolver.md, "Operator levers"): per slot the table,
then `invert`, then an active `override`, then an active shift; per record, none healthy
-> `when_all_down`; a shift that would empty it -> ignored; below `min_healthy` -> panic;
any answer down -> `ttl_when_degraded`. Out come four down views and one mode byte per
compiled entry naming the view, the TTL, or the all-down answer its queries give.
Never: reads clocks or sockets (`now`, the wall time, is an argument) or runs per query.
Cost: O(capacity + candidates) array work per refresh, whatever the health or the levers;
a query then pays one byte read and two indexes, the same in every mode.
"""

# urn: pure

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from urn.config import Forced, WhenAllDown

if TYPE_CHECKING:
    from collections.abc import Sequence

    from urn.config import Document, MinHealthy

__all__ = [
    "ANSWERED",
    "CLOSED",
    "DEGRADED",
    "FORCED_LABELS",
    "MODES",
    "MODE_LABELS",
    "MODE_LEVERS",
    "NORMAL",
    "NXDOMAIN",
    "OPEN",
    "PANIC",
    "PANIC_SHIFT_IGNORED",
    "SERVFAIL",
    "SHIFT_IGNORED",
    "VIEW_OF_MODE",
    "Decision",
    "EntryLevers",
    "SlotLevers",
    "census",
    "decide",
    "plain",
]

Mask = npt.NDArray[np.bool_]

# Modes below ANSWERED answer through the policy; their low bit is DEGRADED (the shorter
# TTL). The view each reads is VIEW_OF_MODE's.
DEGRADED = 1
NORMAL = 0  # the shifts hold: read health, shifted AZs down
SHIFT_IGNORED = 2  # a shift would empty the record: read health alone
PANIC = 4  # below min_healthy: every answer outside a shifted AZ counts as healthy
PANIC_SHIFT_IGNORED = 6  # below min_healthy, the shift ignored: every answer healthy
OPEN = 8  # none healthy, when_all_down open: every answer healthy (fail-open)
ANSWERED = 10
CLOSED = 10  # none healthy, when_all_down closed: NODATA
NXDOMAIN = 11
SERVFAIL = 12
MODES = 13
MODE_LABELS = (
    "normal",
    "normal",
    "shift_ignored",
    "shift_ignored",
    "panic",
    "panic",
    "panic_shift_ignored",
    "panic_shift_ignored",
    "all_down_open",
    "all_down_open",
    "all_down_closed",
    "all_down_nxdomain",
    "all_down_servfail",
)
# Each mode's labels of urn_lever_answers_total (fail-open has its own counter).
MODE_LEVERS: tuple[tuple[str, ...], ...] = (
    *((), ()),
    *(("shift_ignored",),) * 2,
    *(("panic",),) * 2,
    *(("panic", "shift_ignored"),) * 2,
    *((), ()),
    ("all_down_closed",),
    ("all_down_nxdomain",),
    ("all_down_servfail",),
)
_SHIFTED_VIEW, _HEALTH_VIEW, _SHIFT_ONLY_VIEW, _NONE_VIEW = range(4)
VIEW_OF_MODE = (
    *(_SHIFTED_VIEW, _SHIFTED_VIEW),
    *(_HEALTH_VIEW, _HEALTH_VIEW),
    *(_SHIFT_ONLY_VIEW, _SHIFT_ONLY_VIEW),
    *(_NONE_VIEW,) * 4,
    *(_NONE_VIEW,) * 3,  # all-down answers read no view
)
_ALL_DOWN_MODE = {
    WhenAllDown.OPEN: OPEN | DEGRADED,  # every answer is down: degraded by definition
    WhenAllDown.CLOSED: CLOSED,
    WhenAllDown.NXDOMAIN: NXDOMAIN,
    WhenAllDown.SERVFAIL: SERVFAIL,
}
_FORCED_CODES = {Forced.HEALTHY: 1, Forced.UNHEALTHY: 2}
FORCED_LABELS = ("", "healthy", "unhealthy")


@dataclass(frozen=True, slots=True, eq=False)
class SlotLevers:
    """The document's per-slot levers as arrays of `capacity + 1` (the last: answers
    without a check, which no lever touches). Built once per config pass."""

    capacity: int
    invert: Mask
    forced: npt.NDArray[np.uint8]  # 0 none, 1 healthy, 2 unhealthy (FORCED_LABELS)
    forced_until: npt.NDArray[np.float64]  # wall time the override lapses; -inf: none
    azs: tuple[str, ...]  # the AZs of checks, sorted
    az_of: npt.NDArray[np.intp]  # each slot's index in `azs`; len(azs): none
    shift_until: npt.NDArray[np.float64]  # per AZ (and a last -inf for "none")

    @classmethod
    def of(cls, document: Document) -> SlotLevers:
        capacity = document.capacity
        invert = np.zeros(capacity + 1, dtype=np.bool_)
        forced = np.zeros(capacity + 1, dtype=np.uint8)
        forced_until = np.full(capacity + 1, -np.inf)
        azs = tuple(sorted({c.az for c in document.checks if c.az is not None}))
        position = {az: i for i, az in enumerate(azs)}
        az_of = np.full(capacity + 1, len(azs), dtype=np.intp)
        for check in document.checks:
            invert[check.slot] = check.invert
            if check.override is not None:
                forced[check.slot] = _FORCED_CODES[check.override.status]
                forced_until[check.slot] = check.override.until
            if check.az is not None:
                az_of[check.slot] = position[check.az]
        shift_until = np.full(len(azs) + 1, -np.inf)
        for shift in document.shifts:
            shift_until[position[shift.az]] = shift.until
        return cls(capacity, invert, forced, forced_until, azs, az_of, shift_until)

    def az_mask(self, names: Sequence[str]) -> Mask:
        """Which of `azs` are among `names` (AZs no check has are ignored)."""
        return np.array([az in names for az in self.azs], dtype=np.bool_)

    @classmethod
    def none(cls, capacity: int) -> SlotLevers:
        """No lever on any slot (a document without levers, or a test's plain view)."""
        return cls(
            capacity,
            np.zeros(capacity + 1, dtype=np.bool_),
            np.zeros(capacity + 1, dtype=np.uint8),
            np.full(capacity + 1, -np.inf),
            (),
            np.zeros(capacity + 1, dtype=np.intp),
            np.full(1, -np.inf),
        )


@dataclass(frozen=True, slots=True, eq=False)
class EntryLevers:
    """Every compiled entry's candidates as one flat array (entry i's are
    `slots[starts[i]:starts[i] + sizes[i]]`) with its thresholds. Built once per compile."""

    slots: npt.NDArray[np.intp]  # capacity for an answer without a check
    starts: npt.NDArray[np.intp]
    sizes: npt.NDArray[np.int64]
    owner: npt.NDArray[np.intp]  # each candidate's entry
    count: npt.NDArray[np.int64]  # min_healthy.count, at most the entry's answers
    percent: npt.NDArray[np.float64]
    all_down: npt.NDArray[np.uint8]  # the mode when none is healthy

    @classmethod
    def of(
        cls,
        entries: Sequence[tuple[Sequence[int | None], MinHealthy, WhenAllDown]],
        capacity: int,
    ) -> EntryLevers:
        """From each entry's (candidate slots, min_healthy, when_all_down), in index order."""
        slots = [capacity if s is None else s for e in entries for s in e[0]]
        sizes = np.array([len(e[0]) for e in entries], dtype=np.int64)
        if (sizes < 1).any():
            raise ValueError("every entry needs at least one candidate")
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
        return cls(
            slots=np.array(slots, dtype=np.intp),
            starts=starts if len(entries) else np.zeros(0, dtype=np.intp),
            sizes=sizes,
            owner=np.repeat(np.arange(len(entries), dtype=np.intp), sizes),
            count=np.minimum([e[1].count for e in entries], sizes).astype(np.int64),
            percent=np.array([e[1].percent for e in entries], dtype=np.float64),
            all_down=np.array([_ALL_DOWN_MODE[e[2]] for e in entries], dtype=np.uint8),
        )


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    """What queries read until the next refresh, and why (for explain, /ui, metrics)."""

    views: tuple[bytes, ...]  # by mode: the down view a query in that mode reads
    modes: bytes  # by entry index
    now: float  # the wall time the levers were judged at
    health: Mask  # per slot, after invert and overrides: counted unhealthy
    forced: npt.NDArray[np.uint8]  # per slot: the override in force (FORCED_LABELS)
    inverted: Mask  # per slot
    shifted: Mask  # per slot: in an AZ shifted now
    shifted_azs: tuple[str, ...]  # the AZs shifted now, by the document or autoshift
    autoshifted_azs: tuple[str, ...]  # the AZs the fleet autoshifted (in force or not)
    autoshift_overruled: bool  # an operator's shift in force sets the autoshift aside
    counted_down: Mask  # per candidate (EntryLevers order): as its policy counts it now

    @property
    def mode_counts(self) -> npt.NDArray[np.int64]:
        """How many entries are in each mode now."""
        return np.bincount(np.frombuffer(self.modes, dtype=np.uint8), minlength=MODES)


def decide(
    entries: EntryLevers,
    slots: SlotLevers,
    down: bytes,
    up: bytes | None,
    now: float,
    autoshifted: Mask | None = None,
) -> Decision:
    """The views and modes for the health view `down` (1 per unhealthy slot) and `up` (1
    per slot known healthy; None: none is known, so `invert` only lifts the unhealthy) at
    wall time `now`. `autoshifted`: per AZ of `slots.azs`, shifted by the fleet (autoshift,
    carried in the aggregated table); an operator's shift in force takes precedence, as a
    customer's zonal shift does over Route 53's autoshift, so then it is set aside."""
    width = slots.capacity + 1
    unhealthy = np.frombuffer(down, dtype=np.uint8).astype(np.bool_)
    healthy = (
        np.zeros(width, dtype=np.bool_)
        if up is None
        else np.frombuffer(up, dtype=np.uint8).astype(np.bool_)
    )
    health = np.where(slots.invert, healthy, unhealthy)
    forced = np.where(slots.forced_until > now, slots.forced, np.uint8(0)).astype(np.uint8)
    health = np.where(forced == 0, health, forced == _FORCED_CODES[Forced.UNHEALTHY])
    az_shifted = slots.shift_until > now
    overruled = autoshifted is not None and bool(autoshifted.any() and az_shifted.any())
    if autoshifted is not None and not overruled:
        az_shifted[: len(autoshifted)] |= autoshifted
    shifted = az_shifted[slots.az_of]
    shifted_view = (health | shifted).astype(np.uint8).tobytes()
    views_by_kind = (
        shifted_view,
        health.astype(np.uint8).tobytes(),
        shifted.astype(np.uint8).tobytes(),
        bytes(width),
    )
    modes, counted = _modes(entries, health, shifted)
    return Decision(
        views=tuple(views_by_kind[v] for v in VIEW_OF_MODE),
        modes=modes.tobytes(),
        now=now,
        health=health,
        forced=forced,
        inverted=slots.invert,
        shifted=shifted,
        shifted_azs=tuple(az for az, on in zip(slots.azs, az_shifted, strict=False) if on),
        autoshifted_azs=()
        if autoshifted is None
        else tuple(az for az, on in zip(slots.azs, autoshifted, strict=False) if on),
        autoshift_overruled=overruled,
        counted_down=counted,
    )


def _modes(entries: EntryLevers, health: Mask, shifted: Mask) -> tuple[npt.NDArray[np.uint8], Mask]:
    """Each entry's mode, and each candidate's down as its mode counts it."""
    if not len(entries.sizes):
        return np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.bool_)
    down = health[entries.slots]
    away = shifted[entries.slots]
    starts = entries.starts
    healthy_all = np.add.reduceat(~down, starts, dtype=np.int64)
    healthy_kept = np.add.reduceat(~down & ~away, starts, dtype=np.int64)
    away_n = np.add.reduceat(away, starts, dtype=np.int64)
    sizes = entries.sizes
    holds = healthy_kept > 0  # the shift leaves a healthy answer, so it stands
    healthy = np.where(holds, healthy_kept, healthy_all)
    eligible = np.where(holds, sizes - away_n, sizes)
    none_up = healthy_all == 0
    panic = ~none_up & (
        (healthy < np.minimum(entries.count, eligible))
        | (100.0 * healthy < entries.percent * eligible)
    )
    degraded = (healthy_all < sizes) | (holds & (away_n > 0))
    mode = np.where(holds, NORMAL, SHIFT_IGNORED)
    mode = np.where(panic, np.where(holds, PANIC, PANIC_SHIFT_IGNORED), mode)
    mode = np.where(none_up, entries.all_down, mode + degraded).astype(np.uint8)
    kind = np.asarray(VIEW_OF_MODE, dtype=np.uint8)[mode][entries.owner]
    counted = np.select(
        [kind == _SHIFTED_VIEW, kind == _HEALTH_VIEW, kind == _SHIFT_ONLY_VIEW],
        [down | away, down, away],
        default=False,
    )
    counted |= mode[entries.owner] >= ANSWERED  # an all-down answer gives none of them
    return mode, counted


def census(decision: Decision) -> dict[str, int]:
    """How many entries each lever shapes now (urn.metrics.LEVER_RECORD_STATES), and how
    many checks are overridden (by status) or inverted."""
    counts = decision.mode_counts
    states: dict[str, int] = {}
    for mode, labels in enumerate(MODE_LEVERS):
        for label in labels:
            states[label] = states.get(label, 0) + int(counts[mode])
    states["all_down_open"] = int(counts[OPEN] + counts[OPEN | DEGRADED])
    states["degraded"] = int(counts[DEGRADED:ANSWERED:2].sum() + counts[ANSWERED:].sum())
    forced = np.bincount(decision.forced, minlength=3)
    states["override_healthy"] = int(forced[1])
    states["override_unhealthy"] = int(forced[2])
    states["inverted"] = int(decision.inverted.sum())
    return states


def plain(entries: EntryLevers, down: bytes, up: bytes | None = None) -> Decision:
    """The decision for a bare down view with no slot levers (tests, benches, a start)."""
    return decide(entries, SlotLevers.none(len(down) - 1), down, up, 0.0)
