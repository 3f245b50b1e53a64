"""A farm of simulated HTTP and TCP targets in one process, switchable per target or AZ.

Owns: one listener per target on its own loopback (address, port) from
`sim.farm_layout`, the behaviour of every mode, and the counters a benchmark reads.
Never: decides anything about health; it only behaves as told, at once.
Cost: a served probe is one accept, one small parse and one write of pre-built bytes
(tens of microseconds of CPU); a request head is read at most to 8 KiB.

Modes, HTTP targets (requests are answered with `Connection: close`, then closed):
  healthy             200, body `ok\\n` (404 for a path other than the target's)
  bad_status          503
  body_mismatch       200 whose body lacks `ok`
  blackhole           accept, read, never answer; hold until the client closes
  drop                the listener never accepts and its accept queue is kept full, so
                      SYNs are dropped: the handshake never completes (power loss)
  slow                answer as healthy after the target's delay
  reset               RST (SO_LINGER 0) once the request arrives
  close_mid_response  part of the status line and headers, then FIN
  refuse              the listener is closed: connect gets ECONNREFUSED
TCP targets: a connection accepted is healthy to a TCP check, so healthy, bad_status
and body_mismatch accept and close; reset accepts then RSTs; close_mid_response accepts
then closes; refuse closes the listener; blackhole, drop and slow all drop SYNs (an
accepted connection would look healthy). A client's FIN ends its connection (a farm
cannot tell a half-close from a close). Connections accepted before a change keep
their course, except that a slow answer falls due in the mode current at that moment
(a target blackholed meanwhile never answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, cast

from sim.farm_layout import (
    Kind,
    Mode,
    ModeChange,
    TargetSpec,
    mode_change_body,
    parse_mode_change,
)
from urn.errors import StartupError
from urn.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["DEFAULT_SLOW_DELAY", "MAX_HEAD", "Target", "TargetFarm"]

log = get_logger("targets")

DEFAULT_SLOW_DELAY = 5.0
MAX_HEAD = 8192
_LINGER_ZERO = struct.pack("ii", 1, 0)


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


HEALTHY = _response("200 OK", b"ok\n")
BAD_STATUS = _response("503 Service Unavailable", b"unavailable\n")
BODY_MISMATCH = _response("200 OK", b"degraded\n")
NOT_FOUND = _response("404 Not Found", b"no such target\n")
BAD_REQUEST = _response("400 Bad Request", b"bad request\n")
TOO_LARGE = _response("431 Request Header Fields Too Large", b"request head too large\n")
PARTIAL = HEALTHY[:28]  # status line and the start of a header, no blank line


class _Listener(enum.Enum):
    OPEN = "open"  # accepting
    CLOSED = "closed"  # nothing bound: ECONNREFUSED
    DROP = "drop"  # bound, never accepting, accept queue full: SYNs dropped


def _listener_for(kind: Kind, mode: Mode) -> _Listener:
    if mode is Mode.REFUSE:
        return _Listener.CLOSED
    if mode is Mode.DROP or (kind is Kind.TCP and mode in (Mode.BLACKHOLE, Mode.SLOW)):
        return _Listener.DROP
    return _Listener.OPEN


def _reset(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


class Target:
    """One target's live state: its mode, its listener and its counters."""

    __slots__ = (
        "_drop",
        "_listener",
        "_server",
        "counts",
        "delay",
        "kind",
        "live",
        "loop",
        "mode",
        "path",
        "spec",
    )

    def __init__(self, spec: TargetSpec, delay: float, live: set[asyncio.BaseTransport]) -> None:
        self.spec = spec
        self.kind = spec.kind
        self.path = spec.path.encode()
        self.mode = Mode.HEALTHY
        self.delay = delay
        self.counts: dict[Mode, int] = dict.fromkeys(Mode, 0)  # connections accepted, by mode
        self.live = live
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listener = _Listener.CLOSED
        self._server: asyncio.Server | None = None
        self._drop: tuple[socket.socket, socket.socket] | None = None

    @property
    def listener(self) -> str:
        return self._listener.value

    def _bind(self, backlog: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.spec.host, self.spec.port))
            sock.listen(backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        if self.spec.port == 0:
            self.spec = self.spec.with_port(sock.getsockname()[1])
        return sock

    async def settle(self, backlog: int) -> None:
        """Bring the listener into the state the current mode asks for."""
        want = _listener_for(self.kind, self.mode)
        if want is self._listener:
            return
        self._unlisten()
        if want is _Listener.OPEN:
            sock = self._bind(backlog)  # listening from here on: no refused window
            self._listener = _Listener.OPEN
            factory = _HttpProtocol if self.kind is Kind.HTTP else _TcpProtocol
            self.loop = asyncio.get_running_loop()
            try:
                self._server = await self.loop.create_server(
                    lambda: factory(self), sock=sock, backlog=backlog
                )
            except BaseException:
                sock.close()
                self._listener = _Listener.CLOSED
                raise
        elif want is _Listener.DROP:
            sock = self._bind(0)
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(sock.getsockname())  # fills the one-place accept queue
            self._drop = (sock, filler)
            self._listener = _Listener.DROP

    def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._drop is not None:
            for sock in self._drop:
                sock.close()
            self._drop = None
        self._listener = _Listener.CLOSED


class _HttpProtocol(asyncio.Protocol):
    __slots__ = ("_answer", "_buf", "_done", "_target", "_timer", "_transport")

    def __init__(self, target: Target) -> None:
        self._target = target
        self._transport: asyncio.Transport | None = None
        self._buf = b""
        self._done = False
        self._answer = HEALTHY
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)
        target = self._target
        target.counts[target.mode] += 1
        target.live.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._target.live.discard(cast("asyncio.BaseTransport", self._transport))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        buf = self._buf + data if self._buf else data
        end = buf.find(b"\r\n\r\n")
        if end < 0 or end > MAX_HEAD:
            if end < 0 and len(buf) <= MAX_HEAD:
                self._buf = buf  # wait for the rest of the head
                return
            self._done = True
            self._buf = b""
            self._answer = TOO_LARGE
            self._act(self._target.mode)
            return
        self._done = True
        self._buf = b""
        parts = buf[: buf.find(b"\r\n")].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._answer = BAD_REQUEST
        elif parts[1].partition(b"?")[0] != self._target.path:
            self._answer = NOT_FOUND
        self._act(self._target.mode)

    def _act(self, mode: Mode) -> None:
        transport = self._transport
        assert transport is not None
        if mode is Mode.HEALTHY:
            transport.write(self._answer)
            transport.close()
        elif mode is Mode.BAD_STATUS:
            transport.write(BAD_STATUS)
            transport.close()
        elif mode is Mode.BODY_MISMATCH:
            transport.write(BODY_MISMATCH)
            transport.close()
        elif mode is Mode.SLOW:
            loop = self._target.loop
            assert loop is not None
            self._timer = loop.call_later(self._target.delay, self._late)
        elif mode is Mode.CLOSE_MID_RESPONSE:
            transport.write(PARTIAL)
            transport.close()
        elif mode in (Mode.RESET, Mode.REFUSE):
            _reset(transport)
        # blackhole and drop: hold the connection, say nothing

    def _late(self) -> None:
        self._timer = None
        mode = self._target.mode
        self._act(Mode.HEALTHY if mode is Mode.SLOW else mode)


class _TcpProtocol(asyncio.Protocol):
    __slots__ = ("_target", "_transport")

    def __init__(self, target: Target) -> None:
        self._target = target
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        target = self._target
        mode = target.mode
        target.counts[mode] += 1
        target.live.add(transport)
        if mode in (Mode.RESET, Mode.REFUSE):
            _reset(cast("asyncio.Transport", transport))
        elif mode not in (Mode.BLACKHOLE, Mode.DROP, Mode.SLOW):
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._target.live.discard(cast("asyncio.BaseTransport", self._transport))


class TargetFarm:
    """Many targets in one process; `start()`, `set_mode(...)`, read counters, `close()`."""

    def __init__(
        self,
        specs: Sequence[TargetSpec],
        *,
        slow_delay: float = DEFAULT_SLOW_DELAY,
        backlog: int = 1024,
    ) -> None:
        self._live: set[asyncio.BaseTransport] = set()
        self._targets: dict[str, Target] = {}
        for spec in specs:
            if spec.id in self._targets:
                raise ValueError(f"target id {spec.id!r} appears twice")
            self._targets[spec.id] = Target(spec, slow_delay, self._live)
        self.azs: tuple[str, ...] = tuple(dict.fromkeys(s.az for s in specs))
        self._az_of = {s.id: s.az for s in specs}
        self._backlog = backlog
        self._lock = asyncio.Lock()
        self._started_at = time.monotonic()
        # wall-clock (start, end) of the last applied change: a benchmark's failure instant
        self.last_change: tuple[float, float] | None = None

    @property
    def targets(self) -> Mapping[str, Target]:
        return self._targets

    @property
    def az_of(self) -> Mapping[str, str]:
        """Target id -> AZ."""
        return self._az_of

    @property
    def specs(self) -> tuple[TargetSpec, ...]:
        """The specs, with the ports actually bound once started."""
        return tuple(t.spec for t in self._targets.values())

    async def start(self) -> None:
        """Open every listener; on failure close them all and raise StartupError."""
        async with self._lock:
            for target in self._targets.values():
                try:
                    await target.settle(self._backlog)
                except OSError as exc:
                    for t in self._targets.values():
                        t._unlisten()
                    spec = target.spec
                    raise StartupError(
                        f"target {spec.id} cannot listen on {spec.host}:{spec.port}: {exc}"
                    ) from exc
        self._started_at = time.monotonic()
        log.info("farm_started", targets=len(self._targets), azs=list(self.azs))

    async def set_mode(
        self,
        mode: Mode | str,
        *,
        az: str | None = None,
        targets: Sequence[str] | None = None,
        delay: float | None = None,
    ) -> list[str]:
        """Switch a whole AZ or some targets; return the ids that changed. ValueError: none."""
        body = mode_change_body(mode, az, targets, delay)
        return await self.apply(parse_mode_change(body, self._az_of, self.azs))

    async def apply(self, change: ModeChange) -> list[str]:
        """Apply a validated change at once; return the ids whose mode or delay changed."""
        changed: list[str] = []
        failed: list[str] = []
        async with self._lock:
            started = time.time()
            for target_id in change.targets:
                target = self._targets[target_id]
                delay = target.delay if change.delay is None else change.delay
                if target.mode is change.mode and target.delay == delay:
                    continue
                target.mode = change.mode
                target.delay = delay
                changed.append(target_id)
                try:
                    await target.settle(self._backlog)
                except OSError as exc:
                    failed.append(f"{target_id}: {exc}")
            self.last_change = (started, time.time())
        log.info("mode_set", mode=change.mode.value, changed=len(changed), failed=len(failed))
        if failed:
            raise OSError(f"{len(failed)} listener(s) could not reopen: {'; '.join(failed[:5])}")
        return changed

    async def close(self) -> None:
        """Close every listener and every connection still held."""
        async with self._lock:
            for target in self._targets.values():
                target._unlisten()
        for transport in list(self._live):
            cast("asyncio.Transport", transport).abort()
        for _ in range(3):  # let connection_lost callbacks run
            await asyncio.sleep(0)

    @property
    def served(self) -> dict[str, dict[str, int]]:
        """Connections accepted so far, per AZ and per mode at the moment of accepting."""
        out = {az: dict.fromkeys((m.value for m in Mode), 0) for az in self.azs}
        for target in self._targets.values():
            per_mode = out[target.spec.az]
            for mode, n in target.counts.items():
                per_mode[mode.value] += n
        return out

    @property
    def open_connections(self) -> int:
        return len(self._live)

    def cpu_seconds(self) -> float:
        """CPU time of this whole process (the farm's own when it runs alone)."""
        return time.process_time()

    def stats(self) -> dict[str, Any]:
        """Counters for a benchmark: served per AZ and mode, modes per AZ, CPU, uptime."""
        served = self.served
        modes = {az: dict.fromkeys((m.value for m in Mode), 0) for az in self.azs}
        for target in self._targets.values():
            modes[target.spec.az][target.mode.value] += 1
        return {
            "targets": len(self._targets),
            "served": served,
            "served_total": sum(sum(m.values()) for m in served.values()),
            "open_connections": self.open_connections,
            "modes": modes,
            "cpu_seconds": self.cpu_seconds(),
            "uptime_seconds": time.monotonic() - self._started_at,
        }

    def state(self) -> list[dict[str, Any]]:
        """Every target: spec, mode, delay, listener state and connections served."""
        return [
            {
                "id": t.spec.id,
                "az": t.spec.az,
                "kind": t.spec.kind.value,
                "host": t.spec.host,
                "port": t.spec.port,
                "path": t.spec.path,
                "mode": t.mode.value,
                "delay": t.delay,
                "listener": t.listener,
                "served": sum(t.counts.values()),
            }
            for t in self._targets.values()
        ]
