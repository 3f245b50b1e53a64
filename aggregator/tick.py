"""One aggregator tick's decisions: fresh tables -> verdicts and quorum -> calculated checks.

Owns: `Plan` (every per-config array, built once per config pass) and `TickCore`
(the reusable buffers that turn each checker's newest fresh table into the aggregated
table). Benchmarks import `TickCore` to measure exactly what the service runs.
Never: reads a clock, touches sockets, or loops over slots in Python.
Cost: O(capacity x fresh checkers) array work plus O(calculated checks), the same
whatever the slots hold or how many changed since the last tick.
"""

# urn: pure

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aggregator.autoshift import AutoshiftPlan
from aggregator.calculated import CalculatedPlan, apply_calculated
from aggregator.condition import Conditioner, Observation, Thresholds
from urn.drift import DriftMap
from urn.table import SlotArray, empty_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aggregator.window import Entry, Window
    from urn.config import Document

__all__ = ["Plan", "TickCore", "TickResult"]


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """Everything a tick needs from the config, as arrays."""

    thresholds: Thresholds
    calculated: CalculatedPlan
    configured: SlotArray  # 1 where a check owns the slot, for the slot-count metric
    drift: DriftMap  # slots each older config's tables must not speak for
    autoshift: AutoshiftPlan

    @property
    def capacity(self) -> int:
        return self.thresholds.capacity

    @classmethod
    def from_document(cls, document: Document, drift: DriftMap | None = None) -> Plan:
        """The plan for `document`; `drift` remembers earlier configs (a fresh one if None)."""
        configured = empty_table(document.capacity)
        configured[[c.slot for c in document.checks]] = 1
        configured.setflags(write=False)
        if drift is None:
            drift = DriftMap()
        drift.apply(document)
        return cls(
            thresholds=Thresholds.from_document(document),
            calculated=CalculatedPlan.from_document(document),
            configured=configured,
            drift=drift,
            autoshift=AutoshiftPlan.from_document(document),
        )

    def observation(self, entry: Entry) -> Observation:
        """A checker table as the verdict core reads it, changed slots masked."""
        return Observation(
            entry.last, entry.history, entry.az, self.drift.changed(entry.config_digest)
        )


@dataclass(frozen=True, slots=True)
class TickResult:
    table: SlotArray
    checkers: int  # fresh checkers whose tables built it
    azs: int  # distinct AZs among them


class TickCore:
    """Buffers for computing aggregated tables of one capacity, tick after tick."""

    def __init__(self, capacity: int, rows: int = 1) -> None:
        self.capacity = capacity
        self.conditioner = Conditioner(capacity, rows)
        self._scratch = np.empty(capacity + 1, dtype=np.uint8)

    def compute(self, entries: Sequence[Entry], plan: Plan, out: SlotArray) -> TickResult:
        """The aggregated table from each checker's newest fresh table, into `out`."""
        observations = [plan.observation(entry) for entry in entries]
        self.conditioner.evaluate(observations, plan.thresholds, out)
        apply_calculated(out, plan.calculated, self._scratch)
        return TickResult(out, len(entries), len({entry.az for entry in entries}))

    def run(self, window: Window, now: float, staleness: float, plan: Plan) -> TickResult:
        """A fresh aggregated table from the window at `now`."""
        return self.compute(window.newest_fresh(now, staleness), plan, empty_table(self.capacity))
