"""A network partition, not a stopped process: AZ b's targets behind a link taken down.

AZ b's targets run inside a network namespace this test creates, reachable only over a
veth pair whose two ends get addresses in 198.18.0.0/15 (the range RFC 2544 sets aside
for test networks); AZs a and c stay on the loopback farm. Taking the namespace's end
of the link down cuts AZ b off at the network level: its targets keep running, but
probes to them vanish (time out) instead of being refused. The query stream over UDP
DNS must stop returning AZ b within the detection bound (the intervals' worst case times
$URN_TEST_SLACK: sim.chaos.detection_bound), never drop a healthy answer,
and come back when the link does. No traffic leaves this host: every address is
loopback or inside the namespace. Skips only where a namespace cannot be created.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from sim.chaos import detection_bound, detection_report, fast_plan, judge_outage, live_fleet
from sim.farm_layout import TargetSpec
from sim.fleet import _die_with_parent
from sim.observe import DnsWatcher, metric
from sim.scenario import attribute
from sim.testing import free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

PER_AZ = 4
# Serves "ok" over HTTP on every port given, on one address; run inside the namespace.
TARGETS_SCRIPT = """
import asyncio, sys
async def handle(reader, writer):
    try:
        await reader.readuntil(b"\\r\\n\\r\\n")
        writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")
        await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()
async def main():
    host, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    servers = [await asyncio.start_server(handle, host, p) for p in ports]
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _ip(*args: str, namespace: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class Namespace:
    name: str
    host_end: str
    inner_end: str
    host_address: str
    inner_address: str

    def link(self, up: bool) -> None:
        """Bring the namespace's end of the veth pair up or down (the partition)."""
        _ip("link", "set", self.inner_end, "up" if up else "down", namespace=self.name)


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    tag = f"{os.getpid() % 100000}"
    subnet = 18 + os.getpid() % 2, os.getpid() % 250 + 1  # 198.18.x.0/24 or 198.19.x.0/24
    ns = Namespace(
        name=f"urn-part-{tag}",
        host_end=f"urnh{tag}",
        inner_end=f"urni{tag}",
        host_address=f"198.{subnet[0]}.{subnet[1]}.1",
        inner_address=f"198.{subnet[0]}.{subnet[1]}.2",
    )
    try:
        _ip("netns", "add", ns.name)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or str(exc).encode()
        pytest.skip(f"cannot create a network namespace here: {detail.decode().strip()}")
    try:
        _ip("link", "add", ns.host_end, "type", "veth", "peer", "name", ns.inner_end)
        _ip("link", "set", ns.inner_end, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_address}/24", "dev", ns.host_end)
        _ip("link", "set", ns.host_end, "up")
        _ip("addr", "add", f"{ns.inner_address}/24", "dev", ns.inner_end, namespace=ns.name)
        _ip("link", "set", ns.inner_end, "up", namespace=ns.name)
        _ip("link", "set", "lo", "up", namespace=ns.name)
        yield ns
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            _ip("link", "del", ns.host_end)  # also removes the peer inside the namespace
        _ip("netns", "del", ns.name)


async def _reachable(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def test_an_az_cut_off_by_a_downed_link_is_detected_within_the_bound(
    tmp_path: Path, namespace: Namespace
) -> None:
    plan = fast_plan(azs=("a", "b", "c"), aggregators=2, resolvers=1)
    inner_ports = [free_port() for _ in range(PER_AZ)]

    def into_namespace(spec: TargetSpec) -> TargetSpec:
        if spec.az != "b":
            return spec
        j = int(spec.id.split("-")[1])
        return TargetSpec(
            spec.id, "b", spec.kind, namespace.inner_address, inner_ports[j], spec.path
        )

    targets = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        namespace.name,
        sys.executable,
        "-c",
        TARGETS_SCRIPT,
        namespace.inner_address,
        *map(str, inner_ports),
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    try:
        assert targets.stdout is not None
        assert await asyncio.wait_for(targets.stdout.readline(), 20) == b"ready\n"
        assert await _reachable(namespace.inner_address, inner_ports[0])
        async with live_fleet(tmp_path, plan, per_az=PER_AZ, retarget=into_namespace) as live:
            await live.wait_answers(dead=())
            watcher = DnsWatcher(live.dns_address(0), live.names, rate=150.0)
            stop = asyncio.Event()
            task = asyncio.create_task(watcher.run(stop))
            try:
                failed_at = time.monotonic()
                namespace.link(up=False)
                assert not await _reachable(namespace.inner_address, inner_ports[0])
                await live.wait_answers(dead={"b"})
                # Cut off, not stopped: probes vanish and time out, nothing refuses them.
                await live.wait_aggregators(dead={"b"})

                async def timing_out() -> bool:
                    samples = await live.metrics("aggregator-1")
                    return metric(samples, "urn_unhealthy_slots", reason="timeout") == PER_AZ

                await wait_until(timing_out, 10, message="AZ b's slots failing by timeout")
                settled = time.monotonic()
                await wait_until(lambda: time.monotonic() > settled + 2.0, 5, message="watching")
                restored_at = time.monotonic()
                namespace.link(up=True)
                await live.wait_answers(dead=())
                back = time.monotonic()
                await wait_until(lambda: time.monotonic() > back + 1.0, 5, message="watching")
                lateness = await live.lateness()
            finally:
                stop.set()
                await task
    finally:
        if targets.returncode is None:
            targets.kill()
        await targets.wait()
    records = live.records
    bound = detection_bound(plan)
    verdict = judge_outage(records, watcher.history, plan, "b", (failed_at, restored_at))
    affected = {
        r["name"] for r in records if any(attribute(a["value"])[0] == "b" for a in r["answers"])
    }
    why = f"{detection_report(plan, verdict.detection)}\n{lateness}"
    assert verdict.queries > 100
    assert verdict.never_turned == [], why
    assert set(verdict.detection) | set(verdict.unmeasured) == affected
    assert verdict.detection
    assert max(verdict.detection.values()) <= bound, f"{verdict.detection}; {why}"
    assert verdict.dead_after_bound == 0, f"{verdict.dead_after_bound} dead answers; {why}"
    assert verdict.healthy_dropped == 0, f"{verdict.dropped_examples}; {why}"
    print(f"partition: detection {verdict.spread(verdict.detection.values())}, bound {bound}s")
