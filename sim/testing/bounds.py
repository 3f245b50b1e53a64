"""Wall-clock bounds for tests that run in real time: the intervals, times one slack factor.

Owns: `slack()`, the one factor by which every wall-clock bound of a real-time test
(e2e, reliability, and the few component tests on real time) exceeds what the configured
intervals give, read from $URN_TEST_SLACK (default 2.0, sized for a busy 2-core machine
running a fleet of about 8 processes beside the test; 1.0 holds urn to its intervals
alone); and `LoopLag`, how late this process's own event loop ran, for the message of
a failed bound (a fleet's members report theirs on /metrics: `sim.chaos.loop_lateness`).
Never: picks a margin of its own; each test derives its bound from its intervals and
multiplies by `slack()` once (docs/testing.md, "Timing bounds").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

__all__ = ["DEFAULT_SLACK", "SLACK_ENV", "LoopLag", "slack"]

SLACK_ENV = "URN_TEST_SLACK"
DEFAULT_SLACK = 2.0


def slack(environ: Mapping[str, str] | None = None) -> float:
    """$URN_TEST_SLACK as a number at least 1 (DEFAULT_SLACK when unset or empty)."""
    raw = (os.environ if environ is None else environ).get(SLACK_ENV, "").strip()
    if not raw:
        return DEFAULT_SLACK
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{SLACK_ENV}={raw!r} is not a number") from None
    if not (math.isfinite(value) and value >= 1.0):
        raise ValueError(
            f"{SLACK_ENV}={raw!r} must be a number of at least 1 (1: the intervals alone)"
        )
    return value


class LoopLag:
    """How late this process's event loop woke while watched (`async with LoopLag() as
    lag:`): a task asks to wake every `step` seconds and records each wake's lateness."""

    def __init__(self, step: float = 0.01) -> None:
        self.step = step
        self.worst = 0.0
        self.wakes = 0
        self.late = 0  # wakes more than one step late
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start watching (on the running loop); `stop` ends it."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> LoopLag:
        self.start()
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += self.step
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            lag = loop.time() - deadline
            self.wakes += 1
            self.worst = max(self.worst, lag)
            if lag > self.step:
                self.late += 1
                deadline = loop.time()  # a stall is one late wake, not a burst after it

    def __str__(self) -> str:
        return (
            f"this process's event loop woke up to {self.worst * 1000:.0f} ms late"
            f" ({self.late} of {self.wakes} wakes over {self.step * 1000:.0f} ms late;"
            f" {SLACK_ENV}={slack()})"
        )
