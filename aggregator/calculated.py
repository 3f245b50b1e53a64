"""Calculated checks: a verdict over other checks' verdicts.

Owns: the status of every calculated slot from its children's aggregated statuses,
children evaluated first (a child may itself be calculated; the config parser has
ruled out cycles).
Rule (three-valued, so no data never passes for a verdict): with h healthy, u
unknown children and threshold k = healthy_if_at_least,
  healthy   when h >= k                 (enough children are known to be healthy),
  unhealthy when h + u < k              (even if every unknown child were healthy),
  unknown   otherwise                   (the unknown children decide it).
An operator reading the aggregated table never sees "healthy" or "unhealthy" claimed
on missing data; resolvers treat unknown as healthy, so answers behave exactly as if
unknown children counted as healthy. An unhealthy calculated slot carries the most
common reason among its unhealthy children (ties: the lower code).
Never: loops over slots; the only Python loop is over depth levels, fixed per config.
Cost: O(calculated checks x widest child list) per tick, plans built once per config.
"""

# urn: pure

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from urn.table import (
    STATUS_MASK,
    Reason,
    SlotArray,
    Status,
    pack_aggregated,
    reasons_of,
    statuses_of,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from urn.config import Document

__all__ = ["CalculatedPlan", "Level", "apply_calculated"]

_PAD = STATUS_MASK  # status bits no real slot has: neither healthy, unknown nor unhealthy
_CODES = np.arange(int(Reason.TIMEOUT), int(Reason.ERROR) + 1, dtype=np.uint8)


@dataclass(frozen=True, slots=True, eq=False)
class Level:
    """Calculated checks whose children all sit at lower levels."""

    slots: npt.NDArray[np.intp]  # (n,)
    children: npt.NDArray[np.intp]  # (n, widest); padding points at index `capacity`
    at_least: npt.NDArray[np.int64]  # (n,)


@dataclass(frozen=True, slots=True, eq=False)
class CalculatedPlan:
    capacity: int
    levels: tuple[Level, ...]

    @property
    def slots(self) -> npt.NDArray[np.intp]:
        if not self.levels:
            return np.zeros(0, dtype=np.intp)
        return np.concatenate([level.slots for level in self.levels])

    @classmethod
    def from_document(cls, document: Document) -> CalculatedPlan:
        return cls.build(
            document.capacity,
            {
                c.slot: (c.children, c.healthy_if_at_least)
                for c in document.checks
                if not c.is_probed
            },
        )

    @classmethod
    def build(
        cls, capacity: int, calculated: Mapping[int, tuple[Sequence[int], int]]
    ) -> CalculatedPlan:
        """From {slot: (children, healthy_if_at_least)}; children must not form a cycle."""
        depth: dict[int, int] = {}

        def depth_of(slot: int, trail: tuple[int, ...]) -> int:
            if slot not in calculated:
                return 0
            if slot in trail:
                raise ValueError(f"calculated checks form a cycle through slot {slot}")
            if slot not in depth:
                children = calculated[slot][0]
                depth[slot] = 1 + max(depth_of(c, (*trail, slot)) for c in children)
            return depth[slot]

        for slot in calculated:
            depth_of(slot, ())
        levels: list[Level] = []
        for level in range(1, max(depth.values(), default=0) + 1):
            members = sorted(s for s, d in depth.items() if d == level)
            widest = max(len(calculated[s][0]) for s in members)
            children = np.full((len(members), widest), capacity, dtype=np.intp)
            for row, slot in enumerate(members):
                kids = calculated[slot][0]
                children[row, : len(kids)] = kids
            levels.append(
                Level(
                    slots=np.asarray(members, dtype=np.intp),
                    children=children,
                    at_least=np.asarray([calculated[s][1] for s in members], dtype=np.int64),
                )
            )
        return cls(capacity=capacity, levels=tuple(levels))


def apply_calculated(table: SlotArray, plan: CalculatedPlan, scratch: SlotArray) -> None:
    """Overwrite every calculated slot of `table` in place, lowest level first.

    `scratch` holds capacity + 1 bytes (the extra one is the padding sentinel).
    """
    if not plan.levels:
        return
    capacity = plan.capacity
    scratch[:capacity] = table
    scratch[capacity] = _PAD
    for level in plan.levels:
        child_bytes = scratch[level.children]
        statuses = statuses_of(child_bytes)
        healthy = np.count_nonzero(statuses == Status.HEALTHY, axis=1)
        unknown = np.count_nonzero(statuses == Status.UNKNOWN, axis=1)
        is_healthy = healthy >= level.at_least
        is_unhealthy = healthy + unknown < level.at_least
        down = statuses == Status.UNHEALTHY
        reasons = reasons_of(child_bytes)
        counts = np.count_nonzero((reasons[:, :, None] == _CODES) & down[:, :, None], axis=1)
        dominant = _CODES[np.argmax(counts, axis=1)]  # first maximum: the lower code
        result = np.where(
            is_healthy,
            np.uint8(Status.HEALTHY),
            np.where(
                is_unhealthy,
                pack_aggregated(np.full_like(dominant, Status.UNHEALTHY), dominant),
                0,
            ),
        ).astype(np.uint8)
        scratch[level.slots] = result
        table[level.slots] = result
