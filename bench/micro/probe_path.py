"""The checker's probe path without the kernel: Python per probe, beside the leanest loop.

Run: `.venv/bin/python -m bench.micro.probe_path [--rounds R] [--seconds S]`.
A real `CheckerService` (10,000 checks, FakeClock) launches and sweeps probes on a 5 ms
grid at 20,000 probes/s, as its probe loop does, with the engine's sockets and epoll set
replaced by fakes whose calls return at once (`open_socket` is the engine's seam for
this): every answer is a healthy one, ready at the next sweep. Beside it, in alternate
rounds, the raw floor's loop (`bench.checker_throughput.floor_raw_main`, closed loop, 64
in flight) on the same fakes. What is measured is the Python the checker runs per probe
(schedule, probe state, verdict, table, deadlines) over what the leanest loop runs:
the part of the checker's cost its own code decides, free of this VM's kernel noise.
A real probe pays more for the same Python (its system calls evict the interpreter's
working set: docs/checker.md), so this is for comparing changes, not the figure itself.
Ends with one JSON line: {"bench": "probe_path", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import itertools
import json
import os
import select
import statistics
import time
from typing import Any

import checker.probers as probers
from bench.checker_throughput import PUSH_KEY, checker_config
from checker.app import build_service
from checker.settings import CheckerSettings
from sim.farm import HEALTHY
from sim.testing import MemoryTransport

__all__ = ["main"]

CHECKS = 10_000
RATE = 20_000.0
TICK = 0.005
TARGETS = 200
_descriptors = itertools.count(1_000)


class FakeSocket:
    """A connection that is up at once and answers healthy: each call returns at once."""

    __slots__ = ("fd",)

    def __init__(self, family: int = 0, kind: int = 0) -> None:
        self.fd = next(_descriptors)

    def connect_ex(self, address: object) -> int:
        return errno.EINPROGRESS

    def send(self, data: bytes) -> int:
        return len(data)

    def recv(self, size: int) -> bytes:
        return HEALTHY

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd


class SteppedClock:
    """The service's clock, set by the driver to each wake's time (nothing sleeps here)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now + 1_700_000_000.0

    async def sleep_until(self, deadline: float) -> None:
        raise NotImplementedError("the driver runs the probe loop's steps itself")


class FakePoll:
    """An epoll set where every registered socket is ready by the next poll."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, int]] = []

    def register(self, fd: int, mask: int) -> None:
        self.pending.append((fd, select.EPOLLIN))

    def poll(self, timeout: float, most: int) -> list[tuple[int, int]]:
        ready, self.pending = self.pending[:most], self.pending[most:]
        return ready


async def _checker_rounds(path: str, rounds: int, seconds: float) -> list[float]:
    """ns per probe of the checker's launch and sweep, one figure per round."""
    clock = SteppedClock()
    settings = CheckerSettings(id="chk-bench", az="a", config=path, fd_limit=(100_000, 100_000))
    service = await build_service(
        settings, clock=clock, environ={"URN_PUSH_KEY": PUSH_KEY}, transport=MemoryTransport()
    )
    engine = service.engine
    engine._poll = FakePoll()  # type: ignore[assignment]  # in place of the real epoll set
    now = clock.monotonic()

    def run(ticks: int) -> None:
        nonlocal now
        for _ in range(ticks):
            now += TICK
            clock.now = now
            engine.sweep(now)
            while service.launch(now):
                engine.sweep(now)

    run(200)  # a second of warm-up: every deadline FIFO filled
    figures = []
    for _ in range(rounds):
        started, probes = time.perf_counter_ns(), service.probes_started
        run(round(seconds / TICK))
        figures.append((time.perf_counter_ns() - started) / (service.probes_started - probes))
        service.flush_metrics()  # as every push does
    return figures


def _raw_round(probes: int) -> float:
    """ns per probe of the raw floor's loop on the fakes, over `probes` probes."""
    targets = [(("127.0.0.1", 8_000 + i), b"GET / HTTP/1.1\r\n\r\n") for i in range(TARGETS)]
    poll = FakePoll()
    open_: dict[int, list[Any]] = {}
    counts = [0, 0]
    state = {"next": 0}

    def launch() -> None:
        index = state["next"]
        state["next"] = index + 1
        address, request = targets[index % len(targets)]
        sock = FakeSocket()
        sock.connect_ex(address)
        sock.send(request)
        open_[sock.fileno()] = [sock, None]
        poll.register(sock.fileno(), select.EPOLLIN | select.EPOLLET)

    def ready() -> None:
        for fd, _ in poll.poll(0, 512):
            sock = open_[fd][0]
            data = sock.recv(16384)
            counts[0 if data.startswith(b"HTTP/1.1 2") else 1] += 1
            del open_[fd]
            sock.close()
            launch()

    for _ in range(64):
        launch()
    while counts[0] < 10_000:
        ready()
    started, done = time.perf_counter_ns(), counts[0]
    while counts[0] - done < probes:
        ready()
    return (time.perf_counter_ns() - started) / (counts[0] - done)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=1.0, help="simulated, per round")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be at least 1 and --seconds positive")
    spec = {
        "checks": CHECKS,
        "targets": [(8_000 + i, "/") for i in range(TARGETS)],
        "interval": CHECKS / RATE,
        "timeout": 1.0,
    }
    path, _ = checker_config(spec)
    seam = probers.open_socket
    probers.open_socket = FakeSocket  # type: ignore[assignment]
    try:
        checker: list[float] = []
        raw: list[float] = []
        for _ in range(args.rounds):  # alternate, so the machine's drift hits both alike
            checker += asyncio.run(_checker_rounds(path, 1, args.seconds))
            raw.append(_raw_round(round(RATE * args.seconds)))
    finally:
        probers.open_socket = seam
        os.unlink(path)
    ratios = [c / r for c, r in zip(checker, raw, strict=True)]
    figures = {
        "checker_ns_per_probe_best": round(min(checker)),
        "checker_ns_per_probe_median": round(statistics.median(checker)),
        "raw_loop_ns_per_probe_best": round(min(raw)),
        "raw_loop_ns_per_probe_median": round(statistics.median(raw)),
        "checker_over_raw_loop_median": round(statistics.median(ratios), 3),
    }
    print(f"{'loop':10} {'best ns':>8} {'median ns':>10}   (per probe, sockets faked)")
    print(f"{'checker':10} {min(checker):8.0f} {statistics.median(checker):10.0f}")
    print(f"{'raw loop':10} {min(raw):8.0f} {statistics.median(raw):10.0f}")
    print(f"checker over raw loop, round by round (median): {statistics.median(ratios):.3f}")
    print(json.dumps({"bench": "probe_path", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
