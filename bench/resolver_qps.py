"""Resolver throughput and per-query CPU cost, all healthy vs all unhealthy, side by side.

Starts one `urn resolver` process (pinned to one CPU when the machine has two or more)
with a config of 8-answer multivalue names, pushes a signed aggregated table, and drives
it from other processes: `dnsperf` for DNS/UDP and `wrk` for the JSON API (a Python load
generator when either is missing; it says so). Rounds alternate all-healthy and
all-unhealthy tables; per-query cost is the resolver process's CPU time (user + system,
from /proc) divided by the queries it answered. All unhealthy means every query fails
open with 8 answers, so the same bytes go out: the ratio should be 1.00 within noise.

    python -m bench.resolver_qps [--seconds 5] [--rounds 2] [--names 100]

Ends with one JSON line: {"bench": "resolver_qps", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resolver.testing import TEST_ENVIRON, free_dns_port, multivalue_record, tcp_checks
from urn.table import Reason, Status, aggregated_byte
from urn.testing import document_dict, free_port, signed_table
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Callable

CAPACITY = 10_000
ANSWERS = 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def table(status: Status) -> bytes:
    reason = Reason.TIMEOUT if status is Status.UNHEALTHY else Reason.NO_DATA
    return bytes([aggregated_byte(status, reason)]) * CAPACITY


class Resolver:
    def __init__(self, workdir: Path, names: int, cpu: int | None) -> None:
        records = [
            multivalue_record(f"n{i}.example.com.", ANSWERS, first_slot=i * ANSWERS)
            for i in range(names)
        ]
        document = document_dict(
            checks=tcp_checks(range(names * ANSWERS)),
            records=records,
            capacity=CAPACITY,
            max_table_age=3600.0,
            intervals={"probe": 1.0, "push": 1.0, "config": 5.0},
        )
        config = workdir / "urn.json"
        config.write_text(json.dumps(document))
        self.names = [f"n{i}.example.com." for i in range(names)]
        self.http_port = free_port()
        self.dns_port = free_dns_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "urn", "resolver", "--config", str(config),
                "--id", "bench", "--listen", f"127.0.0.1:{self.http_port}",
                "--dns", f"127.0.0.1:{self.dns_port}", "--log-level", "warning",
            ],
            env={**os.environ, **TEST_ENVIRON},
        )  # fmt: skip
        if cpu is not None:
            os.sched_setaffinity(self.process.pid, {cpu})
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("resolver did not become healthy")
            time.sleep(0.05)
        self.sequence = 0

    def push(self, status: Status) -> None:
        self.sequence += 1
        body = signed_table(
            table(status), kind=TableKind.AGGREGATE, sender="bench-agg", sequence=self.sequence
        )
        request = urllib.request.Request(
            f"{self.url}/v1/table", data=body, headers={"Content-Type": "application/msgpack"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_dnsperf(resolver: Resolver, seconds: float, workdir: Path, cpu: int | None) -> int:
    queries = workdir / "queries.txt"
    queries.write_text("".join(f"{name} A\n" for name in resolver.names))
    command = [
        "dnsperf", "-s", "127.0.0.1", "-p", str(resolver.dns_port), "-d", str(queries),
        "-l", str(seconds), "-q", "500", "-c", "1", "-T", "1",
    ]  # fmt: skip
    out = subprocess.run(
        _pinned(command, cpu), capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    match = re.search(r"Queries completed:\s+(\d+)", out)
    if match is None:
        raise SystemExit(f"could not read dnsperf output:\n{out}")
    return int(match.group(1))


def run_wrk(resolver: Resolver, seconds: float, cpu: int | None) -> int:
    url = f"{resolver.url}/v1/resolve?name={resolver.names[0]}&type=A"
    command = ["wrk", "-t", "1", "-c", "32", "-d", f"{seconds:g}s", url]
    out = subprocess.run(
        _pinned(command, cpu), capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise SystemExit(f"could not read wrk output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non_2xx:
        raise SystemExit(f"wrk saw {non_2xx.group(1)} error responses")
    return int(match.group(1))


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    if cpu is not None and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *command]
    return command


async def _python_udp(port: int, names: list[str], seconds: float) -> int:
    """Fallback DNS load: 64 queries in flight over one UDP socket for `seconds`."""
    import dns.message

    wires = [dns.message.make_query(name, "A").to_wire() for name in names]
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        done = 0
        deadline = time.monotonic() + seconds
        for i in range(64):
            sock.send(wires[i % len(wires)])
        while time.monotonic() < deadline:
            try:
                async with asyncio.timeout(1):
                    await loop.sock_recv(sock, 4096)
            except TimeoutError:
                for i in range(64):
                    sock.send(wires[i % len(wires)])
                continue
            done += 1
            sock.send(wires[done % len(wires)])
        return done


async def _python_http(url: str, seconds: float) -> int:
    """Fallback JSON load: 32 concurrent keep-alive clients for `seconds`."""
    import aiohttp

    done = 0
    deadline = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            async with session.get(url) as response:
                await response.read()
                done += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(32)))
    return done


def udp_load(
    resolver: Resolver, seconds: float, workdir: Path, cpu: int | None, dnsperf: bool
) -> Callable[[], int]:
    if dnsperf:
        return lambda: run_dnsperf(resolver, seconds, workdir, cpu)
    return lambda: asyncio.run(_python_udp(resolver.dns_port, resolver.names, seconds))


def json_load(resolver: Resolver, seconds: float, cpu: int | None, wrk: bool) -> Callable[[], int]:
    if wrk:
        return lambda: run_wrk(resolver, seconds, cpu)
    url = f"{resolver.url}/v1/resolve?name={resolver.names[0]}&type=A"
    return lambda: asyncio.run(_python_http(url, seconds))


def measure(resolver: Resolver, load: Any, status: Status, seconds: float) -> tuple[float, float]:
    """(queries per second, resolver CPU microseconds per query) under one table."""
    resolver.push(status)
    cpu_before = cpu_seconds(resolver.process.pid)
    start = time.monotonic()
    queries = load()
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(resolver.process.pid) - cpu_before
    return queries / elapsed, cpu / max(queries, 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=2, help="healthy/unhealthy pairs per load")
    parser.add_argument("--names", type=int, default=100, help="8-answer multivalue names")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    have_dnsperf = shutil.which("dnsperf") is not None
    have_wrk = shutil.which("wrk") is not None
    print(f"cpus {cpus}; resolver pinned to {server_cpu}, load generators to {load_cpu}")
    if not have_dnsperf:
        print(
            "dnsperf not found: falling back to a Python UDP load generator (slower; low figures)"
        )
    if not have_wrk:
        print("wrk not found: falling back to a Python HTTP load generator (slower; low figures)")
    figures: dict[str, Any] = {"names": args.names, "answers_per_name": ANSWERS}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        resolver = Resolver(workdir, args.names, server_cpu)
        try:
            loads = {"udp": udp_load(resolver, args.seconds, workdir, load_cpu, have_dnsperf)}
            loads["json"] = json_load(resolver, args.seconds, load_cpu, have_wrk)
            for transport, load in loads.items():
                results: dict[Status, list[tuple[float, float]]] = {
                    Status.HEALTHY: [],
                    Status.UNHEALTHY: [],
                }
                for round_ in range(args.rounds):
                    order = (Status.HEALTHY, Status.UNHEALTHY)
                    for status in order if round_ % 2 == 0 else order[::-1]:
                        qps, cost = measure(resolver, load, status, args.seconds)
                        results[status].append((qps, cost))
                        print(
                            f"{transport:4} round {round_ + 1} {status.label:9}: "
                            f"{qps:9,.0f} qps  {cost:6.2f} us CPU/query"
                        )
                healthy_qps = statistics.median(q for q, _ in results[Status.HEALTHY])
                unhealthy_qps = statistics.median(q for q, _ in results[Status.UNHEALTHY])
                healthy_cost = statistics.median(c for _, c in results[Status.HEALTHY])
                unhealthy_cost = statistics.median(c for _, c in results[Status.UNHEALTHY])
                ratio = unhealthy_cost / healthy_cost
                print(
                    f"{transport:4} median: healthy {healthy_qps:,.0f} qps, unhealthy "
                    f"{unhealthy_qps:,.0f} qps; CPU/query unhealthy/healthy = {ratio:.3f}"
                )
                figures[f"{transport}_qps_healthy"] = round(healthy_qps)
                figures[f"{transport}_qps_unhealthy"] = round(unhealthy_qps)
                figures[f"{transport}_cpu_us_per_query_healthy"] = round(healthy_cost, 3)
                figures[f"{transport}_cpu_us_per_query_unhealthy"] = round(unhealthy_cost, 3)
                figures[f"{transport}_cpu_ratio_unhealthy_vs_healthy"] = round(ratio, 3)
        finally:
            resolver.stop()
    figures["load_generators"] = {
        "udp": "dnsperf" if have_dnsperf else "python",
        "json": "wrk" if have_wrk else "python",
    }
    print(json.dumps({"bench": "resolver_qps", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
