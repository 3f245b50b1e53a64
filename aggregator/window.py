"""The last few tables from every checker, and which of them are fresh.

Owns: per-checker history (the newest `depth` accepted tables, kept for explanations),
freshness by `staleness`, and each checker's newest fresh table, which verdicts read.
Never: reads a clock (`now` and receive times are arguments) or validates tables;
`urn.http.TableReceiver` accepted them before they get here.
Cost: O(checkers x depth) Python work per call, independent of capacity and of what
the slots hold; the tables themselves are only referenced, never copied.

Time base: the aggregator's own monotonic receive time, not the checker's generation
time. Checker wall clocks may disagree with ours by up to `skew` (10 s by default),
which is more than `staleness` (5 s by default): judged by generation time, a checker
whose clock lags would look stale forever and one whose clock leads would look fresh
after it died, and the newest-first order across checkers would follow clock error
rather than arrival. Receive times differ from generation times only by the push
latency (bounded by the push timeout, far below an interval), are on one clock, and
never jump. Within one checker the order is the same either way: the receiver only
accepts increasing sequence numbers.
"""

# urn: pure

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from urn.table import SlotArray

__all__ = ["DEFAULT_DEPTH", "Entry", "Window"]

DEFAULT_DEPTH = 3


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted checker table."""

    sender: str
    az: str
    sequence: int
    generated_at: float  # the checker's wall clock, for display only
    received_at: float  # our monotonic clock: orders tables and decides freshness
    last: SlotArray  # the checker table's planes (urn.table)
    history: SlotArray
    config_digest: bytes = b""

    def age(self, now: float) -> float:
        return now - self.received_at


class Window:
    """Per-checker history of the newest `depth` tables."""

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"window depth must be at least 1, not {depth}")
        self.depth = depth
        self._by_sender: dict[str, deque[Entry]] = {}

    def add(self, entry: Entry) -> None:
        """Remember `entry` as its sender's newest table, forgetting the oldest past depth."""
        history = self._by_sender.get(entry.sender)
        if history is None:
            history = self._by_sender[entry.sender] = deque(maxlen=self.depth)
        history.append(entry)

    def resize(self, depth: int) -> None:
        """Keep `depth` tables per checker from now on (the newest survive a shrink)."""
        if depth < 1:
            raise ValueError(f"window depth must be at least 1, not {depth}")
        self.depth = depth
        for sender, history in self._by_sender.items():
            self._by_sender[sender] = deque(history, maxlen=depth)

    def prune(self, now: float, staleness: float) -> None:
        """Forget tables older than `staleness`, and checkers with none left."""
        cutoff = now - staleness
        for sender in list(self._by_sender):
            history = self._by_sender[sender]
            while history and history[0].received_at < cutoff:
                history.popleft()
            if not history:
                del self._by_sender[sender]

    def newest_fresh(self, now: float, staleness: float) -> list[Entry]:
        """Each checker's newest table if it is fresh, by sender: one verdict per checker.

        A checker's table already carries its own probe history, so older tables add
        nothing but double counting.
        """
        cutoff = now - staleness
        return [
            history[-1]
            for _, history in sorted(self._by_sender.items())
            if history and history[-1].received_at >= cutoff
        ]

    def fresh_senders(self, now: float, staleness: float) -> list[str]:
        """Checkers with at least one fresh table, by name."""
        cutoff = now - staleness
        return sorted(
            sender
            for sender, history in self._by_sender.items()
            if history and history[-1].received_at >= cutoff
        )

    def history(self, sender: str) -> tuple[Entry, ...]:
        """What is kept from `sender`, oldest first."""
        return tuple(self._by_sender.get(sender, ()))

    @property
    def senders(self) -> list[str]:
        return sorted(self._by_sender)
