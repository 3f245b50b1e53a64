"""A delegable zone judged by the tools DNS operators use: Zonemaster's undelegated test of
two `urn resolver` replicas on 127.0.0.1:53 and 127.0.0.2:53 (what a parent would delegate
to), and Knot's `kdig` reading the NS answer with its glue.

Zonemaster runs offline and in about a second: `--hints` names a root on 127.0.0.1 (urn,
which refuses the root, so every lookup beyond our zone ends at once instead of timing out
against the real root servers), `--no-ipv6` (the replicas listen on IPv4 loopback), and
`--ns name/address` twice makes it undelegated: the delegation under test is the one given,
no parent is asked. Every module runs. No message may be ERROR or CRITICAL but one:
ADDRESS01 NAMESERVER_IP_PRIVATE_NETWORK, which says the nameservers are on loopback, as
this test puts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from sim.testing import FakeClock, document_dict
from sim.testing.resolver import running_resolver, write_config
from sim.testing.resolver_process import resolver_process

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

ZONE = "gslb.example.com."
REPLICAS = {"ns1.gslb.example.com.": "127.0.0.1", "ns2.gslb.example.com.": "127.0.0.2"}
# What the setup causes, not the zone: the replicas' addresses are loopback ones.
EXPECTED_ERRORS = {("ADDRESS01", "NAMESERVER_IP_PRIVATE_NETWORK")}


def document() -> dict[str, Any]:
    zone = {
        "name": ZONE,
        "ns": list(REPLICAS),
        "addresses": {name: [address] for name, address in REPLICAS.items()},
        "soa": {"rname": "hostmaster.example.com.", "serial": 2026120101},
    }
    records = [{"name": f"www.{ZONE}", "answers": [{"value": "192.0.2.10"}]}]
    return document_dict(zones=[zone], records=records)


def port_53_taken() -> str | None:
    """Why a replica cannot listen on port 53 of its address, or None when both can."""
    for address in REPLICAS.values():
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_INET, kind) as probe:
                try:
                    probe.bind((address, 53))
                except OSError as exc:
                    return f"{address}:53 is not free for this test: {exc.strerror}"
    return None


def table(entries: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{e['level']:8} {e['testcase']:15} {e['tag']} {json.dumps(e.get('args', {}))}"
        for e in entries
    )


@pytest.mark.skipif(
    shutil.which("zonemaster-cli") is None,
    reason="zonemaster-cli is not installed (.ci/tools installs it)",
)
def test_zonemaster_finds_no_error_in_a_delegable_zone(tmp_path: Path) -> None:
    taken = port_53_taken()
    if taken:
        pytest.skip(taken)
    path = write_config(tmp_path / "urn.json", document())
    hints = tmp_path / "hints.zone"
    hints.write_text(". 3600000 IN NS root.invalid.\nroot.invalid. 3600000 IN A 127.0.0.1\n")
    with contextlib.ExitStack() as replicas:
        for i, address in enumerate(REPLICAS.values(), 1):
            directory = tmp_path / f"r{i}"
            directory.mkdir()
            # Later flags win: each replica's own id and port 53 on its own address.
            flags = ("--id", f"r{i}", "--dns", f"{address}:53")
            replicas.enter_context(resolver_process(path, directory, flags=flags))
        ns = [f"--ns={name.rstrip('.')}/{address}" for name, address in REPLICAS.items()]
        result = subprocess.run(
            [
                "zonemaster-cli",
                *ns,
                "--no-ipv6",
                f"--hints={hints}",
                "--level=INFO",
                "--json",
                "--raw",
                "--no-progress",
                ZONE.rstrip("."),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    report = table(entries)
    bad = [
        e
        for e in entries
        if e["level"] in ("ERROR", "CRITICAL") and (e["testcase"], e["tag"]) not in EXPECTED_ERRORS
    ]
    assert not bad, f"Zonemaster found errors:\n{table(bad)}\n\nwhole report:\n{report}"
    modules = {e["module"] for e in entries}
    ran = {"BASIC", "ADDRESS", "CONSISTENCY", "DELEGATION", "NAMESERVER", "SYNTAX", "ZONE"}
    assert ran <= modules, f"modules missing: {ran - modules}\n{report}"
    tags = {e["tag"] for e in entries}
    # BASIC02 got our NS records, the replicas agree, and both are authoritative.
    assert {"HAS_NAMESERVERS", "ONE_NS_SET", "ONE_SOA_SERIAL", "ARE_AUTHORITATIVE"} <= tags, report


@pytest.mark.skipif(shutil.which("kdig") is None, reason="kdig is not installed (.ci/tools)")
async def test_kdig_reads_the_ns_answer_and_its_glue(tmp_path: Path) -> None:
    path = write_config(tmp_path / "urn.json", document())
    async with running_resolver(path, clock=FakeClock()) as resolver:
        for transport in ("+notcp", "+tcp"):
            process = await asyncio.create_subprocess_exec(
                "kdig",
                f"@127.0.0.1:{resolver.dns_port}",
                transport,
                "+norecurse",
                "+edns",
                "+timeout=5",
                "+retry=0",
                ZONE,
                "NS",
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(process.communicate(), 30)
            text = out.decode()
            assert process.returncode == 0, text
            assert "status: NOERROR" in text
            assert "Flags: qr aa;" in text, text
            assert "ANSWER: 2; AUTHORITY: 0; ADDITIONAL: 3" in text, text  # 2 glue + OPT
            answers = [line.split() for line in text.splitlines() if line[:1] not in ("", ";")]
            assert answers == [
                *([ZONE, "3600", "IN", "NS", name] for name in REPLICAS),
                *([name, "3600", "IN", "A", address] for name, address in REPLICAS.items()),
            ], text
