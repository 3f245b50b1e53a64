"""One aggregator tick's decisions: fresh tables -> N-of-M -> calculated checks.

Owns: `Plan` (every per-config array, built once per config pass) and `TickCore`
(the reusable buffers that turn the window's fresh tables into the aggregated table).
Benchmarks import `TickCore` to measure exactly what the service runs.
Never: reads a clock, touches sockets, or loops over slots in Python.
Cost: O(capacity x fresh tables) array work plus O(calculated checks), the same
whatever the slots hold or how many changed since the last tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aggregator.calculated import CalculatedPlan, apply_calculated
from aggregator.condition import Conditioner, Thresholds
from urn.table import SlotArray, empty_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aggregator.window import Entry, Window
    from urn.config import Document

__all__ = ["Plan", "TickCore"]


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """Everything a tick needs from the config, as arrays."""

    thresholds: Thresholds
    calculated: CalculatedPlan
    configured: SlotArray  # 1 where a check owns the slot, for the slot-count metric

    @property
    def capacity(self) -> int:
        return self.thresholds.capacity

    @classmethod
    def from_document(cls, document: Document) -> Plan:
        configured = empty_table(document.capacity)
        configured[[c.slot for c in document.checks]] = 1
        configured.setflags(write=False)
        return cls(
            thresholds=Thresholds.from_document(document),
            calculated=CalculatedPlan.from_document(document),
            configured=configured,
        )


class TickCore:
    """Buffers for computing aggregated tables of one capacity, tick after tick."""

    def __init__(self, capacity: int, rows: int = 1) -> None:
        self.capacity = capacity
        self.conditioner = Conditioner(capacity, rows)
        self._scratch = np.empty(capacity + 1, dtype=np.uint8)

    def compute(self, tables: Sequence[SlotArray], plan: Plan, out: SlotArray) -> SlotArray:
        """The aggregated table for `tables` (newest first) into `out`; returns `out`."""
        self.conditioner.evaluate(tables, plan.thresholds, out)
        apply_calculated(out, plan.calculated, self._scratch)
        return out

    def run(self, window: Window, now: float, staleness: float, plan: Plan) -> SlotArray:
        """A fresh aggregated table from the window's fresh tables at `now`."""
        entries: list[Entry] = window.fresh(now, staleness)
        return self.compute([e.slots for e in entries], plan, empty_table(self.capacity))
