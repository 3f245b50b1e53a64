"""Where a resolver's answers get their health from: a small published protocol.

Owns: `HealthSource`, what a resolver asks every refresh for the view its queries read,
and `freshness`, the one rule for when a held table may still be believed. urn's own
source is the resolver service's held aggregated table; another design (the
edge-triggered contrast in bench/edge/) plugs in its own source and overrides nothing.
Never: reads clocks or sockets itself (`now` is an argument) or answers queries.
Cost: O(1) per call for `freshness`; a source's `current` runs once per refresh
interval and per delivered table, never per query.
"""

# urn: pure

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from urn.config import Document

__all__ = ["FRESH", "NO_TABLE", "STALE", "HealthSource", "HealthView", "State", "freshness"]

State = Literal["fresh", "stale", "no table yet"]
FRESH: State = "fresh"
STALE: State = "stale"
NO_TABLE: State = "no table yet"


@dataclass(frozen=True, slots=True)
class HealthView:
    """What queries read now, and how it stands (for /healthz and the log)."""

    state: State
    down: bytes  # 1 per unhealthy slot, plus a trailing 0 slot for answers without a check
    detail: Mapping[str, Any] = field(default_factory=dict)


class HealthSource(Protocol):
    """A resolver's source of health; `current` is asked every refresh."""

    def current(self, document: Document, now: float) -> HealthView:
        """The view to answer from at wall time `now` under `document`."""
        ...


def freshness(age: float | None, max_age: float) -> State:
    """A table `age` seconds old (None: none held) against `max_table_age`."""
    if age is None:
        return NO_TABLE
    return STALE if age > max_age else FRESH
