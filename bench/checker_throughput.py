"""Checker throughput: probes/s one checker process sustains, its p99 lateness, the CPU
ratio all-dead/all-healthy for refused, blackholed and slow targets, and HTTPS probes/s.

Every scenario runs a fresh checker process (the real `CheckerService`, SystemClock,
pushes into memory) pinned to CPU 0 against the simulated target farm (`sim.farm`) in a
process pinned to CPU 1, so each gets one core of a 2-core machine. CPU is the checker
process's own (`time.process_time`, threads included) over the measured window, after a
warm-up.
The same run also measures an aiohttp-client prober at the same offered load, side by
side, so the choice of prober is a measured one, and the floor of this machine: the
leanest connection-per-probe HTTP loop (no schedule, no deadlines, no table) flat out
on the same core, on uvloop's transports as before and on raw sockets and one epoll set
(the checker's own I/O path, so the difference is what the checker adds to it). HTTPS
runs the same checker against a TLS farm (this module's own, ECDSA P-256 certificate)
that lets sessions resume, and once against one that does not.

A ladder step counts as sustained when nothing was skipped, at least 98 % of the offered
rate was done and p99 lateness stayed within 25 ms (and 10 % of the interval). Each step
is followed by a floor run and a raw floor run, and its share of each floor is of that
floor's runs on either side of it: this machine's speed drifts too much over minutes for
one floor to serve all. A step that fails while the checker lost more than 5 % of the
window to causes not its own (runnable but waiting for its core, or the machine's CPUs
taken by the host: `stolen`, the steal time of /proc/stat), or while the machine itself
slowed (the floor after it did under 85 % of the floor before it), is run again, at most
twice (`--retries`), and says so. Past the first step not sustained, two more steps
(`--refine`) halve the gap between it and the last sustained one. The all-dead runs
come in rounds with a healthy run before the first round and after each one, the dead
modes' order rotating, and a dead run is compared with the healthy figure at the moment
it ran (on the line between the healthy runs either side of its round).

    python -m bench.checker_throughput            # full run (about 14 minutes)
    python -m bench.checker_throughput --quick    # shorter windows, fewer steps
    python -m bench.checker_throughput --sections ratio   # the dead/healthy runs alone

Ends with one JSON line: {"bench": "checker_throughput", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from urn.table import Reason

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

BENCH = "checker_throughput"
# probe intervals for 10,000 checks: 5,000 to 27,800 probes/s
DEFAULT_LADDER = [2.0, 1.0, 0.8, 0.67, 0.57, 0.5, 0.45, 0.4, 0.36]
# offered HTTPS probes/s, as that many checks each probed once a second (so the warm-up
# gives every check its first, full handshake and the window measures resumed ones)
DEFAULT_HTTPS_LADDER = [250.0, 500.0, 750.0, 1000.0, 1250.0, 1500.0, 2000.0, 3000.0]
PUSH_KEY = "bench-push-key-0123456789abcdef"
LATENESS_P99_BOUND_MS = 25.0
HTTPS_WARMUP_EXTRA = 2.0  # seconds of warm-up an HTTPS run adds (see `scenario`)
STARVED_RETRY_SHARE = 0.05  # a failed step this starved of its core is run again
STARVED_RETRIES = 2
# A failed step whose floor afterwards did under this share of the floor before it ran
# while the machine itself slowed (no process of ours took the core: the VM's own speed
# drifts), and is run again like a starved one.
SLOWED_FLOOR_SHARE = 0.85
HTTPS_MODES = ("https", "https-full")  # TLS farm: sessions resume, or never


# --- processes -------------------------------------------------------------------------


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


def _schedstat() -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of this process so far."""
    try:
        with open("/proc/self/schedstat") as handle:
            on_cpu, waiting, _ = handle.read().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def _stolen(cpu: int | None) -> float:
    """Seconds the hypervisor has kept `cpu` (None: each CPU of this machine, on
    average) from it so far: steal time. A VM whose host is busy loses its vCPUs for
    milliseconds at a time, and a system call that waits on a lock the other vCPU held
    then stalls as long."""
    name = "cpu" if cpu is None else f"cpu{cpu}"
    try:
        with open("/proc/stat") as handle:
            fields = next((f for line in handle if (f := line.split())[0] == name), [])
    except OSError:
        return 0.0
    if len(fields) < 9:
        return 0.0
    seconds = int(fields[8]) / os.sysconf("SC_CLK_TCK")
    return seconds if cpu is not None else seconds / (os.cpu_count() or 1)


def farm_main(mode: str, count: int, delay: float, cpu: int | None) -> None:
    """Serve `count` targets in `mode` until stdin closes; print their ports and paths first."""
    import uvloop

    from sim.testing.targets import loopback_farm
    from urn.runtime import raise_fd_limit

    _pin(cpu)
    raise_fd_limit()

    async def serve() -> None:
        stop: Callable[[], Awaitable[None]]
        if mode in HTTPS_MODES:
            tls = await _tls_farm(count, resume=mode == "https")
            targets, stop = tls.targets, tls.close
        else:
            farm = await loopback_farm(count, mode, slow_delay=delay, backlog=4096)
            targets, stop = [(spec.port, spec.path) for spec in farm.specs], farm.close
        print(json.dumps({"targets": targets}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        await stop()

    uvloop.run(serve())


class _TlsFarm:
    """HTTPS targets on 127.0.0.1: each connection reads one request head, gets a 200
    (`sim.farm.HEALTHY`) and is closed, as the plain farm's healthy targets do."""

    def __init__(self, servers: list[asyncio.Server]) -> None:
        self.servers = servers
        self.targets = [(int(s.sockets[0].getsockname()[1]), "/") for s in servers]

    async def close(self) -> None:
        for server in self.servers:
            server.close()


async def _tls_farm(count: int, *, resume: bool) -> _TlsFarm:
    import ssl

    import trustme

    from sim.farm import HEALTHY

    class Answer(asyncio.Protocol):
        def __init__(self) -> None:
            self.transport: asyncio.Transport | None = None
            self.head = b""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            self.head += data
            if b"\r\n\r\n" in self.head and self.transport is not None:
                self.transport.write(HEALTHY)
                self.transport.close()
                self.transport = None

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    if not resume:  # no session tickets (TLS 1.3) and none for TLS 1.2: every handshake full
        context.num_tickets = 0
        context.options |= ssl.OP_NO_TICKET
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(Answer, "127.0.0.1", 0, ssl=context, backlog=4096)
        for _ in range(count)
    ]
    return _TlsFarm(servers)


def _process_cpu(pid: int | None) -> float:
    """CPU seconds (user and system) process `pid` has used so far; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class AiohttpEngine:
    """The contrast prober: aiohttp's client, one task and one connection per probe."""

    def __init__(self, monotonic: Any, record: Any, urls: dict[int, str]) -> None:
        self._monotonic = monotonic
        self._record = record
        self._urls = urls
        self._session: Any = None
        self.in_flight = 0

    def start(self, target: Any, now: float) -> None:
        self.in_flight += 1
        asyncio.get_running_loop().create_task(self._probe(target, now))

    async def _probe(self, target: Any, started: float) -> None:
        import aiohttp

        from checker.classify import SEARCH_WINDOW, classify_error, classify_status

        if self._session is None:
            connector = aiohttp.TCPConnector(force_close=True, limit=0, ssl=False)
            self._session = aiohttp.ClientSession(connector=connector)
        try:
            timeout = aiohttp.ClientTimeout(total=target.timeout)
            async with self._session.get(self._urls[target.slot], timeout=timeout) as response:
                verdict = int(classify_status(response.status))
                if verdict == Reason.HEALTHY and target.search is not None:
                    body = await response.content.read(SEARCH_WINDOW)
                    if target.search not in body:
                        verdict = int(Reason.BODY_MISMATCH)
        except aiohttp.ClientConnectorError as exc:
            verdict = int(classify_error(exc.os_error, "connect"))
        except Exception as exc:
            verdict = int(classify_error(exc, "exchange"))
        self.in_flight -= 1
        self._record(target, verdict, started, self._monotonic())

    def sweep(self, now: float, stalled: float = 0.0) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None

    def prune(self) -> None:
        pass

    def abort_all(self) -> None:
        pass


def checker_config(spec: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A bench checker's config written to a temp file: `spec["checks"]` checks of
    `spec.get("type", "http")` spread over `spec["targets"]` (port, path) on
    `spec.get("host")`, at `spec["interval"]` and `spec["timeout"]`.
    Returns the file's path and the checks."""
    from sim.testing import document_dict

    targets: list[tuple[int, str]] = spec["targets"]
    n = spec["checks"]
    checks = [
        {
            "slot": i,
            "name": f"t{i}",
            "type": spec.get("type", "http"),
            "host": spec.get("host", "127.0.0.1"),
            "port": targets[i % len(targets)][0],
            "path": targets[i % len(targets)][1],
            "timeout": spec["timeout"],
        }
        for i in range(n)
    ]
    document = document_dict(
        checks,
        capacity=max(n, 1),
        intervals={"probe": spec["interval"], "push": 1.0, "config": 3600},
        aggregators=["http://aggregator.bench"],
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(document, handle)
        return handle.name, checks


def read_spec() -> dict[str, Any]:
    """A child's spec: one JSON line on stdin, written once the parent has its farm."""
    spec: dict[str, Any] = json.loads(sys.stdin.readline())
    return spec


def checker_main() -> None:
    """One measured checker run (spec from `read_spec`); prints a JSON result line."""
    import uvloop

    from checker.app import TUNING, build_service
    from checker.settings import CheckerSettings
    from sim.testing import MemoryTransport
    from urn.runtime import tune_process

    spec = read_spec()  # after the imports, which so run while the farm starts
    _pin(spec.get("cpu"))
    path, checks = checker_config(spec)
    urls = {c["slot"]: f"http://{c['host']}:{c['port']}{c['path']}" for c in checks}

    async def run() -> dict[str, Any]:
        fd_limit = tune_process(TUNING)  # as `urn checker` tunes its process
        settings = CheckerSettings(id="chk-bench", az="a", config=path, fd_limit=fd_limit)
        service = await build_service(
            settings, environ={"URN_PUSH_KEY": PUSH_KEY}, transport=MemoryTransport()
        )
        if spec["prober"] == "aiohttp":
            service.engine = AiohttpEngine(  # type: ignore[assignment]
                service.clock.monotonic, service._record, urls
            )
        lateness: list[float] = []
        measuring = False
        flush = service.flush_metrics

        def keep_lateness() -> None:
            if measuring:
                lateness.extend(service._lateness)
            flush()

        service.flush_metrics = keep_lateness  # type: ignore[method-assign]

        def completed() -> int:
            total = sum(service._counts)
            for reason in Reason:
                value = service.metrics.registry.get_sample_value(
                    "urn_probes_total", {"result": reason.label}
                )
                total += int(value or 0)
            return total

        def skipped() -> int:
            return int(service.metrics.probes_skipped._value.get()) + service._skipped

        await service.start()
        await asyncio.sleep(spec["warmup"])
        measuring = True
        lateness.clear()
        del service._lateness[:]
        engine: Any = service.engine
        tls0 = getattr(engine, "tls_handshakes", 0), getattr(engine, "tls_resumed", 0)
        farm0 = _process_cpu(spec.get("farm_pid"))
        cpu0, wall0, times0 = time.process_time(), time.monotonic(), os.times()
        sched0 = _schedstat()
        stolen0 = _stolen(spec.get("cpu"))
        started0, done0, skipped0 = service.probes_started, completed(), skipped()
        counts0 = list(service._counts)
        await asyncio.sleep(spec["duration"])
        cpu1, wall1, times1 = time.process_time(), time.monotonic(), os.times()
        sched1 = _schedstat()
        stolen1 = _stolen(spec.get("cpu"))
        started1, done1, skipped1 = service.probes_started, completed(), skipped()
        farm1 = _process_cpu(spec.get("farm_pid"))
        tls1 = getattr(engine, "tls_handshakes", 0), getattr(engine, "tls_resumed", 0)
        lateness.extend(service._lateness)
        measuring = False
        by_reason = {
            r.label: (
                service.metrics.registry.get_sample_value("urn_probes_total", {"result": r.label})
                or 0
            )
            + service._counts[r]
            - counts0[r]
            for r in Reason
            if r != Reason.NO_DATA
        }
        await service.stop()
        wall = wall1 - wall0
        values = np.asarray(lateness or [0.0])
        return {
            "wall_s": wall,
            "cpu_s": cpu1 - cpu0,
            "user_s": times1.user - times0.user,
            # Share of the window this process was runnable but waiting for a CPU: the
            # noise indicator. Near 0 on a quiet machine; high means starved by neighbours.
            "runq_wait_share": (sched1[1] - sched0[1]) / (wall1 - wall0),
            # Share of the window the host took the checker's CPU (each CPU's, on average,
            # when it is not pinned).
            "steal_share": (stolen1 - stolen0) / (wall1 - wall0),
            "sys_s": times1.system - times0.system,
            "started_per_s": (started1 - started0) / wall,
            "completed_per_s": (done1 - done0) / wall,
            "skipped": skipped1 - skipped0,
            "lateness_p50_ms": float(np.percentile(values, 50)) * 1e3,
            "lateness_p99_ms": float(np.percentile(values, 99)) * 1e3,
            "lateness_max_ms": float(values.max()) * 1e3,
            "reasons": {k: v for k, v in by_reason.items() if v},
            "farm_cpu_util": (farm1 - farm0) / wall,
            "tls_handshakes": tls1[0] - tls0[0],
            "tls_resumed": tls1[1] - tls0[1],
        }

    try:
        result = uvloop.run(run())
    finally:
        Path(path).unlink(missing_ok=True)
    print(json.dumps(result), flush=True)


def floor_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: floor\r\nConnection: close\r\n\r\n".encode()


Mark = tuple[int, float, "os.times_result", float]


def _mark(counts: list[int]) -> Mark:
    """Probes done so far, process CPU, os.times() and the wall clock, at one instant."""
    return sum(counts), time.process_time(), os.times(), time.monotonic()


def _window_figures(start: Mark, end: Mark, failed: int) -> dict[str, float]:
    """A floor's figures over the window between two marks."""
    done0, cpu0, times0, wall0 = start
    done1, cpu1, times1, wall1 = end
    wall = wall1 - wall0
    return {
        "wall_s": wall,
        "cpu_s": cpu1 - cpu0,
        "sys_s": times1.system - times0.system,
        "completed_per_s": (done1 - done0) / wall,
        "failed": failed,
    }


def floor_main() -> None:
    """The machine's floor: the leanest connection-per-probe HTTP loop, flat out.

    `concurrency` workers each connect, send one GET, take the first bytes of the answer
    and close, again and again: no schedule, no deadlines, no table, no metrics. What
    this reaches on one core is the most any prober built on uvloop's transports can
    do here, so the checker's sustained rate is judged against it in the same run.
    """
    import uvloop

    spec = read_spec()
    _pin(spec.get("cpu"))
    targets = [(port, floor_request(path)) for port, path in spec["targets"]]

    class Once(asyncio.Protocol):
        def __init__(self, done: asyncio.Future[bool], request: bytes) -> None:
            self.done = done
            self.request = request
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]
            self.transport.write(self.request)  # type: ignore[union-attr]

        def data_received(self, data: bytes) -> None:
            if not self.done.done():
                self.done.set_result(data.startswith(b"HTTP/1.1 2"))
                assert self.transport is not None
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(False)

    async def run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        counts = [0, 0]  # healthy, other
        running = [True]

        async def worker(offset: int) -> None:
            index = offset
            while running[0]:
                done: asyncio.Future[bool] = loop.create_future()
                port, request = targets[index % len(targets)]
                index += spec["concurrency"]
                await loop.create_connection(
                    functools.partial(Once, done, request), "127.0.0.1", port
                )
                counts[0 if await done else 1] += 1

        workers = [asyncio.create_task(worker(i)) for i in range(spec["concurrency"])]
        await asyncio.sleep(spec["warmup"])
        start = _mark(counts)
        await asyncio.sleep(spec["duration"])
        end = _mark(counts)
        running[0] = False
        await asyncio.gather(*workers, return_exceptions=True)
        return _window_figures(start, end, counts[1])

    print(json.dumps(uvloop.run(run())), flush=True)


def floor_raw_main() -> None:
    """The floor on the checker's own I/O path: raw non-blocking sockets in one
    edge-triggered epoll set that the loop watches as one reader (`checker.probers`).

    `concurrency` probes in flight, flat out: connect, send one GET with the connect (as
    the checker does to a near target: on loopback the connection is up when connect
    returns) or else on the first ready event, take the first bytes of the answer and
    close, no Task, no transport, no schedule, no deadlines, no table. The checker's own
    cost over this is what its schedule, deadlines, table and bookkeeping add.
    """
    import select
    import socket

    import uvloop

    spec = read_spec()
    _pin(spec.get("cpu"))
    targets = [(("127.0.0.1", port), floor_request(path)) for port, path in spec["targets"]]
    watch = select.EPOLLIN | select.EPOLLOUT | select.EPOLLET
    answer = select.EPOLLIN | select.EPOLLET
    stream = socket.SOCK_STREAM | socket.SOCK_NONBLOCK

    async def run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        poll = select.epoll()
        open_: dict[int, list[Any]] = {}  # fd -> [socket, request or None once sent]
        counts = [0, 0]  # healthy, other
        state = {"next": 0, "running": True}

        def launch() -> None:
            index = state["next"]
            state["next"] = index + 1
            address, request = targets[index % len(targets)]
            sock = socket.socket(socket.AF_INET, stream)
            sock.connect_ex(address)
            try:
                sock.send(request)
            except BlockingIOError:
                open_[sock.fileno()] = [sock, request]
                poll.register(sock.fileno(), watch)
            except OSError:  # refused with the connect: the next probe takes its place
                counts[1] += 1
                sock.close()
                if state["running"]:
                    loop.call_soon(launch)
            else:
                open_[sock.fileno()] = [sock, None]
                poll.register(sock.fileno(), answer)

        def ready() -> None:
            for fd, _ in poll.poll(0, 512):
                entry = open_[fd]
                sock = entry[0]
                if entry[1] is not None:
                    try:
                        sock.send(entry[1])
                    except OSError:
                        counts[1] += 1
                        del open_[fd]
                        sock.close()
                        launch()
                        continue
                    entry[1] = None
                try:
                    data = sock.recv(16384)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                counts[0 if data.startswith(b"HTTP/1.1 2") else 1] += 1
                del open_[fd]
                sock.close()
                if state["running"]:
                    launch()

        loop.add_reader(poll.fileno(), ready)
        for _ in range(spec["concurrency"]):
            launch()
        await asyncio.sleep(spec["warmup"])
        start = _mark(counts)
        await asyncio.sleep(spec["duration"])
        end = _mark(counts)
        state["running"] = False
        loop.remove_reader(poll.fileno())
        for sock, _ in open_.values():
            sock.close()
        poll.close()
        return _window_figures(start, end, counts[1])

    print(json.dumps(uvloop.run(run())), flush=True)


def floor_paced_main() -> None:
    """The leanest loop at the checker's pace: the raw floor's I/O (`floor_raw_main`)
    started open loop, `rate` probes a second on the grid the checker wakes on at that
    rate, each closed at its answer or at the first wake past its deadline. Its CPU per
    probe beside the checker's, for the same targets healthy or dead, is what the
    checker adds; its own dead/healthy ratio is what the machine charges any prober for
    those targets. No schedule, no table, no scanner; per probe only its socket, a list
    and a deadline tuple."""
    import errno
    import select
    import socket
    from collections import deque

    import uvloop

    from checker.admission import tick_for
    from urn.runtime import raise_fd_limit

    spec = read_spec()
    _pin(spec.get("cpu"))
    raise_fd_limit()  # as the checker does: a blackholed second holds rate x timeout
    host = spec.get("host", "127.0.0.1")
    targets = [((host, port), floor_request(path)) for port, path in spec["targets"]]
    rate, timeout = float(spec["rate"]), float(spec["timeout"])
    tick = tick_for(round(rate), 1.0)  # the checker's own wake grid at this rate
    per_tick = rate * tick
    watch = select.EPOLLIN | select.EPOLLOUT | select.EPOLLET
    answer = select.EPOLLIN | select.EPOLLET
    stream = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
    in_progress = (0, errno.EINPROGRESS)

    async def run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        poll = select.epoll()
        open_: dict[int, list[Any]] = {}  # fd -> [socket, request or None once sent]
        deadlines: deque[tuple[float, int, socket.socket]] = deque()
        counts = [0, 0]  # healthy, other
        state = {"started": 0, "owed": 0.0, "at": loop.time()}
        running = [True]

        def end(fd: int, sock: socket.socket, healthy: bool) -> None:
            counts[0 if healthy else 1] += 1
            del open_[fd]
            sock.close()

        def launch(now: float) -> None:
            index = state["started"] = int(state["started"]) + 1
            address, request = targets[index % len(targets)]
            try:
                sock = socket.socket(socket.AF_INET, stream)
            except OSError:  # out of descriptors: a failed probe, and the loop goes on
                counts[1] += 1
                return
            if sock.connect_ex(address) not in in_progress:
                counts[1] += 1
                sock.close()
                return
            fd = sock.fileno()
            try:
                sock.send(request)
            except BlockingIOError:
                open_[fd] = [sock, request]
                poll.register(fd, watch)
            except OSError:  # refused with the connect
                counts[1] += 1
                sock.close()
                return
            else:
                open_[fd] = [sock, None]
                poll.register(fd, answer)
            deadlines.append((now + timeout, fd, sock))

        def ready() -> None:
            for fd, events in poll.poll(0, 512):
                entry = open_.get(fd)
                if entry is None:
                    continue
                sock = entry[0]
                if entry[1] is not None:
                    if events & (select.EPOLLERR | select.EPOLLHUP):
                        end(fd, sock, False)
                        continue
                    try:
                        sock.send(entry[1])
                    except BlockingIOError:
                        continue
                    except OSError:
                        end(fd, sock, False)
                        continue
                    entry[1] = None
                try:
                    data = sock.recv(16384)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                end(fd, sock, data.startswith(b"HTTP/1.1 2"))

        def wake() -> None:
            if not running[0]:
                return
            state["at"] += tick
            loop.call_at(state["at"], wake)
            now = time.monotonic()
            ready()
            while deadlines and deadlines[0][0] <= now:
                _, fd, sock = deadlines.popleft()
                entry = open_.get(fd)
                if entry is not None and entry[0] is sock:
                    end(fd, sock, False)
            owed = state["owed"] + per_tick
            for _ in range(int(owed)):
                launch(now)
            state["owed"] = owed - int(owed)

        loop.add_reader(poll.fileno(), ready)
        wake()
        await asyncio.sleep(spec["warmup"])
        start, started0 = _mark(counts), state["started"]
        stolen0, waiting0 = _stolen(spec.get("cpu")), _schedstat()[1]
        await asyncio.sleep(spec["duration"])
        end_, started1 = _mark(counts), state["started"]
        stolen1, waiting1 = _stolen(spec.get("cpu")), _schedstat()[1]
        running[0] = False
        loop.remove_reader(poll.fileno())
        for sock, _ in open_.values():
            sock.close()
        poll.close()
        figures = _window_figures(start, end_, counts[1])
        figures["started_per_s"] = (started1 - started0) / figures["wall_s"]
        figures["steal_share"] = (stolen1 - stolen0) / figures["wall_s"]
        figures["runq_wait_share"] = (waiting1 - waiting0) / figures["wall_s"]
        return figures

    print(json.dumps(uvloop.run(run())), flush=True)


@contextlib.contextmanager
def _child(flag: str) -> Iterator[subprocess.Popen[str]]:
    """This module in role `flag` in a fresh process, started at once: it imports what
    its role needs while the caller starts the farm, then waits for its spec on stdin
    (`_measured`). Killed on the way out if it is still running."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.checker_throughput", flag],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def _measured(
    child: subprocess.Popen[str],
    spec: dict[str, Any],
    args: argparse.Namespace,
    farm: Any,
    *,
    slack: float,
    warmup: float | None = None,
) -> dict[str, Any]:
    """`child`'s last JSON line for `spec` with the run's warm-up (`args.warmup` unless
    given), duration and CPU added, given `slack` seconds past them; the target farm (if
    any) is stopped afterwards."""
    warmup = args.warmup if warmup is None else warmup
    spec = {**spec, "warmup": warmup, "duration": args.duration, "cpu": args.checker_cpu}
    try:
        out, err = child.communicate(
            json.dumps(spec) + "\n", timeout=warmup + args.duration + slack
        )
    finally:
        if farm is not None:
            _stop_farm(farm)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"bench child failed ({child.returncode}): {err[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def floor(args: argparse.Namespace, concurrency: int, *, raw: bool = False) -> dict[str, Any]:
    with _child("--floor-raw" if raw else "--floor") as child:
        farm, targets = _start_farm("healthy", args.targets, args.slow_delay, args.farm_cpu)
        spec = {"targets": targets, "concurrency": concurrency}
        result = _measured(child, spec, args, farm, slack=60)
    done = result["completed_per_s"]
    result["concurrency"] = concurrency
    result["cpu_util"] = result["cpu_s"] / result["wall_s"]
    result["cpu_us_per_probe"] = result["cpu_s"] / max(done * result["wall_s"], 1) * 1e6
    print(
        f"  {'floor raw' if raw else 'floor':9} {concurrency:4} in flight  done {done:7.0f}/s  cpu"
        f" {result['cpu_util'] * 100:5.1f}%  {result['cpu_us_per_probe']:6.1f} us/probe"
        f" ({result['sys_s'] / max(result['cpu_s'], 1e-9) * 100:3.0f}% sys)"
        f"  failed {result['failed']}",
        flush=True,
    )
    return result


# --- orchestration ---------------------------------------------------------------------


def _start_farm(
    mode: str, count: int, delay: float, cpu: int | None
) -> tuple[Any, list[tuple[int, str]]]:
    command = [
        sys.executable,
        "-m",
        "bench.checker_throughput",
        "--farm",
        mode,
        "--farm-count",
        str(count),
        "--farm-delay",
        str(delay),
    ]
    command += ["--farm-cpu", str(-1 if cpu is None else cpu)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("target farm did not start")
    return process, [(port, path) for port, path in json.loads(line)["targets"]]


def _stop_farm(process: Any) -> None:
    with contextlib.suppress(BrokenPipeError):
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


REFUSING_HOST = "127.0.99.1"  # a loopback address nobody else binds: its free ports stay free


def _targets_for(args: argparse.Namespace, mode: str) -> tuple[Any, str, list[tuple[int, str]]]:
    """(the farm process or None, host, (port, path) targets) for a run in `mode`:
    refused targets are free ports on REFUSING_HOST, the others a farm in that mode."""
    if mode == "refused":
        from sim.testing import free_port

        return None, REFUSING_HOST, [(free_port(REFUSING_HOST), "/") for _ in range(args.targets)]
    farm, targets = _start_farm(mode, args.targets, args.slow_delay, args.farm_cpu)
    return farm, "127.0.0.1", targets


def paced_floor(
    args: argparse.Namespace, *, mode: str, rate: float, timeout: float
) -> dict[str, Any]:
    """One run of the paced floor (`floor_paced_main`) against targets in `mode`."""
    with _child("--floor-paced") as child:
        farm, host, targets = _targets_for(args, mode)
        spec = {"host": host, "targets": targets, "rate": rate, "timeout": timeout}
        result = _measured(child, spec, args, farm, slack=60)
    result.update(mode=mode, offered_per_s=rate)
    result["cpu_util"] = result["cpu_s"] / result["wall_s"]
    result["cpu_us_per_probe"] = (
        result["cpu_s"] / max(result["started_per_s"] * result["wall_s"], 1) * 1e6
    )
    print(
        f"  {'paced':8} {mode:9} floor at {rate:7.0f}/s  started {result['started_per_s']:7.0f}/s"
        f"  cpu {result['cpu_util'] * 100:5.1f}%  {result['cpu_us_per_probe']:6.1f} us/probe"
        f" ({result['sys_s'] / max(result['cpu_s'], 1e-9) * 100:3.0f}% sys)"
        f"  starved {result['runq_wait_share'] * 100:3.0f}%"
        f"  stolen {result['steal_share'] * 100:3.0f}%",
        flush=True,
    )
    return result


def scenario(
    args: argparse.Namespace,
    *,
    mode: str,
    checks: int,
    interval: float,
    timeout: float,
    prober: str = "protocol",
) -> dict[str, Any]:
    with _child("--checker") as child:
        farm, host, targets = _targets_for(args, mode)
        spec = {
            "host": host,
            "targets": targets,
            "checks": checks,
            "interval": interval,
            "timeout": timeout,
            "prober": prober,
            "type": "https" if mode in HTTPS_MODES else "http",
            "farm_pid": None if farm is None else farm.pid,
        }
        # An HTTPS run's first cycle is all full handshakes (about 1.8 ms of CPU each here,
        # most of the core for a second at 500 checks), and the loop catches up after it:
        # a longer warm-up keeps that catching up out of the measured window.
        warmup = args.warmup + HTTPS_WARMUP_EXTRA if mode in HTTPS_MODES else None
        result = _measured(child, spec, args, farm, slack=120, warmup=warmup)
    result.update(
        mode=mode,
        checks=checks,
        interval=interval,
        timeout=timeout,
        prober=prober,
        offered_per_s=checks / interval,
    )
    result["cpu_util"] = result["cpu_s"] / result["wall_s"]
    done = result["completed_per_s"]
    result["cpu_us_per_probe"] = result["cpu_s"] / max(done * result["wall_s"], 1) * 1e6
    offered = checks / interval
    print(
        f"  {prober:8} {mode:9} {checks:6} checks @ {interval:5.2f}s  offered {offered:7.0f}/s"
        f"  done {done:7.0f}/s  cpu {result['cpu_util'] * 100:5.1f}%"
        f"  {result['cpu_us_per_probe']:6.1f} us/probe"
        f" ({result['sys_s'] / max(result['cpu_s'], 1e-9) * 100:3.0f}% sys)"
        f"  lateness p99 {result['lateness_p99_ms']:7.2f} ms  skipped {result['skipped']}"
        f"  starved {result['runq_wait_share'] * 100:3.0f}%"
        f"  stolen {result['steal_share'] * 100:3.0f}%"
        f"  farm {result['farm_cpu_util'] * 100:3.0f}%",
        flush=True,
    )
    return result


def sustained(result: dict[str, Any]) -> bool:
    """Kept up: nothing skipped, >= 98% of the offered rate done, p99 lateness within
    LATENESS_P99_BOUND_MS and under 10% of the interval."""
    return bool(
        result["skipped"] == 0
        and result["completed_per_s"] >= 0.98 * result["offered_per_s"]
        and result["lateness_p99_ms"] <= LATENESS_P99_BOUND_MS
        and result["lateness_p99_ms"] < 100 * result["interval"]
    )


def lost_share(result: dict[str, Any]) -> float:
    """The share of the window the checker could not run for reasons not its own: other
    processes on its core, or the host taking the machine's CPUs (steal)."""
    return float(result["runq_wait_share"] + result["steal_share"])


def why_again(result: dict[str, Any], *, slowed: bool = False) -> str | None:
    """Why a step that was not sustained runs again, or None: the checker lost over
    STARVED_RETRY_SHARE of its window to others, or the machine slowed under it."""
    if lost_share(result) > STARVED_RETRY_SHARE:
        return (
            f"    (starved {result['runq_wait_share'] * 100:.0f}% and stolen"
            f" {result['steal_share'] * 100:.0f}% of the window: again)"
        )
    if slowed:
        return "    (the machine slowed meanwhile: the floor fell by over 15 %: again)"
    return None


def ladder_step(args: argparse.Namespace, **how: Any) -> dict[str, Any]:
    """`scenario(args, **how)`, run again (at most `args.retries` times) while it is not
    sustained and the checker lost over STARVED_RETRY_SHARE of the window meanwhile."""
    result = scenario(args, **how)
    for _ in range(args.retries):
        why = None if sustained(result) else why_again(result)
        if why is None:
            break
        print(why)
        result = scenario(args, **how)
    return result


def step_figures(result: dict[str, Any]) -> dict[str, Any]:
    """What the JSON line says of every ladder step, HTTP or HTTPS."""
    return {
        "offered_per_s": round(result["offered_per_s"]),
        "done_per_s": round(result["completed_per_s"]),
        "lateness_p99_ms": round(result["lateness_p99_ms"], 2),
        "skipped": result["skipped"],
        "steal_share": round(result["steal_share"], 3),
        "refined": bool(result.get("refined")),
    }


def step_between_floors(
    args: argparse.Namespace,
    floor_after: Callable[[], dict[str, Any]],
    before: dict[str, Any] | None,
    **how: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`scenario(args, **how)` followed by a floor run: (the step with its share of the
    mean of the floors either side of it, the floor after it). Floors that also carry
    `raw_per_s` (the raw floor run with them) give the step its share of that too.

    A step that is not sustained runs again, at most `args.retries` times in all, while
    it lost over STARVED_RETRY_SHARE of its window to others or the machine slowed under
    it (the floor after it did under SLOWED_FLOOR_SHARE of the one before)."""
    retries = getattr(args, "retries", 0)
    attempt = 0
    while True:
        result = scenario(args, **how)
        after = floor_after()
        sides = [after] if before is None else [before, after]
        beside = float(np.mean([side["completed_per_s"] for side in sides]))
        result["floor_beside_per_s"] = beside
        result["share_of_floor_beside"] = result["completed_per_s"] / max(beside, 1.0)
        share = result["share_of_floor_beside"]
        line = f"    share of the floor beside it ({beside:.0f}/s): {share:.3f}"
        if all("raw_per_s" in side for side in sides):
            raw = float(np.mean([side["raw_per_s"] for side in sides]))
            result["raw_floor_beside_per_s"] = raw
            result["share_of_raw_floor_beside"] = result["completed_per_s"] / max(raw, 1.0)
            line += f", of the raw floor ({raw:.0f}/s): {result['share_of_raw_floor_beside']:.3f}"
        print(line, flush=True)
        slowed = before is not None and (
            after["completed_per_s"] < SLOWED_FLOOR_SHARE * before["completed_per_s"]
        )
        before = after
        why = None if sustained(result) or attempt == retries else why_again(result, slowed=slowed)
        if why is None:
            break
        print(why)
        attempt += 1
    return result, after


def between(low: tuple[int, float], high: tuple[int, float]) -> tuple[int, float]:
    """The `(checks, interval)` step halfway in rate between two ladder steps that share
    their checks (the interval moves) or their interval (the checks move)."""
    (low_checks, low_interval), (high_checks, high_interval) = low, high
    middle = (low_checks / low_interval + high_checks / high_interval) / 2
    if low_checks == high_checks:
        return low_checks, low_checks / middle
    if low_interval != high_interval:
        raise ValueError(f"steps {low} and {high} must share their checks or their interval")
    return round(middle * low_interval), low_interval


def climb(
    args: argparse.Namespace,
    steps: list[tuple[int, float]],
    *,
    floor_after: Callable[[], dict[str, Any]] | None = None,
    floor_before: dict[str, Any] | None = None,
    refine: int = 0,
    **how: Any,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Run `(checks, interval)` steps in order until one is not sustained, then `refine`
    steps halving the gap between the last sustained rate and the lowest one that was
    not: (all run, the highest sustained one). The ladder's own steps are a tenth or more
    apart, so without refining the figure may stand a whole step below what the checker does.

    With `floor_after`, each step is followed by a floor run, and its share of the floor
    is of the mean of the floors on either side (the first step's earlier one is
    `floor_before`): this machine's speed drifts by up to two times over minutes, so only
    a floor measured seconds from the step compares with it.
    """
    ran: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    before = floor_before

    def run(checks: int, interval: float) -> dict[str, Any]:
        nonlocal before
        if floor_after is None:
            result = ladder_step(args, checks=checks, interval=interval, **how)
        else:
            result, before = step_between_floors(
                args, floor_after, before, checks=checks, interval=interval, **how
            )
        ran.append(result)
        return result

    good: tuple[int, float] | None = None
    bad: tuple[int, float] | None = None
    for checks, interval in steps:
        result = run(checks, interval)
        if not sustained(result):
            bad = (checks, interval)
            break
        best, good = result, (checks, interval)
    if good is None or bad is None:
        return ran, best
    for _ in range(refine):
        middle = between(good, bad)
        print(
            f"   halfway between {good[0] / good[1]:.0f}/s (sustained) and"
            f" {bad[0] / bad[1]:.0f}/s (not):",
            flush=True,
        )
        result = run(*middle)
        result["refined"] = True
        if sustained(result):
            best, good = result, middle
        else:
            bad = middle
    return ran, best


def floor_and_ladder(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """1) the floors, then the HTTP ladder with a floor run after each step."""
    print("1) the floor: the leanest connection-per-probe loop, flat out on the same core")
    floors = [floor(args, concurrency) for concurrency in args.floors]
    top = max(floors, key=lambda r: r["completed_per_s"])
    figures["floor_probes_per_s"] = round(top["completed_per_s"])
    figures["floor_cpu_us_per_probe"] = round(top["cpu_us_per_probe"], 1)
    figures["floor_sys_share"] = round(top["sys_s"] / max(top["cpu_s"], 1e-9), 2)
    raw = floor(args, 64, raw=True)
    figures["floor_raw_probes_per_s"] = round(raw["completed_per_s"])
    figures["floor_raw_cpu_us_per_probe"] = round(raw["cpu_us_per_probe"], 1)

    print(
        "   ladder of offered HTTP load, all targets healthy (protocol prober), each step"
        f" followed by the floor ({top['concurrency']} in flight) and the raw floor (64):"
        " a step's share is of the mean of the floors on either side of it"
    )

    def floors_after() -> dict[str, Any]:
        after = floor(args, top["concurrency"])
        after["raw_per_s"] = floor(args, 64, raw=True)["completed_per_s"]
        return after

    ladder, best = climb(
        args,
        [(args.checks, interval) for interval in args.ladder],
        mode="healthy",
        timeout=args.timeout,
        floor_after=floors_after,
        floor_before={**top, "raw_per_s": raw["completed_per_s"]},
        refine=args.refine,
    )
    figures["sustained_probes_per_s"] = round(best["completed_per_s"]) if best else 0
    figures["sustained_offered_per_s"] = round(best["offered_per_s"]) if best else 0
    figures["p99_lateness_ms_at_sustained"] = round(best["lateness_p99_ms"], 2) if best else None
    figures["cpu_util_at_sustained"] = round(best["cpu_util"], 3) if best else None
    figures["ladder"] = [
        {
            **step_figures(r),
            "checker_runq_wait_share": round(r["runq_wait_share"], 2),
            "floor_beside_per_s": round(r["floor_beside_per_s"]),
            "share_of_floor_beside": round(r["share_of_floor_beside"], 3),
            "raw_floor_beside_per_s": round(r["raw_floor_beside_per_s"]),
            "share_of_raw_floor_beside": round(r["share_of_raw_floor_beside"], 3),
        }
        for r in ladder
    ]
    figures["floor_beside_sustained_per_s"] = round(best["floor_beside_per_s"]) if best else 0
    figures["sustained_share_of_floor"] = round(best["share_of_floor_beside"], 3) if best else 0
    figures["sustained_share_of_first_floor"] = round(
        figures["sustained_probes_per_s"] / max(top["completed_per_s"], 1), 3
    )
    figures["sustained_share_of_floor_raw"] = round(
        figures["sustained_probes_per_s"] / max(raw["completed_per_s"], 1), 3
    )
    figures["raw_floor_beside_sustained_per_s"] = (
        round(best["raw_floor_beside_per_s"]) if best else 0
    )
    figures["sustained_share_of_raw_floor_beside"] = (
        round(best["share_of_raw_floor_beside"], 3) if best else 0
    )
    if best is not None:
        figures["cpu_us_per_probe_at_sustained"] = round(best["cpu_us_per_probe"], 1)


def prober_comparison(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """2) the checker's prober against aiohttp's client at one offered rate."""
    print(f"2) prober comparison at {args.compare_rate:.0f} probes/s offered, healthy targets")
    interval = args.checks / args.compare_rate
    compare = {}
    for prober in ("protocol", "aiohttp"):
        result = scenario(
            args,
            mode="healthy",
            checks=args.checks,
            interval=interval,
            timeout=args.timeout,
            prober=prober,
        )
        compare[prober] = result
        figures[f"{prober}_cpu_us_per_probe"] = round(result["cpu_us_per_probe"], 1)
        figures[f"{prober}_capacity_per_core"] = round(1e6 / result["cpu_us_per_probe"])
        figures[f"{prober}_checker_runq_wait_share"] = round(result["runq_wait_share"], 2)
        figures[f"{prober}_sys_share"] = round(result["sys_s"] / max(result["cpu_s"], 1e-9), 2)
    figures["protocol_vs_aiohttp_cpu_speedup"] = round(
        compare["aiohttp"]["cpu_us_per_probe"] / compare["protocol"]["cpu_us_per_probe"], 2
    )


# The dead modes of the ratio runs, by the name their figures go under.
RATIO_FIGURE_NAMES = {"refused": "refused", "blackhole": "blackholed", "slow": "slow"}

# A figure of one run, and when it ran (the middle of its scenario, monotonic seconds).
Timed = tuple[float, float]


def round_orders(modes: list[str], rounds: int) -> list[list[str]]:
    """The dead modes' order in each round, rotated by one each round: over as many
    rounds as modes, each mode runs once in each place (first and last, each next to a
    healthy run, and in the middle, furthest from one)."""
    return [modes[index % len(modes) :] + modes[: index % len(modes)] for index in range(rounds)]


def ratios_beside_healthy(
    healthy: list[Timed], rounds: list[list[tuple[str, Timed]]]
) -> dict[str, list[float]]:
    """Each dead run's figure over the healthy figure at the moment it ran.

    `healthy[k]` and `healthy[k + 1]` ran just before and just after round `k`, whose
    dead runs are `rounds[k]`; the healthy figure at a dead run's moment is read off the
    straight line between those two. The machine's speed drifts over minutes, and a dead
    run compared with one healthy run minutes away carries that drift into its ratio.
    """
    if len(healthy) != len(rounds) + 1:
        raise ValueError(f"{len(rounds)} rounds need {len(rounds) + 1} healthy runs")
    if any(value <= 0 for _, value in healthy):
        raise ValueError(f"a healthy run's figure must be positive: {healthy}")
    ratios: dict[str, list[float]] = {}
    for index, round_runs in enumerate(rounds):
        (start, before), (end, after) = healthy[index], healthy[index + 1]
        for name, (at, value) in round_runs:
            share = (at - start) / (end - start) if end > start else 0.5
            ratios.setdefault(name, []).append(value / (before + (after - before) * share))
    return ratios


def dead_vs_healthy(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """3) CPU with every target refused, blackholed or slow, over CPU with every target
    healthy at the same offered rate: rounds of the dead modes, with a healthy run before
    the first round and after each one. Each checker run is followed by the paced floor
    (`floor_paced_main`) against the same targets, so the machine's own dead/healthy
    ratio, what any prober pays, stands beside the checker's."""
    print(
        f"3) all-dead vs all-healthy CPU at {args.ratio_rate:.0f} probes/s offered,"
        f" timeout {args.ratio_timeout}s, slow targets answer after {args.slow_delay}s;"
        " a healthy run before and after each round, each checker run followed by the"
        " paced floor against the same targets"
    )

    def timed(measure: Callable[[], dict[str, Any]]) -> tuple[float, dict[str, Any]]:
        started = time.monotonic()
        result = measure()
        return (started + time.monotonic()) / 2, result

    def run(mode: str) -> dict[str, tuple[float, dict[str, Any]]]:
        interval = args.checks / args.ratio_rate
        return {
            "checker": timed(
                lambda: scenario(
                    args,
                    mode=mode,
                    checks=args.checks,
                    interval=interval,
                    timeout=args.ratio_timeout,
                )
            ),
            "paced": timed(
                lambda: paced_floor(
                    args, mode=mode, rate=args.ratio_rate, timeout=args.ratio_timeout
                )
            ),
        }

    healthy = [run("healthy")]
    rounds: list[list[tuple[str, dict[str, tuple[float, dict[str, Any]]]]]] = []
    for index, order in enumerate(round_orders(list(RATIO_FIGURE_NAMES), args.repeats)):
        print(f"  round {index + 1} of {args.repeats}")
        rounds.append([(RATIO_FIGURE_NAMES[mode], run(mode)) for mode in order])
        healthy.append(run("healthy"))

    def per_probe(r: dict[str, Any]) -> float:
        return float(r["cpu_s"] / max(r["started_per_s"] * r["wall_s"], 1))

    def beside(kind: str, figure: Callable[[dict[str, Any]], float]) -> dict[str, list[float]]:
        return ratios_beside_healthy(
            [(at, figure(r)) for at, r in (runs[kind] for runs in healthy)],
            [
                [(name, (runs[kind][0], figure(runs[kind][1]))) for name, runs in round_runs]
                for round_runs in rounds
            ],
        )

    # CPU per wall second is the constant-work figure when both start the same probes
    # per second; CPU per started probe stays comparable when noise starves one run.
    by_time = beside("checker", lambda r: float(r["cpu_util"]))
    by_probe = beside("checker", per_probe)
    paced_by_probe = beside("paced", per_probe)
    healthy_runs = [runs["checker"][1] for runs in healthy]
    mode_runs = {
        name: [runs["checker"][1] for round_runs in rounds for n, runs in round_runs if n == name]
        for name in RATIO_FIGURE_NAMES.values()
    }

    def checker_over_paced(pairs: list[dict[str, tuple[float, dict[str, Any]]]]) -> float:
        return round(
            float(
                np.median([per_probe(p["checker"][1]) / per_probe(p["paced"][1]) for p in pairs])
            ),
            3,
        )

    # Steal is the host's, so the paced floor's runs count as much as the checker's.
    every_run = [
        *healthy_runs,
        *(r for runs in mode_runs.values() for r in runs),
        *(runs["paced"][1] for runs in healthy),
        *(runs["paced"][1] for round_runs in rounds for _, runs in round_runs),
    ]
    figures["ratio_rounds"] = args.repeats
    figures["ratio_healthy_runs"] = len(healthy_runs)
    figures["ratio_healthy_cpu_util"] = round(
        float(np.median([r["cpu_util"] for r in healthy_runs])), 3
    )
    figures["ratio_healthy_started_per_s"] = round(
        float(np.median([r["started_per_s"] for r in healthy_runs]))
    )
    figures["ratio_healthy_checker_runq_wait_share"] = round(
        float(np.median([r["runq_wait_share"] for r in healthy_runs])), 2
    )
    figures["ratio_steal_share_max"] = round(max(r["steal_share"] for r in every_run), 3)
    figures["paced_floor_healthy_cpu_us_per_probe"] = round(
        float(np.median([per_probe(runs["paced"][1]) for runs in healthy])) * 1e6, 1
    )
    figures["checker_over_paced_floor_healthy"] = checker_over_paced(healthy)
    figures["paced_floor_failed_healthy"] = sum(runs["paced"][1]["failed"] for runs in healthy)
    for name, runs in mode_runs.items():
        figures[f"cpu_ratio_{name}_over_healthy"] = round(float(np.median(by_time[name])), 3)
        figures[f"cpu_per_probe_ratio_{name}_over_healthy"] = round(
            float(np.median(by_probe[name])), 3
        )
        figures[f"cpu_per_probe_ratios_{name}"] = [round(v, 3) for v in by_probe[name]]
        figures[f"paced_floor_cpu_per_probe_ratio_{name}_over_healthy"] = round(
            float(np.median(paced_by_probe[name])), 3
        )
        figures[f"paced_floor_cpu_per_probe_ratios_{name}"] = [
            round(v, 3) for v in paced_by_probe[name]
        ]
        pairs = [pair for round_runs in rounds for n, pair in round_runs if n == name]
        figures[f"checker_over_paced_floor_{name}"] = checker_over_paced(pairs)
        figures[f"paced_floor_failed_{name}"] = sum(pair["paced"][1]["failed"] for pair in pairs)
        figures[f"{name}_started_per_s"] = round(
            float(np.median([r["started_per_s"] for r in runs]))
        )
        figures[f"{name}_checker_runq_wait_share"] = round(
            float(np.median([r["runq_wait_share"] for r in runs])), 2
        )
        figures[f"{name}_skipped"] = sum(r["skipped"] for r in runs)
        figures[f"{name}_reasons"] = runs[-1]["reasons"]
        print(
            f"   {name}: CPU per probe {figures[f'cpu_per_probe_ratio_{name}_over_healthy']:.3f}"
            " of healthy, the paced floor's"
            f" {figures[f'paced_floor_cpu_per_probe_ratio_{name}_over_healthy']:.3f}"
        )


def https_section(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """4) the HTTPS ladder and CPU per probe (its share of HTTP needs the ladder's run)."""
    figures.update(https(args, figures))


SECTIONS: dict[str, Callable[[argparse.Namespace, dict[str, Any]], None]] = {
    "ladder": floor_and_ladder,
    "compare": prober_comparison,
    "ratio": dead_vs_healthy,
    "https": https_section,
}


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    print(
        f"checker throughput: checker on CPU {args.checker_cpu}, farm on CPU {args.farm_cpu},"
        f" {args.targets} target ports, window {args.duration}s after {args.warmup}s warm-up"
    )
    # In SECTIONS' order, whatever the command line's: the HTTPS share reads the ladder's.
    for section in SECTIONS:
        if section in args.sections:
            SECTIONS[section](args, figures)
    return figures


def https(args: argparse.Namespace, figures: dict[str, Any]) -> dict[str, Any]:
    """HTTPS on the same probe path: the ladder against a farm that lets sessions resume,
    then the CPU per probe of resumed and of full handshakes at one rate (unless that
    rate is 0)."""
    print(
        "4) HTTPS ladder: every check HTTPS, the TLS farm lets sessions resume"
        f" (timeout {args.timeout}s)"
    )
    ran, best = climb(
        args,
        [(round(rate), 1.0) for rate in args.https_ladder],
        mode="https",
        timeout=args.timeout,
        refine=args.refine,
    )
    out: dict[str, Any] = {
        "https_ladder": [
            {**step_figures(r), "farm_cpu_util": round(r["farm_cpu_util"], 2)} for r in ran
        ],
        "https_sustained_probes_per_s": round(best["completed_per_s"]) if best else 0,
        "https_p99_lateness_ms_at_sustained": round(best["lateness_p99_ms"], 2) if best else None,
    }
    http_rate = figures.get("sustained_probes_per_s") or 0
    out["https_share_of_http"] = (
        round(out["https_sustained_probes_per_s"] / http_rate, 3) if http_rate else None
    )
    rate = args.https_compare_rate
    if rate <= 0:
        return out
    print(f"   CPU per probe at {rate:.0f} probes/s offered: HTTP, HTTPS resumed, HTTPS full")
    for mode, key in (
        ("healthy", "http"),
        ("https", "https_resumed"),
        ("https-full", "https_full"),
    ):
        result = scenario(args, mode=mode, checks=round(rate), interval=1.0, timeout=args.timeout)
        out[f"{key}_cpu_us_per_probe"] = round(result["cpu_us_per_probe"], 1)
        if mode in HTTPS_MODES:
            handshakes = max(result["tls_handshakes"], 1)
            out[f"{key}_session_reused_share"] = round(result["tls_resumed"] / handshakes, 3)
            out[f"{key}_farm_cpu_util"] = round(result["farm_cpu_util"], 2)
    out["https_resumed_vs_http_cpu_per_probe"] = round(
        out["https_resumed_cpu_us_per_probe"] / max(out["http_cpu_us_per_probe"], 1e-9), 2
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows, for a smoke run")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=list(SECTIONS),
        default=list(SECTIONS),
        help="what to run (always in the order listed; default: all)",
    )
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--targets", type=int, default=200, help="target ports in the farm")
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument(
        "--ladder",
        type=float,
        nargs="+",
        default=DEFAULT_LADDER,
        help="probe intervals to try for --checks checks, loosest first",
    )
    parser.add_argument(
        "--floors",
        type=int,
        nargs="+",
        default=[64, 256],
        help="probes in flight of each uvloop floor run (the raw floor runs 64)",
    )
    parser.add_argument(
        "--refine",
        type=int,
        help="steps halving the gap past the last sustained ladder step (default 2; --quick: 0)",
    )
    parser.add_argument("--compare-rate", type=float, default=4_000.0)
    parser.add_argument("--ratio-rate", type=float, default=5_000.0)
    parser.add_argument("--ratio-timeout", type=float, default=0.25)
    parser.add_argument("--slow-delay", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the ratio runs")
    parser.add_argument(
        "--https-ladder",
        type=float,
        nargs="+",
        default=DEFAULT_HTTPS_LADDER,
        help="offered HTTPS probes/s to try, lowest first",
    )
    parser.add_argument(
        "--https-compare-rate",
        type=float,
        default=500.0,
        help="offered probes/s of the HTTP/HTTPS CPU comparison; 0: no comparison",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=STARVED_RETRIES,
        help="runs again of a ladder step that failed while the checker was starved",
    )
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--checker-cpu", type=int, default=0)
    parser.add_argument("--farm-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--farm", help=argparse.SUPPRESS)
    parser.add_argument("--farm-count", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--farm-delay", type=float, default=0.1, help=argparse.SUPPRESS)
    parser.add_argument("--checker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor-raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor-paced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.farm:
        cpu = args.farm_cpu if args.farm_cpu is not None and args.farm_cpu >= 0 else None
        farm_main(args.farm, args.farm_count, args.farm_delay, cpu)
        return 0
    if args.checker:
        checker_main()
        return 0
    if args.floor:
        floor_main()
        return 0
    if args.floor_raw:
        floor_raw_main()
        return 0
    if args.floor_paced:
        floor_paced_main()
        return 0
    if args.repeats < 1 and "ratio" in args.sections:
        parser.error("--repeats must be at least 1 for the ratio runs")
    if args.refine is None:
        args.refine = 0 if args.quick else 2
    if args.refine < 0:
        parser.error("--refine must be 0 or more")
    if args.no_pin:
        args.checker_cpu = args.farm_cpu = None
    if args.quick:
        args.warmup, args.duration, args.repeats = 1.5, 3.0, 1
        if args.ladder == DEFAULT_LADDER:
            args.ladder = DEFAULT_LADDER[1:4]
        if args.https_ladder == DEFAULT_HTTPS_LADDER:
            args.https_ladder = DEFAULT_HTTPS_LADDER[:3]
    figures = orchestrate(args)
    figures["machine_cpus"] = os.cpu_count()
    print(json.dumps({"bench": BENCH, "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
