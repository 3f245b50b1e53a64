"""Fixed-interval driver on absolute deadlines.

Tick k is due at `start + offset + k * interval`; a tick that overruns never causes a
burst of catch-up ticks: missed deadlines are counted and skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from urn.clock import Clock

__all__ = ["run_every"]


async def run_every(
    clock: Clock,
    interval: Callable[[], float],
    tick: Callable[[], Awaitable[None]],
    *,
    offset: float = 0.0,
    on_late: Callable[[float], None] | None = None,
) -> None:
    """Call `tick` once per interval forever; `on_late(seconds)` reports late starts."""
    deadline = clock.monotonic() + offset
    while True:
        await clock.sleep_until(deadline)
        lateness = clock.monotonic() - deadline
        if on_late is not None and lateness > 0:
            on_late(lateness)
        await tick()
        step = interval()
        deadline += step
        now = clock.monotonic()
        if now > deadline:
            if on_late is not None:
                on_late(now - deadline)
            skipped = int((now - deadline) // step) + 1
            deadline += skipped * step
