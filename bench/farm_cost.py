"""CPU microseconds a target server spends per healthy HTTP probe: the farm vs aiohttp.

    python -m bench.farm_cost [--seconds 3] [--concurrency 8] [--per-az 100]

Each server runs in its own process (uvloop); this process probes it as a checker
does (connect, GET with `Connection: close`, read to EOF, close), round-robin over the
targets, for a fixed time. A server's CPU is read from /proc/PID/stat (utime + stime,
clock ticks) before and after; divided by the probes completed. Both servers are
measured side by side in one run. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


async def _aiohttp_server(port: int) -> None:
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok\n", headers={"Connection": "close"})

    app = web.Application()
    app.router.add_get("/t/{id}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.1.1", port)
    await site.start()
    print(f"ready port={port}", flush=True)
    await asyncio.Event().wait()


async def _probe_loop(
    targets: Sequence[tuple[str, int, str]], seconds: float, concurrency: int
) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    done = 0
    failed = 0

    async def worker(start: int) -> None:
        nonlocal done, failed
        i = start
        while time.monotonic() < deadline:
            host, port, path = targets[i % len(targets)]
            i += concurrency
            try:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                response = await reader.read()
                writer.close()
                if response.startswith(b"HTTP/1.1 200") and b"ok" in response:
                    done += 1
                else:
                    failed += 1
            except OSError:
                failed += 1

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return done, failed


async def _measure(
    pid: int, targets: Sequence[tuple[str, int, str]], seconds: float, concurrency: int
) -> dict[str, float]:
    await _probe_loop(targets, 0.3, concurrency)  # warm up
    (user0, sys0), wall0 = _cpu_of(pid), time.monotonic()
    done, failed = await _probe_loop(targets, seconds, concurrency)
    (user1, sys1), wall = _cpu_of(pid), time.monotonic() - wall0
    cpu = user1 - user0 + sys1 - sys0
    per = 1e6 / done if done else float("nan")
    return {
        "probes": done,
        "failed": failed,
        "probes_per_s": done / wall,
        "server_cpu_s": cpu,
        "us_per_probe": cpu * per,
        "user_us_per_probe": (user1 - user0) * per,
        "sys_us_per_probe": (sys1 - sys0) * per,
    }


async def _start(*argv: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    if not line.startswith("ready"):
        proc.kill()
        await proc.wait()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line


async def _stop(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def _run(args: argparse.Namespace) -> dict[str, float]:
    from sim.testing import free_port

    farm, line = await _start(
        "-m", "urn", "targets", "serve", "--azs", "3", "--per-az", str(args.per_az),
        "--base-port", "0", "--control", "127.0.0.1:0",
    )  # fmt: skip
    try:
        control = line.split("control=")[1].split()[0]
        state = (await asyncio.to_thread(_get_json, f"{control}/v1/targets"))["targets"]
        targets = [(t["host"], t["port"], t["path"]) for t in state]
        lean = await _measure(farm.pid, targets, args.seconds, args.concurrency)
    finally:
        await _stop(farm)
    port = free_port("127.0.1.1")
    code = "import asyncio, uvloop, sys; from bench.farm_cost import _aiohttp_server; "
    code += f"uvloop.run(_aiohttp_server({port}))"
    server, _ = await _start("-c", code)
    try:
        one = [("127.0.1.1", port, f"/t/a-{j}") for j in range(args.per_az)]
        heavy = await _measure(server.pid, one, args.seconds, args.concurrency)
    finally:
        await _stop(server)
    figures = {f"farm_{k}": v for k, v in lean.items()}
    figures |= {f"aiohttp_{k}": v for k, v in heavy.items()}
    figures["aiohttp_over_farm"] = heavy["us_per_probe"] / lean["us_per_probe"]
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.farm_cost", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--per-az", type=int, default=100)
    args = parser.parse_args(argv)
    try:
        import uvloop

        figures = uvloop.run(_run(args))
    except ImportError:
        figures = asyncio.run(_run(args))
    print(f"{'server':<8} {'probes':>8} {'probes/s':>9} {'cpu s':>7} {'µs/probe':>9} (user+sys)")
    for name in ("farm", "aiohttp"):
        f = {k.removeprefix(f"{name}_"): v for k, v in figures.items() if k.startswith(name)}
        print(
            f"{name:<8} {f['probes']:>8.0f} {f['probes_per_s']:>9.0f} {f['server_cpu_s']:>7.2f}"
            f" {f['us_per_probe']:>9.1f} ({f['user_us_per_probe']:.1f}+{f['sys_us_per_probe']:.1f})"
        )
    print(f"aiohttp / farm CPU per probe: {figures['aiohttp_over_farm']:.2f}")
    rounded = {k: round(v, 3) for k, v in figures.items()}
    print(json.dumps({"bench": "farm_cost", "figures": rounded}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
