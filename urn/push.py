"""Fan-out of one encoded table to every peer, each isolated from the others.

Owns: sending the same bytes to N peers concurrently, each bounded by its own
timeout, and reporting one outcome per peer. A dead or slow peer costs one timeout
in its own task and never delays another peer's push.
The transport is a small protocol so tests can push into memory.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import aiohttp

if TYPE_CHECKING:
    from collections.abc import Sequence

    from urn.metrics import CommonMetrics

__all__ = [
    "PUSH_TIMEOUT_SHARE",
    "AiohttpTransport",
    "PushOutcome",
    "Transport",
    "push_all",
    "push_timeout",
]

TABLE_PATH = "/v1/table"
# A push may take this share of the push interval before it counts as a timeout, in
# checkers and aggregators alike. Every push round runs inside one interval after the
# sender's own work (an aggregator computes its table first, a checker encodes its
# own): 0.8 leaves a fifth of the interval for that work and a late wake, so one dead
# peer never makes the sender miss its next instant. A peer slower than that is
# failing its pushes anyway.
PUSH_TIMEOUT_SHARE = 0.8
CONTENT_TYPE = "application/msgpack"
PushResult = Literal["ok", "timeout", "error", "rejected"]


class Transport(Protocol):
    async def post(self, url: str, body: bytes, timeout: float) -> tuple[int, str]:
        """POST `body` to `url`; return (HTTP status, response text). Raise on I/O error."""


@dataclass(frozen=True, slots=True)
class PushOutcome:
    peer: str
    result: PushResult
    status: int | None
    seconds: float
    detail: str = ""


class AiohttpTransport:
    """Pushes over one keep-alive aiohttp session; TLS per the context given."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def post(self, url: str, body: bytes, timeout: float) -> tuple[int, str]:
        async with self._client().post(
            url,
            data=body,
            headers={"Content-Type": CONTENT_TYPE},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            text = await response.text() if response.status >= 400 else ""
            return response.status, text[:200]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def push_timeout(push_interval: float) -> float:
    """Seconds one push may take: PUSH_TIMEOUT_SHARE of the push interval."""
    return push_interval * PUSH_TIMEOUT_SHARE


async def push_all(
    transport: Transport,
    peers: Sequence[str],
    body: bytes,
    timeout: float,
    metrics: CommonMetrics | None = None,
) -> list[PushOutcome]:
    """Push `body` to `{peer}/v1/table` for every peer at once; never raises."""
    outcomes = await asyncio.gather(*(_push_one(transport, peer, body, timeout) for peer in peers))
    if metrics is not None:
        for outcome in outcomes:
            metrics.pushes.labels(outcome.peer, outcome.result).inc()
            metrics.push_duration.labels(outcome.peer).observe(outcome.seconds)
            if outcome.result == "ok":
                metrics.push_bytes.labels(outcome.peer).inc(len(body))
    return list(outcomes)


async def _push_one(transport: Transport, peer: str, body: bytes, timeout: float) -> PushOutcome:
    started = time.perf_counter()
    result: PushResult
    status: int | None = None
    detail = ""
    try:
        async with asyncio.timeout(timeout):
            status, detail = await transport.post(peer + TABLE_PATH, body, timeout)
        result = "ok" if 200 <= status < 300 else "rejected"
    except TimeoutError:
        result, detail = "timeout", f"no answer within {timeout:g}s"
    except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
        result, detail = "error", f"{type(exc).__name__}: {exc}"
    return PushOutcome(peer, result, status, time.perf_counter() - started, detail)
