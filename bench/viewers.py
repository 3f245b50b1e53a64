"""Simulated status-page viewers for `urn bench az-failure`: N browsers' worth of polls.

Each viewer polls every URL it is given (a resolver's and an aggregator's /v1/status)
once per push interval, as the page does, on its own phase within the interval, and
records every answer's time, URL, HTTP status and size. The bench reports, per phase,
the snapshot sizes seen (which must be one and the same size in steady state and in
failure) while the constant-work ratios are measured with these viewers polling.
Never: judges anything itself; `sizes_by_phase` only groups what was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Seen", "Viewers", "sizes_by_phase"]


@dataclass(frozen=True, slots=True)
class Seen:
    at: float  # monotonic
    url: str
    status: int  # 0: no answer
    size: int


@dataclass
class Viewers:
    """`count` viewers polling `urls` every `interval` seconds until `stop()`."""

    urls: Sequence[str]
    count: int
    interval: float
    seen: list[Seen] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self.count <= 0 or not self.urls:
            return
        timeout = aiohttp.ClientTimeout(total=max(1.0, 2 * self.interval))
        self._session = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=0)
        )
        self._tasks = [
            asyncio.create_task(self._view(i), name=f"viewer-{i}") for i in range(self.count)
        ]

    async def _view(self, index: int) -> None:
        session = self._session
        assert session is not None
        interval = self.interval
        # Viewers open the page at different moments: spread them over the interval.
        deadline = time.monotonic() + interval * index / self.count
        while True:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            for url in self.urls:
                try:
                    async with session.get(url) as response:
                        body = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    body, status = b"", 0
                self.seen.append(Seen(time.monotonic(), url, status, len(body)))
            deadline += interval
            if deadline < time.monotonic():  # fell behind: skip, as a page's timer would
                deadline = time.monotonic() + interval

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None


def sizes_by_phase(
    seen: Sequence[Seen], phases: Mapping[str, tuple[float, float]], names: Mapping[str, str]
) -> dict[str, dict[str, dict[str, object]]]:
    """Per phase and per named URL: polls, failed polls, and the distinct sizes of the
    answers that were 200 (one size each, if the snapshot is fixed-size)."""
    out: dict[str, dict[str, dict[str, object]]] = {}
    for phase, (start, end) in phases.items():
        per: dict[str, dict[str, object]] = {}
        for url, name in names.items():
            mine = [s for s in seen if s.url == url and start <= s.at < end]
            ok = sorted({s.size for s in mine if s.status == 200})
            per[name] = {
                "polls": len(mine),
                "failed": sum(1 for s in mine if s.status != 200),
                "sizes": ok,
            }
        out[phase] = per
    return out
