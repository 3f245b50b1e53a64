"""The prober the edge checker drives: urn's own when present, a lean stand-in otherwise.

Both designs must probe identically so that only health propagation differs, so the edge
checker uses `checker.probers.ProbeEngine` (the urn checker's engine) whenever the
checker package provides it. The stand-in below has the same interface (`start`,
`sweep`, `abort_all`, a `record(target, reason, started, finished)` callback) and is
used only where the checker package is not installed yet.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from urn.config import CheckType
from urn.table import Reason

if TYPE_CHECKING:
    from collections.abc import Callable

    from urn.config import Check

__all__ = ["Engine", "make_engine", "uses_urn_prober"]


class Engine(Protocol):
    in_flight: int

    def start(self, target: Any, now: float) -> None: ...
    def sweep(self, now: float) -> None: ...
    def abort_all(self) -> None: ...


class _Target:
    __slots__ = ("host", "port", "request", "search", "slot", "timeout")

    def __init__(self, check: Check) -> None:
        self.slot = check.slot
        self.host = check.host
        self.port = check.port
        self.timeout = check.timeout
        self.search = check.search.encode() if check.search else None
        self.request = (
            b""
            if check.type is CheckType.TCP
            else (
                f"GET {check.path} HTTP/1.1\r\nHost: {check.host}\r\nConnection: close\r\n\r\n"
            ).encode()
        )


class _Probe(asyncio.Protocol):
    def __init__(self, engine: _StandInEngine, target: _Target, now: float) -> None:
        self.engine = engine
        self.target = target
        self.started = now
        self.deadline = now + target.timeout
        self.done = False
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.done:
            transport.close()
            return
        self.transport = transport  # type: ignore[assignment]
        if not self.target.request:
            self.engine.finish(self, int(Reason.HEALTHY))
        else:
            self.transport.write(self.target.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.buf += data
        if (len(self.buf) >= 12 and self.target.search is None) or len(self.buf) > 5120 + 16384:
            self.engine.finish(self, self._verdict())

    def _verdict(self) -> int:
        head = self.buf[:12]
        if not head.startswith(b"HTTP/1.") or not head[9:12].isdigit():
            return int(Reason.ERROR)
        if not 200 <= int(head[9:12]) < 400:
            return int(Reason.BAD_STATUS)
        if self.target.search is not None:
            body = self.buf.partition(b"\r\n\r\n")[2][:5120]
            if self.target.search not in body:
                return int(Reason.BODY_MISMATCH)
        return int(Reason.HEALTHY)

    def eof_received(self) -> bool | None:
        if not self.done:
            self.engine.finish(self, self._verdict() if self.buf else int(Reason.RESET))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            self.engine.finish(self, self._verdict() if self.buf else int(Reason.RESET))


class _StandInEngine:
    def __init__(self, monotonic: Callable[[], float], record: Any) -> None:
        self._monotonic = monotonic
        self._record = record
        self._queues: dict[float, deque[_Probe]] = {}
        self.in_flight = 0

    def start(self, target: _Target, now: float) -> None:
        probe = _Probe(self, target, now)
        self.in_flight += 1
        self._queues.setdefault(target.timeout, deque()).append(probe)
        probe.task = asyncio.get_running_loop().create_task(self._open(probe))

    async def _open(self, probe: _Probe) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: probe, probe.target.host, probe.target.port)
        except asyncio.CancelledError:
            if not probe.done:
                raise
        except ConnectionRefusedError:
            self.finish(probe, int(Reason.REFUSED))
        except OSError:
            self.finish(probe, int(Reason.ERROR))

    def finish(self, probe: _Probe, verdict: int) -> None:
        if probe.done:
            return
        probe.done = True
        self.in_flight -= 1
        if probe.transport is not None:
            probe.transport.abort()
            probe.transport = None
        self._record(probe.target, verdict, probe.started, self._monotonic())

    def sweep(self, now: float) -> None:
        for queue in self._queues.values():
            while queue and queue[0].deadline <= now:
                probe = queue.popleft()
                if probe.done:
                    continue
                task = probe.task
                self.finish(probe, int(Reason.TIMEOUT))
                if task is not None:
                    task.cancel()

    def abort_all(self) -> None:
        for queue in self._queues.values():
            while queue:
                probe = queue.popleft()
                if not probe.done:
                    probe.done = True
                    if probe.transport is not None:
                        probe.transport.abort()
                    if probe.task is not None:
                        probe.task.cancel()
        self.in_flight = 0


def uses_urn_prober() -> bool:
    try:
        return importlib.util.find_spec("checker.probers") is not None
    except ImportError:
        return False


def make_engine(
    monotonic: Callable[[], float], record: Any
) -> tuple[Engine, Callable[[Check], Any]]:
    """(engine, compile(check) -> target): urn's checker prober if installed."""
    try:
        from checker.probers import (  # type: ignore[import-not-found,unused-ignore]
            ProbeEngine,
            compile_target,
            tls_contexts,
        )
    except ImportError:
        return _StandInEngine(monotonic, record), _Target
    lax, strict = tls_contexts()
    engine: Engine = ProbeEngine(monotonic, record)
    return engine, lambda check: compile_target(check, lax, strict)
