"""Resolver throughput and per-query CPU cost, all healthy vs all unhealthy, side by side.

Starts one `urn resolver` process (pinned to one CPU when the machine has two or more)
with a config of 8-answer multivalue names, pushes a signed aggregated table, and drives
it from other processes: `dnsperf` for DNS over UDP, over TLS and over HTTPS (HTTP/2),
and `wrk` for the JSON API over HTTPS (a Python load generator when either is missing;
it says so). Every TLS server, baselines too, serves one certificate from a throwaway
CA. Rounds alternate all-healthy and all-unhealthy tables, with the baselines (a uvloop
UDP echo server, a uvloop DNS-over-TLS echo server, a bare h2 DoH echo server and a
one-route aiohttp app over HTTPS) measured in the same rounds; per-query cost is the
server process's CPU time (user + system, from /proc) divided by the queries it
answered, and 1e6 / that cost is the qps one core would serve: on a busy machine that
figure is steadier than measured qps.
All unhealthy means every query fails open with 8 answers, so the same bytes go out: the
ratio should be 1.00 within noise.

    python -m bench.resolver_qps [--seconds 5] [--rounds 3] [--names 100] [--config-interval 5]

Ends with one JSON line: {"bench": "resolver_qps", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sim.testing import document_dict, free_port, signed_table
from sim.testing.resolver import TEST_ENVIRON, multivalue_record, tcp_checks
from urn.table import Reason, Status, aggregated_byte
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main"]

CAPACITY = 10_000
ANSWERS = 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# Baselines on the same machine, same loop and load generators: a UDP server that answers
# every query with its own bytes (QR set) and an aiohttp app with one constant JSON route.
# They are the ceiling a Python resolver can reach here; resolver / baseline says how much
# of that ceiling the answering itself costs.
ECHO_SERVER = """
import asyncio, socket, sys, uvloop
class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport): self.transport = transport
    def datagram_received(self, data, addr):
        self.transport.sendto(data[:2] + bytes([data[2] | 0x80]) + data[3:], addr)
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", int(sys.argv[1])))
    await asyncio.Event().wait()
uvloop.run(main())
"""
TLS_ECHO_SERVER = """
import asyncio, ssl, sys, uvloop
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, bytearray()
    def data_received(self, data):
        buffer = self.buffer
        buffer += data
        out = []
        while len(buffer) >= 2 and len(buffer) >= 2 + (buffer[0] << 8 | buffer[1]):
            size = buffer[0] << 8 | buffer[1]
            message = bytes(buffer[2:2 + size])
            del buffer[:2 + size]
            reply = message[:2] + bytes([message[2] | 0x80]) + message[3:]
            out.append(size.to_bytes(2, "big") + reply)
        if out:
            self.transport.write(b"".join(out))
async def main():
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    loop = asyncio.get_running_loop()
    await loop.create_server(Echo, "127.0.0.1", int(sys.argv[1]), ssl=context)
    await asyncio.Event().wait()
uvloop.run(main())
"""
# The leanest DoH server on the same library: h2 with its header checks off, one TLS
# context, each GET's query echoed back (QR set) as its own write, as the resolver does.
H2_ECHO_SERVER = """
import asyncio, base64, ssl, sys, uvloop
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, RequestReceived
CONFIG = dict(client_side=False, header_encoding=None, validate_outbound_headers=False,
              normalize_outbound_headers=False, validate_inbound_headers=False,
              normalize_inbound_headers=False)
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.conn = transport, H2Connection(H2Configuration(**CONFIG))
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())
    def data_received(self, data):
        conn = self.conn
        for event in conn.receive_data(data):
            if isinstance(event, RequestReceived):
                path = dict(event.headers)[b":path"]
                value = path.partition(b"dns=")[2]
                query = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
                reply = query[:2] + bytes([query[2] | 0x80]) + query[3:]
                conn.send_headers(event.stream_id, [(b":status", b"200"),
                    (b"content-type", b"application/dns-message"),
                    (b"content-length", str(len(reply)).encode())])
                conn.send_data(event.stream_id, reply, end_stream=True)
                self.transport.write(conn.data_to_send())
            elif isinstance(event, DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        out = conn.data_to_send()
        if out:
            self.transport.write(out)
async def main():
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    context.set_alpn_protocols(["h2"])
    loop = asyncio.get_running_loop()
    await loop.create_server(Echo, "127.0.0.1", int(sys.argv[1]), ssl=context)
    await asyncio.Event().wait()
uvloop.run(main())
"""
HTTP_SERVER = """
import ssl, sys, uvloop
from aiohttp import web
BODY = '{"Status":0,"Answer":[]}'
async def handler(request):
    return web.Response(text=BODY, content_type="application/json")
app = web.Application()
app.router.add_get("/v1/resolve", handler)
app.router.add_get("/healthz", handler)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(sys.argv[2], sys.argv[3])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
            ssl_context=context, loop=uvloop.new_event_loop())
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def table(status: Status) -> bytes:
    reason = Reason.TIMEOUT if status is Status.UNHEALTHY else Reason.NO_DATA
    return bytes([aggregated_byte(status, reason)]) * CAPACITY


def certificate(workdir: Path) -> tuple[tuple[Path, Path], ssl.SSLContext]:
    """A certificate for 127.0.0.1 from a throwaway CA: (cert, key) paths, and a client
    context that trusts it. Every TLS server here serves it, baselines included."""
    import trustme

    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return (cert, key), context


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], context: ssl.SSLContext | None = None
) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1, context=context) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{url} did not become healthy")
        time.sleep(0.05)


class Baseline:
    """The echo UDP and DNS-over-TLS servers and the constant-JSON aiohttp app, one process
    each, same CPU pin."""

    def __init__(
        self, names: list[str], cpu: int | None, tls: tuple[Path, Path], context: ssl.SSLContext
    ) -> None:
        self.names = names
        self.dns_port = free_port(udp=True)
        self.dot_port = free_port()
        self.http_port = free_port()
        self.url = f"https://127.0.0.1:{self.http_port}"
        self.udp = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(self.dns_port)])
        self.dot = subprocess.Popen(
            [sys.executable, "-c", TLS_ECHO_SERVER, str(self.dot_port), *map(str, tls)]
        )
        self.doh_port = free_port()
        self.doh = subprocess.Popen(
            [sys.executable, "-c", H2_ECHO_SERVER, str(self.doh_port), *map(str, tls)]
        )
        self.http = subprocess.Popen(
            [sys.executable, "-c", HTTP_SERVER, str(self.http_port), *map(str, tls)]
        )
        if cpu is not None:
            for process in (self.udp, self.dot, self.doh, self.http):
                os.sched_setaffinity(process.pid, {cpu})
        _wait_healthy(self.url, self.http, context)

    def stop(self) -> None:
        for process in (self.udp, self.dot, self.doh, self.http):
            process.terminate()
            process.wait(10)


class Resolver:
    def __init__(
        self,
        workdir: Path,
        names: int,
        cpu: int | None,
        config_interval: float,
        tls: tuple[Path, Path],
        context: ssl.SSLContext,
    ) -> None:
        records = [
            multivalue_record(f"n{i}.example.com.", ANSWERS, first_slot=i * ANSWERS)
            for i in range(names)
        ]
        document = document_dict(
            checks=tcp_checks(range(names * ANSWERS)),
            records=records,
            capacity=CAPACITY,
            max_table_age=3600.0,
            intervals={"probe": 1.0, "push": 1.0, "config": config_interval},
            tls={"cert": str(tls[0]), "key": str(tls[1])},
        )
        config = workdir / "urn.json"
        config.write_text(json.dumps(document))
        self.names = [f"n{i}.example.com." for i in range(names)]
        self.http_port = free_port()
        self.dns_port = free_port(udp=True)
        self.dot_port = free_port()
        self.doh_port = self.http_port  # DoH over HTTP/2 on the HTTPS listener
        self.url = f"https://127.0.0.1:{self.http_port}"
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "urn", "resolver", "--config", str(config),
                "--id", "bench", "--listen", f"127.0.0.1:{self.http_port}",
                "--dns", f"127.0.0.1:{self.dns_port}", "--dot", f"127.0.0.1:{self.dot_port}",
                "--log-level", "warning",
            ],
            env={**os.environ, **TEST_ENVIRON},
        )  # fmt: skip
        if cpu is not None:
            os.sched_setaffinity(self.process.pid, {cpu})
        self.context = context
        _wait_healthy(self.url, self.process, context)
        self.sequence = 0

    def push(self, status: Status) -> None:
        self.sequence += 1
        body = signed_table(
            table(status), kind=TableKind.AGGREGATE, sender="bench-agg", sequence=self.sequence
        )
        request = urllib.request.Request(
            f"{self.url}/v1/table", data=body, headers={"Content-Type": "application/msgpack"}
        )
        with urllib.request.urlopen(request, timeout=5, context=self.context) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Run(NamedTuple):
    """One load run: queries answered, the generator's own rate, and a latency in ms
    (dnsperf: average; wrk: 99th percentile; Python fallbacks: none)."""

    queries: int
    qps: float
    latency_ms: float | None


def run_dnsperf(
    resolver: Resolver | Baseline,
    seconds: float,
    workdir: Path,
    cpu: int | None,
    mode: str = "udp",
) -> Run:
    """dnsperf in `mode` (udp, dot, doh) for `seconds`: over a stream, 8 connections with
    up to 500 queries outstanding in all (pipelined on each; DoH: 100, as dnsperf's DoH
    client loses replies past that)."""
    queries = workdir / "queries.txt"
    queries.write_text("".join(f"{name} A\n" for name in resolver.names))
    port = {"udp": resolver.dns_port, "dot": resolver.dot_port, "doh": resolver.doh_port}[mode]
    command = [
        "dnsperf", "-m", mode, "-s", "127.0.0.1", "-p", str(port), "-d", str(queries),
        "-l", str(seconds), "-q", "100" if mode == "doh" else "500",
        "-c", "1" if mode == "udp" else "8", "-T", "1",
    ]  # fmt: skip
    if mode == "doh":
        command += ["-O", f"doh-uri=https://127.0.0.1:{port}/dns-query"]
    out = subprocess.run(
        _pinned(command, cpu), capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    completed = re.search(r"Queries completed:\s+(\d+)", out)
    rate = re.search(r"Queries per second:\s+([\d.]+)", out)
    latency = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    if completed is None or rate is None or latency is None:
        raise SystemExit(f"could not read dnsperf output:\n{out}")
    return Run(int(completed.group(1)), float(rate.group(1)), float(latency.group(1)) * 1e3)


def run_wrk(resolver: Resolver | Baseline, seconds: float, cpu: int | None) -> Run:
    url = f"{resolver.url}/v1/resolve?name={resolver.names[0]}&type=A"
    # wrk takes whole seconds only (it refuses "0.3s" with its usage text).
    duration = f"{max(1, math.ceil(seconds))}s"
    command = ["wrk", "-t", "1", "-c", "32", "-d", duration, "--latency", url]
    out = subprocess.run(
        _pinned(command, cpu), capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise SystemExit(f"could not read wrk output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non_2xx:
        raise SystemExit(f"wrk saw {non_2xx.group(1)} error responses")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    latency = None
    if p99 is not None:
        latency = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return Run(int(match.group(1)), float(rate.group(1)) if rate else 0.0, latency)


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

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        await asyncio.gather(*(client(session) for _ in range(32)))
    return done


def udp_load(
    resolver: Resolver | Baseline, seconds: float, workdir: Path, cpu: int | None, dnsperf: bool
) -> Callable[[], Run]:
    if dnsperf:
        return lambda: run_dnsperf(resolver, seconds, workdir, cpu)
    names = resolver.names
    return lambda: _fallback(asyncio.run(_python_udp(resolver.dns_port, names, seconds)), seconds)


def stream_load(
    resolver: Resolver | Baseline, seconds: float, workdir: Path, cpu: int | None, mode: str
) -> Callable[[], Run]:
    return lambda: run_dnsperf(resolver, seconds, workdir, cpu, mode)


def json_load(
    resolver: Resolver | Baseline, seconds: float, cpu: int | None, wrk: bool
) -> Callable[[], Run]:
    if wrk:
        return lambda: run_wrk(resolver, seconds, cpu)
    url = f"{resolver.url}/v1/resolve?name={resolver.names[0]}&type=A"
    return lambda: _fallback(asyncio.run(_python_http(url, seconds)), seconds)


def _fallback(queries: int, seconds: float) -> Run:
    return Run(queries, queries / seconds, None)


def measure(pid: int, load: Callable[[], Run]) -> tuple[Run, float]:
    """One load run and the server's CPU microseconds per query during it."""
    cpu_before = cpu_seconds(pid)
    run = load()
    cpu = cpu_seconds(pid) - cpu_before
    return run, cpu / max(run.queries, 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of healthy/unhealthy/baseline"
    )
    parser.add_argument("--names", type=int, default=100, help="8-answer multivalue names")
    parser.add_argument(
        "--config-interval",
        type=float,
        default=5.0,
        help="the resolver re-reads and re-applies its config this often, during the runs too",
    )
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    have_dnsperf = shutil.which("dnsperf") is not None
    have_wrk = shutil.which("wrk") is not None
    print(f"cpus {cpus}; servers pinned to {server_cpu}, load generators to {load_cpu}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other work skews every figure)")
    if not have_dnsperf:
        print(
            "dnsperf not found: falling back to a Python UDP load generator (slower; low figures)"
        )
    if not have_wrk:
        print("wrk not found: falling back to a Python HTTP load generator (slower; low figures)")
    figures: dict[str, Any] = {
        "names": args.names,
        "answers_per_name": ANSWERS,
        "config_interval_s": args.config_interval,
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tls, context = certificate(workdir)
        resolver = Resolver(workdir, args.names, server_cpu, args.config_interval, tls, context)
        baseline = Baseline(resolver.names, server_cpu, tls, context)
        try:
            for transport in ("udp", "dot", "doh", "json"):
                if transport == "udp":
                    load = udp_load(resolver, args.seconds, workdir, load_cpu, have_dnsperf)
                    reference = udp_load(baseline, args.seconds, workdir, load_cpu, have_dnsperf)
                    reference_pid = baseline.udp.pid
                elif transport in ("dot", "doh"):
                    if not have_dnsperf:
                        print(f"{transport}: skipped, dnsperf not found")
                        continue
                    load = stream_load(resolver, args.seconds, workdir, load_cpu, transport)
                    reference = stream_load(baseline, args.seconds, workdir, load_cpu, transport)
                    reference_pid = (baseline.dot if transport == "dot" else baseline.doh).pid
                else:
                    load = json_load(resolver, args.seconds, load_cpu, have_wrk)
                    reference = json_load(baseline, args.seconds, load_cpu, have_wrk)
                    reference_pid = baseline.http.pid
                results: dict[str, list[tuple[Run, float]]] = {
                    "healthy": [], "unhealthy": [], "baseline": []
                }  # fmt: skip
                latency_name = "p99" if transport == "json" else "avg"
                for round_ in range(args.rounds):
                    order = ["healthy", "unhealthy", "baseline"]
                    for kind in order if round_ % 2 == 0 else order[::-1]:
                        if kind == "baseline":
                            run, cost = measure(reference_pid, reference)
                        else:
                            status = Status.HEALTHY if kind == "healthy" else Status.UNHEALTHY
                            resolver.push(status)
                            run, cost = measure(resolver.process.pid, load)
                        results[kind].append((run, cost))
                        latency = "    n/a" if run.latency_ms is None else f"{run.latency_ms:7.3f}"
                        print(
                            f"{transport:4} round {round_ + 1} {kind:9}: {run.qps:9,.0f} qps "
                            f"{cost:7.2f} us CPU/query  {latency_name} latency ms {latency}"
                        )
                qps = {k: statistics.median(r.qps for r, _ in v) for k, v in results.items()}
                costs = {k: statistics.median(c for _, c in v) for k, v in results.items()}
                ratio = costs["unhealthy"] / costs["healthy"]
                print(
                    f"{transport:4} median: healthy {qps['healthy']:,.0f} qps, unhealthy "
                    f"{qps['unhealthy']:,.0f} qps, baseline {qps['baseline']:,.0f} qps; "
                    f"CPU/query unhealthy/healthy = {ratio:.3f}"
                )
                for kind, runs in results.items():
                    figures[f"{transport}_qps_{kind}"] = round(qps[kind])
                    figures[f"{transport}_cpu_us_per_query_{kind}"] = round(costs[kind], 3)
                    latencies = [r.latency_ms for r, _ in runs if r.latency_ms is not None]
                    if latencies:
                        figures[f"{transport}_{latency_name}_latency_ms_{kind}"] = round(
                            statistics.median(latencies), 3
                        )
                # What one core would serve if it did nothing else: the figure that survives
                # a busy machine best, since CPU per query moves less than qps does.
                figures[f"{transport}_qps_ceiling_one_core_healthy"] = round(1e6 / costs["healthy"])
                print(
                    f"{transport:4} CPU/query healthy {costs['healthy']:.2f} us, baseline "
                    f"{costs['baseline']:.2f} us: one busy core would serve "
                    f"{1e6 / costs['healthy']:,.0f} qps"
                )
                figures[f"{transport}_cpu_ratio_unhealthy_vs_healthy"] = round(ratio, 3)
                figures[f"{transport}_qps_vs_baseline"] = round(qps["healthy"] / qps["baseline"], 3)
        finally:
            resolver.stop()
            baseline.stop()
    figures["load_average_after"] = round(os.getloadavg()[0], 2)
    figures["load_generators"] = {
        "udp": "dnsperf" if have_dnsperf else "python",
        "dot": "dnsperf" if have_dnsperf else "none",
        "doh": "dnsperf (HTTP/2)" if have_dnsperf else "none",
        "json": "wrk (HTTPS)" if have_wrk else "python (HTTPS)",
    }
    print(json.dumps({"bench": "resolver_qps", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
