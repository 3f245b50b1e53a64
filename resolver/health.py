"""Where a resolver's answers get their health from, and when a table may be believed.

Owns: `HealthSource`, what a resolver asks every refresh for the view its queries read;
`choose`, the rule for which aggregator's table answers; and `judge`, the state that
follows when none is fresh. urn's own source is the resolver service's held tables;
another design (the edge-triggered contrast in bench/edge/) plugs in its own source
and overrides nothing.

The choice (docs/reliability.md, "Which aggregator's table answers"):
  * every table is aged by when this resolver received it, on its own monotonic clock,
    never by the sender's timestamp: a replica whose clock runs ahead wins nothing;
  * only the tables of the latest round compete (received within half a push interval
    of the newest one): a replica that fell silent stops answering at the next round;
  * among those, the one built from the most fresh checkers, then the most AZs, wins; a
    tie goes to the sender whose table answered before, then to the latest received.
    A replica that sees fewer checkers never wins over one that sees more, and two
    replicas that judge alike but for a tick at an edge (an autoshift one of them just
    restarted without) never make answers alternate round by round.
  * none fresh: hold the last chosen table (`on_stale: hold`, the default: static
    stability, an aggregator outage changes no answer) or read every slot as unknown
    (`on_stale: open`). Either way the resolver is not ready (`/readyz` 503).
Never: reads clocks or sockets itself (`now` is an argument) or answers queries.
Cost: O(aggregators) per call; it runs once per refresh interval and per delivered
table, never per query.
"""

# urn: pure

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from urn.config import Document
    from urn.table import SlotArray

__all__ = [
    "FRESH",
    "HELD",
    "NO_TABLE",
    "ROUND_SHARE",
    "STALE",
    "HealthSource",
    "HealthView",
    "ReceivedTable",
    "State",
    "choose",
    "judge",
]

State = Literal["fresh", "held", "stale", "no table yet"]
FRESH: State = "fresh"  # a table received within max_table_age answers
HELD: State = "held"  # none is: the last chosen one still answers (on_stale: hold)
STALE: State = "stale"  # none is: every slot reads unknown (on_stale: open)
NO_TABLE: State = "no table yet"
# Replicas tick on the same wall-clock instants, so one round's tables arrive within
# milliseconds of each other; half an interval tells this round from the last.
ROUND_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class ReceivedTable:
    """One aggregator's newest accepted table, and when this resolver received it."""

    sender: str
    az: str
    sequence: int
    generated_at: float  # the sender's wall clock: shown, never used to age the table
    received_at: float  # this resolver's monotonic clock
    checkers: int  # fresh checkers behind the table
    azs: int  # and their AZs
    autoshift: str  # the AZ the aggregators shifted away whole ("" none)
    digest: bytes
    slots: bytes
    array: SlotArray


@dataclass(frozen=True, slots=True)
class HealthView:
    """What queries read now, and how it stands (for /readyz, /healthz and the log)."""

    state: State
    down: bytes  # 1 per unhealthy slot, plus a trailing 0 slot for answers without a check
    detail: Mapping[str, Any] = field(default_factory=dict)
    # 1 per slot known healthy, as `down` (what `invert` turns down: resolver.levers);
    # None: the source cannot tell healthy from unknown.
    up: bytes | None = None
    # The AZs the fleet shifted away (autoshift, carried in the aggregated table); the
    # levers add them to the document's shifts unless an operator's shift is in force.
    autoshifted: tuple[str, ...] = ()


class HealthSource(Protocol):
    """A resolver's source of health; `current` is asked every refresh."""

    def current(self, document: Document, now: float) -> HealthView:
        """The view to answer from at monotonic time `now` under `document`."""
        ...


def choose(
    tables: Iterable[ReceivedTable],
    now: float,
    max_age: float,
    push_interval: float,
    incumbent: str | None = None,
) -> ReceivedTable | None:
    """The table that answers at monotonic `now`, or None when none is fresh;
    `incumbent` is the sender whose table answered until now (None: none did)."""
    fresh = [t for t in tables if now - t.received_at <= max_age]
    if not fresh:
        return None
    newest = max(t.received_at for t in fresh)
    this_round = newest - ROUND_SHARE * push_interval
    return max(
        (t for t in fresh if t.received_at >= this_round),
        key=lambda t: (t.checkers, t.azs, t.sender == incumbent, t.received_at),
    )


def judge(chosen: bool, held: bool, on_stale: str) -> State:
    """The state with a fresh table `chosen` or not, and one `held` from before or not."""
    if chosen:
        return FRESH
    if not held:
        return NO_TABLE
    return HELD if on_stale == "hold" else STALE
