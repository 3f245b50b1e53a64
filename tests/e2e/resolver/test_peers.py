"""A resolver on real loopback sockets, driven by the load tools a user points at it:
`dnsperf` over UDP and `wrk` at /v1/resolve. Smoke checks of correctness, not speed: every
query answered, each with the rcode its name calls for, no error status and no dead
answer, and the resolver's own counters agreeing with what the tool saw."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from sim.testing import document_dict
from sim.testing.resolver import multivalue_record, running_resolver, tcp_checks, write_config
from urn.clock import FakeClock
from urn.table import Reason, Status, aggregated_byte

if TYPE_CHECKING:
    from pathlib import Path

    from sim.testing.resolver import RunningResolver

pytestmark = pytest.mark.e2e

CAPACITY = 64
DEAD = [f"10.0.0.{i}" for i in range(1, 5)]  # guarded by slots 0-3, down in the table
LIVE = [f"10.0.0.{i}" for i in range(5, 9)]


def document() -> dict[str, Any]:
    return document_dict(
        checks=tcp_checks(range(8)),
        records=[
            multivalue_record("www.example.com.", 8),
            {"name": "txt.example.com.", "type": "TXT", "answers": [{"value": "hello"}]},
        ],
        capacity=CAPACITY,
    )


def half_down() -> bytes:
    table = bytearray([aggregated_byte(Status.HEALTHY)]) * CAPACITY
    for slot in range(4):
        table[slot] = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    return bytes(table)


async def run_tool(*argv: str, timeout: float = 60.0) -> str:
    """Run a peer to its end; its stdout and stderr together, as text."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"{argv[0]} exited {process.returncode}:\n{text}"
    return text


def counted(resolver: RunningResolver, transport: str) -> dict[tuple[str, str], float]:
    """urn_queries_total for `transport`, by (qtype, rcode), once the tallies are folded in."""
    resolver.service.flush_metrics()
    found: dict[tuple[str, str], float] = {}
    for family in resolver.service.registry.collect():
        for sample in family.samples:
            labels = sample.labels
            ours = sample.name == "urn_queries_total" and labels["transport"] == transport
            if ours and sample.value:
                found[labels["qtype"], labels["rcode"]] = sample.value
    return found


# Each line of the data file, the rcode dnsperf must see for it, and the resolver's labels.
DNSPERF_QUERIES = [
    ("www.example.com A", "NOERROR", ("A", "noerror")),
    ("WWW.Example.COM A", "NOERROR", ("A", "noerror")),  # names are case-insensitive
    ("txt.example.com TXT", "NOERROR", ("TXT", "noerror")),
    ("www.example.com AAAA", "NOERROR", ("AAAA", "noerror")),  # NODATA: the name exists
    ("nope.example.com A", "NXDOMAIN", ("A", "nxdomain")),
]
DNSPERF_RUNS = 60  # 300 queries


@pytest.mark.skipif(shutil.which("dnsperf") is None, reason="dnsperf is not installed (make tools)")
async def test_dnsperf_over_udp_loses_nothing_and_sees_the_right_rcodes(tmp_path: Path) -> None:
    data = tmp_path / "queries.txt"
    data.write_text("".join(f"{line}\n" for line, _, _ in DNSPERF_QUERIES))
    config = write_config(tmp_path / "urn.json", document())
    async with running_resolver(config, clock=FakeClock()) as resolver:
        status, body = await resolver.push(half_down())
        assert status == 200, body
        out = await run_tool(
            "dnsperf", "-s", "127.0.0.1", "-p", str(resolver.dns_port), "-d", str(data),
            "-n", str(DNSPERF_RUNS), "-c", "1", "-T", "1", "-q", "10", "-Q", "2000", "-t", "5",
        )  # fmt: skip
        udp = counted(resolver, "udp")
    total = DNSPERF_RUNS * len(DNSPERF_QUERIES)
    assert re.search(rf"Queries sent:\s+{total}\b", out), out
    assert re.search(rf"Queries completed:\s+{total}\b", out), out
    assert re.search(r"Queries lost:\s+0\b", out), out
    codes = re.search(r"Response codes:\s+(.*)", out)
    assert codes is not None, out
    seen = {code: int(n) for code, n in re.findall(r"([A-Z]+) (\d+) \(", codes.group(1))}
    expected: dict[str, int] = {}
    labels: dict[tuple[str, str], float] = {}
    for _, rcode, label in DNSPERF_QUERIES:
        expected[rcode] = expected.get(rcode, 0) + DNSPERF_RUNS
        labels[label] = labels.get(label, 0) + DNSPERF_RUNS
    assert seen == expected, out
    assert udp == labels  # the resolver counted each query once, by the rcode it sent


# One wrk thread, so one Lua state: print a line for every reply that is not a 200 with
# rcode 0 and only live answers (wrk's `done` runs in another state and cannot count them).
WRK_CHECK = r"""
response = function(status, headers, body)
  if status ~= 200 or not body:find('"Status":0,', 1, true)
     or body:find('"data":"10%.0%.0%.[1-4]"') or not body:find('"data":"10%.0%.0%.[5-8]"') then
    io.write("BAD REPLY " .. status .. " " .. body .. "\n")
  end
end
"""
WRK_CONNECTIONS = 4


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make tools)")
async def test_wrk_at_the_json_api_gets_only_right_2xx_answers(tmp_path: Path) -> None:
    script = tmp_path / "check.lua"
    script.write_text(WRK_CHECK)
    config = write_config(tmp_path / "urn.json", document())
    async with running_resolver(config, dns=False, clock=FakeClock()) as resolver:
        status, body = await resolver.push(half_down())
        assert status == 200, body
        url = f"{resolver.url}/v1/resolve?name=www.example.com.&type=A"
        out = await run_tool(
            "wrk", "-t", "1", "-c", str(WRK_CONNECTIONS), "-d", "1s", "--timeout", "10s",
            "-s", str(script), url,
        )  # fmt: skip
        json_counts = counted(resolver, "json")
    done = re.search(r"(\d+) requests in", out)
    assert done is not None, out
    requests = int(done.group(1))
    assert requests > 0, out
    assert "Non-2xx or 3xx responses" not in out, out
    assert "Socket errors" not in out, out
    assert "BAD REPLY" not in out, out
    # Every reply wrk counted was counted by the resolver as an A noerror; at most the
    # requests still in flight when wrk stopped were answered without wrk counting them.
    assert set(json_counts) == {("A", "noerror")}, json_counts
    assert requests <= json_counts["A", "noerror"] <= requests + WRK_CONNECTIONS, out
