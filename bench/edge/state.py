"""Incremental N-of-M: per-slot vote counters updated one event at a time.

Owns: each fresh checker's current value per slot, and per slot the number of fresh
checkers reporting any value and reporting a failure; the aggregated byte per slot.
A slot is unhealthy when at least min(N, observers) observers report a failure,
unknown with no observer, else healthy. Calculated checks follow their children.
Never: does I/O or reads a clock.
Cost: O(1) per event, plus O(children) per calculated parent of a changed slot;
expiring a checker is O(slots it reported). Work is proportional to change: that is
the edge-triggered design, and what the benchmark contrasts with urn's fixed tick.
"""

# urn: pure

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from urn.config import CheckType
from urn.table import Reason, Status, aggregated_byte, status_of_byte

if TYPE_CHECKING:
    from collections.abc import Iterable

    from urn.config import Document

__all__ = ["EdgeAggregate"]

_UNKNOWN = aggregated_byte(Status.UNKNOWN)
_HEALTHY = aggregated_byte(Status.HEALTHY)
_CALC_UNHEALTHY = aggregated_byte(Status.UNHEALTHY, Reason.ERROR)


@dataclass(slots=True)
class EdgeAggregate:
    """The aggregator's state; `apply`/`expire` return the slots whose verdict changed."""

    capacity: int
    needed: list[int] = field(init=False)  # N per slot (0: not a probed check)
    observers: list[int] = field(init=False)
    failing: list[int] = field(init=False)
    last_reason: bytearray = field(init=False)
    verdict: bytearray = field(init=False)
    current: dict[str, bytearray] = field(default_factory=dict)
    parents: dict[int, tuple[int, ...]] = field(default_factory=dict)
    children: dict[int, tuple[tuple[int, ...], int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.needed = [0] * self.capacity
        self.observers = [0] * self.capacity
        self.failing = [0] * self.capacity
        self.last_reason = bytearray(self.capacity)
        self.verdict = bytearray(self.capacity)

    def configure(self, document: Document) -> set[int]:
        """Apply a whole document: thresholds and calculated checks; returns changed slots."""
        needed = [0] * self.capacity
        parents: dict[int, list[int]] = {}
        children: dict[int, tuple[tuple[int, ...], int]] = {}
        for check in document.checks:
            if check.type is CheckType.CALCULATED:
                children[check.slot] = (check.children, check.healthy_if_at_least)
                for child in check.children:
                    parents.setdefault(child, []).append(check.slot)
            else:
                needed[check.slot] = check.failures
        self.needed = needed
        self.parents = {k: tuple(v) for k, v in parents.items()}
        self.children = children
        changed: set[int] = set()
        for slot in range(self.capacity):
            self._decide(slot, changed)
        return changed

    def apply(self, checker: str, events: Iterable[tuple[int, int]], snapshot: bool) -> set[int]:
        """One checker's batch; a snapshot replaces everything that checker said before."""
        changed: set[int] = set()
        if snapshot:
            changed |= self.expire(checker)
        current = self.current.get(checker)
        if current is None:
            current = self.current[checker] = bytearray(self.capacity)
        observers = self.observers
        failing = self.failing
        for slot, value in events:
            old = current[slot]
            if old == value:
                continue
            current[slot] = value
            if old == 0:
                observers[slot] += 1
            elif old >= Reason.TIMEOUT:
                failing[slot] -= 1
            if value == 0:
                observers[slot] -= 1
            elif value >= Reason.TIMEOUT:
                failing[slot] += 1
                self.last_reason[slot] = value
            self._decide(slot, changed)
        return changed

    def expire(self, checker: str) -> set[int]:
        """Forget a checker (stale or restarted): withdraw each of its votes."""
        current = self.current.pop(checker, None)
        changed: set[int] = set()
        if current is None:
            return changed
        for slot, value in enumerate(current):
            if value == 0:
                continue
            self.observers[slot] -= 1
            if value >= Reason.TIMEOUT:
                self.failing[slot] -= 1
            self._decide(slot, changed)
        return changed

    def _decide(self, slot: int, changed: set[int]) -> None:
        if slot in self.children:
            kids, at_least = self.children[slot]
            healthy = sum(
                1 for k in kids if status_of_byte(self.verdict[k]) is not Status.UNHEALTHY
            )
            new = _HEALTHY if healthy >= at_least else _CALC_UNHEALTHY
        else:
            observers = self.observers[slot]
            need = self.needed[slot]
            if observers == 0 or need == 0:
                new = _UNKNOWN
            elif self.failing[slot] >= min(need, observers):
                new = aggregated_byte(Status.UNHEALTHY, Reason(self.last_reason[slot]))
            else:
                new = _HEALTHY
        if new != self.verdict[slot]:
            self.verdict[slot] = new
            changed.add(slot)
            for parent in self.parents.get(slot, ()):
                self._decide(parent, changed)
