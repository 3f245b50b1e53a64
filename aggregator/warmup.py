"""When a replica's table may be pushed: the warm-up rule, apart from the clock.

Owns: the decision the aggregator shell used to make inline. A replica that has just
started holds few or no checker tables: its table would say "unknown" (which resolvers
answer as healthy) or "healthy" on one probe for slots its peers know to be dead, and a
resolver takes the newest table from any aggregator. So it pushes only once every
checker has had time to report: `window` push intervals, at most `staleness`. The same
holds after a tick that found no fresh table, or came after a stall longer than
`staleness` (a freeze, a long pause): warm up again instead of pushing UNKNOWN over
the tables peers and resolvers hold. Resolvers keep their last table meanwhile.
Never: reads a clock (`now` and every instant are arguments, on one monotonic clock).
Cost: O(1).
"""

# urn: pure

from __future__ import annotations

__all__ = ["is_blind", "warm_up_seconds", "warming_up"]


def warm_up_seconds(window: int, push: float, staleness: float, override: float | None) -> float:
    """Seconds after start (or after going blind) during which ticks compute but do not push."""
    if override is not None:
        return override
    return min(window * push, staleness)


def is_blind(fresh_tables: int, now: float, last_tick: float | None, staleness: float) -> bool:
    """Whether this tick cannot trust its window: nothing fresh, or back from a stall."""
    return fresh_tables == 0 or (last_tick is not None and now - last_tick > staleness)


def warming_up(now: float, started: float | None, blind_at: float | None, warm_up: float) -> bool:
    """Whether a tick at `now` must not push yet."""
    if started is None:
        return True
    since = started if blind_at is None else max(started, blind_at)
    return now - since < warm_up
