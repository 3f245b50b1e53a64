"""HTTP/HTTPS/TCP probes at the asyncio Protocol level: I/O only, verdicts from classify.

Owns: opening one connection per probe, writing one request, feeding the bytes that come
back to `classify.ResponseScanner`, and ending every probe by its deadline. Each probe
reports exactly one `Reason` through the engine's `record` callback.
Never: decides what is healthy (classify does), retries, or backs off.
Cost: one Task (connect) and one Protocol object per probe; no per-probe timer. Deadlines
are enforced by `sweep(now)`: in-flight probes sit in one FIFO per distinct timeout, so
deadlines in each FIFO are in start order and a sweep pops only expired heads. A probe is
timed out only after the loop has polled for I/O past its deadline (see `sweep`). A dead
target (refused, blackholed, slow) therefore costs no more than a live one: a refused
probe ends in its connect, a blackholed one is aborted by the sweep with no timer to
cancel, and nothing wakes in between. Enforcement is as precise as the sweep cadence.

Deadlines run on loop-available time, not wall time: the caller tells `sweep` how long
the loop stalled (woke later than it asked to: starved of CPU, or busy with its own
work), and every probe in flight gets that much longer. A target therefore always has
its full timeout of time in which we could have read its answer; our overload shows as
late verdicts and late starts, never as target timeouts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import ssl
from collections import deque
from typing import TYPE_CHECKING, cast

from checker.classify import ResponseScanner, Stage, classify_error
from urn.config import CheckType
from urn.table import Reason

if TYPE_CHECKING:
    from collections.abc import Callable

    from urn.config import Check

__all__ = ["ProbeEngine", "Target", "compile_target", "tls_contexts"]

USER_AGENT = "urn-checker/1"
_HEALTHY = int(Reason.HEALTHY)
_TIMEOUT = int(Reason.TIMEOUT)


class Target:
    """One check compiled for the probe path: address, request bytes, TLS, deadline."""

    __slots__ = (
        "host",
        "is_tcp",
        "numeric",
        "port",
        "request",
        "search",
        "server_hostname",
        "slot",
        "ssl",
        "timeout",
    )

    def __init__(
        self,
        slot: int,
        host: str,
        port: int,
        timeout: float,
        *,
        request: bytes = b"",
        search: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.slot = slot
        self.host = host
        self.port = port
        self.timeout = timeout
        self.request = request
        self.search = search
        self.ssl = ssl_context
        self.is_tcp = not request
        self.server_hostname = host if ssl_context is not None else None
        try:
            ipaddress.ip_address(host)
        except ValueError:
            self.numeric = False
        else:
            self.numeric = True


def tls_contexts(ca_file: str | None = None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(no-verify, verify) client contexts for HTTPS checks; verify uses `ca_file` if given."""
    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    strict = ssl.create_default_context(cafile=ca_file)
    return lax, strict


def compile_target(check: Check, lax: ssl.SSLContext, strict: ssl.SSLContext) -> Target:
    """The probe-path form of a check (built once per config pass, reused every probe)."""
    if check.type is CheckType.TCP:
        return Target(check.slot, check.host, check.port, check.timeout)
    default_port = 443 if check.type is CheckType.HTTPS else 80
    host_header = check.host if check.port == default_port else f"{check.host}:{check.port}"
    if ":" in check.host:  # IPv6 literal
        host_header = f"[{check.host}]" + ("" if check.port == default_port else f":{check.port}")
    request = (
        f"GET {check.path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    context = None
    if check.type is CheckType.HTTPS:
        context = strict if check.verify_tls else lax
    return Target(
        check.slot,
        check.host,
        check.port,
        check.timeout,
        request=request,
        search=check.search.encode() if check.search is not None else None,
        ssl_context=context,
    )


class _Probe(asyncio.Protocol):
    """One probe: the connection's protocol and its bookkeeping at once."""

    __slots__ = ("deadline", "done", "engine", "scanner", "started", "target", "task", "transport")

    def __init__(self, engine: ProbeEngine, target: Target, started: float) -> None:
        self.engine = engine
        self.target = target
        self.started = started
        self.deadline = started - engine.stalled + target.timeout  # on the available clock
        self.done = False
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.scanner = ResponseScanner(target.search) if target.request else None

    def __call__(self) -> _Probe:  # the protocol factory is the probe itself
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast("asyncio.Transport", transport)
        if self.done:  # expired while the connection was completing
            stream.abort()
            return
        self.transport = stream
        if self.scanner is None:
            self.engine.finish(self, _HEALTHY)
        else:
            stream.write(self.target.request)

    def data_received(self, data: bytes) -> None:
        if not self.done and self.scanner is not None:
            verdict = self.scanner.feed(data)
            if verdict:
                self.engine.finish(self, verdict)

    def eof_received(self) -> bool | None:
        if not self.done and self.scanner is not None:
            self.engine.finish(self, self.scanner.eof())
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            if exc is not None:
                verdict = int(classify_error(exc, "exchange"))
            else:
                verdict = self.scanner.eof() if self.scanner is not None else int(Reason.RESET)
            self.engine.finish(self, verdict)


class ProbeEngine:
    """Starts probes, ends each with one verdict, and enforces deadlines by sweeping."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        record: Callable[[Target, int, float, float], None],
    ) -> None:
        """`record(target, reason, started, finished)` is called once per probe."""
        self._monotonic = monotonic
        self._record = record
        self._by_timeout: dict[float, deque[_Probe]] = {}
        self.in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_sweep = -math.inf  # on the available clock
        self.stalled = 0.0  # seconds of loop stall so far: the wall clock minus the available

    def start(self, target: Target, now: float) -> None:
        """Open a probe of `target` that must end by `now + target.timeout`."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        probe = _Probe(self, target, now)
        self.in_flight += 1
        queue = self._by_timeout.get(target.timeout)
        if queue is None:
            queue = self._by_timeout[target.timeout] = deque()
        queue.append(probe)
        probe.task = loop.create_task(self._open(probe, loop))

    async def _open(self, probe: _Probe, loop: asyncio.AbstractEventLoop) -> None:
        target = probe.target
        stage: Stage = "connect"
        # The clock starts when this probe's connect really begins, not when it was queued:
        # time lost to our own busy loop must not count against the target. Tasks run in
        # creation order and the available clock never runs backwards, so each deadline
        # FIFO stays in deadline order.
        probe.started = self._monotonic()
        probe.deadline = probe.started - self.stalled + target.timeout
        try:
            host = target.host
            if not target.numeric:
                stage = "resolve"
                infos = await loop.getaddrinfo(host, target.port, type=socket.SOCK_STREAM)
                host = str(infos[0][4][0])
                stage = "connect"
            await loop.create_connection(
                probe,
                host,
                target.port,
                ssl=target.ssl,
                server_hostname=target.server_hostname,
            )
        except asyncio.CancelledError:
            if not probe.done:  # cancelled by shutdown, not by our deadline sweep
                raise
        except Exception as exc:
            if not probe.done:
                self.finish(probe, int(classify_error(exc, stage)))
        finally:
            probe.task = None

    def finish(self, probe: _Probe, verdict: int) -> None:
        """End `probe` with `verdict` (first call wins) and close its connection."""
        if probe.done:
            return
        probe.done = True
        self.in_flight -= 1
        transport = probe.transport
        if transport is not None:
            probe.transport = None
            if verdict == _TIMEOUT:
                transport.abort()
            else:
                transport.close()
        self._record(probe.target, verdict, probe.started, self._monotonic())

    def sweep(self, now: float, stalled: float = 0.0) -> None:
        """End as a timeout every probe whose deadline had passed at the previous sweep.

        `stalled`: how much later than planned the loop woke for this sweep (seconds in
        which it could read nothing). It is added to every in-flight probe's deadline, so
        a probe is timed out only after its target had its whole timeout of time in which
        the loop was available to read the answer, whatever stage (connect, request,
        response) the stall interrupted.

        The cutoff is the previous sweep's time, not `now`: the event loop has polled for
        I/O at least once since then, so an answer that arrived before a deadline has been
        read before the probe is called timed out.
        """
        if stalled > 0.0:
            self.stalled += stalled
        cutoff = self._last_sweep
        self._last_sweep = now - self.stalled
        for queue in self._by_timeout.values():
            while queue and queue[0].deadline <= cutoff:
                probe = queue.popleft()
                if probe.done:
                    continue
                task = probe.task
                self.finish(probe, _TIMEOUT)
                if task is not None:
                    task.cancel()

    def next_deadline(self) -> float | None:
        """The earliest deadline among probes still queued for the sweep (wall clock, if
        the loop does not stall before it)."""
        heads = [q[0].deadline for q in self._by_timeout.values() if q]
        return min(heads) + self.stalled if heads else None

    def prune(self) -> None:
        """Forget FIFOs of timeouts no longer in use (call once per config pass)."""
        for timeout in [t for t, q in self._by_timeout.items() if not q]:
            del self._by_timeout[timeout]

    def abort_all(self) -> None:
        """Shut down: end every in-flight probe without recording it."""
        for queue in self._by_timeout.values():
            while queue:
                probe = queue.popleft()
                if probe.done:
                    continue
                probe.done = True
                self.in_flight -= 1
                if probe.transport is not None:
                    probe.transport.abort()
                if probe.task is not None:
                    probe.task.cancel()
