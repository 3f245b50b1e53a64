"""The real clients people point at a resolver, over TLS: `kdig`, `dig`, `dnsperf`, `curl`
and dnspython, against one `urn resolver` child serving HTTPS (HTTP/2 and HTTP/1.1),
classic DNS and DNS over TLS with a certificate from a test CA.

Each client is asked for an answer, an NXDOMAIN, a NODATA and a large answer; a tool
that is not installed skips with the reason (`make test` installs them all).
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.message
import dns.query
import dns.rcode
import pytest

from sim.testing import document_dict
from sim.testing.resolver import multivalue_record, tcp_checks, write_config
from sim.testing.resolver_process import resolver_process

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import trustme

    from sim.testing.resolver_process import ResolverProcess

HOSTNAME = "dns.example.test"  # the name the certificate is for, besides 127.0.0.1
ALL = sorted(f"10.0.0.{i}" for i in range(1, 5))
BIG_ANSWERS = 40  # TXT answers of 180 bytes: a 7.9 KB answer, past any UDP size


@dataclass
class Secure:
    resolver: ResolverProcess
    ca_file: Path
    context: ssl.SSLContext


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Secure]:
    directory = tmp_path_factory.mktemp("secure")
    issued = ca.issue_cert("127.0.0.1", HOSTNAME)
    cert, key, ca_file = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    big = {
        "name": "big.example.com.",
        "type": "TXT",
        "answers": [{"value": f"{i:02d}" + "x" * 178} for i in range(BIG_ANSWERS)],
    }
    document = document_dict(
        checks=tcp_checks(range(4)),
        records=[multivalue_record("www.example.com.", 4), big],
        tls={"cert": str(cert), "key": str(key)},
    )
    config = write_config(directory / "urn.json", document)
    context = ssl.create_default_context(cafile=str(ca_file))
    with resolver_process(config, directory, context=context, dot=True) as resolver:
        yield Secure(resolver, ca_file, context)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make test installs it with the other peers)")
    return path


def run(*command: str) -> str:
    """A client's stdout; AssertionError with its output when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def answer_lines(output: str) -> list[str]:
    """The data of every record in the answer section of dig/kdig text output."""
    lines = []
    in_answer = False
    for line in output.splitlines():
        if line.startswith(";;"):
            in_answer = "ANSWER SECTION" in line
            continue
        fields = line.split()
        if in_answer and len(fields) >= 5 and fields[2] == "IN":
            lines.append(" ".join(fields[4:]))
    return sorted(lines)


def status_of(output: str) -> str:
    """The rcode in dig (`status: NOERROR,`) or kdig (`status: NOERROR;`) output."""
    for line in output.splitlines():
        if "status:" in line:
            return line.split("status:")[1].replace(";", ",").split(",")[0].strip()
    raise AssertionError(f"no status in {output}")


# --- DNS over TLS ---------------------------------------------------------------------


def kdig_tls(secure: Secure, *question: str) -> str:
    return run(
        tool("kdig"), "@127.0.0.1", "-p", str(secure.resolver.dot), "+tls",
        f"+tls-ca={secure.ca_file}", f"+tls-hostname={HOSTNAME}", "+timeout=5", *question,
    )  # fmt: skip


def dig_tls(secure: Secure, *question: str) -> str:
    return run(
        tool("dig"), "@127.0.0.1", "-p", str(secure.resolver.dot), "+tls",
        f"+tls-ca={secure.ca_file}", f"+tls-hostname={HOSTNAME}", "+time=5", "+tries=1",
        *question,
    )  # fmt: skip


@pytest.mark.parametrize("client", [kdig_tls, dig_tls], ids=["kdig", "dig"])
def test_dot_clients_get_answers_nxdomain_nodata_and_a_large_answer(
    secure: Secure, client: object
) -> None:
    ask = client  # type: ignore[assignment]
    assert callable(ask)
    answer = ask(secure, "www.example.com", "A")
    assert status_of(answer) == "NOERROR"
    assert answer_lines(answer) == ALL
    assert status_of(ask(secure, "nope.example.com", "A")) == "NXDOMAIN"
    nodata = ask(secure, "www.example.com", "AAAA")
    assert status_of(nodata) == "NOERROR"
    assert answer_lines(nodata) == []
    big = ask(secure, "big.example.com", "TXT")
    assert len(answer_lines(big)) == BIG_ANSWERS


def test_dnsperf_over_dot_completes_every_query(secure: Secure, tmp_path: Path) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_text("www.example.com A\nnope.example.com A\nbig.example.com TXT\n")
    output = run(
        tool("dnsperf"), "-m", "dot", "-s", "127.0.0.1", "-p", str(secure.resolver.dot),
        "-d", str(queries), "-n", "200", "-c", "2", "-q", "20", "-t", "5",
    )  # fmt: skip
    assert "Queries lost:         0 (0.00%)" in output, output
    assert "Queries completed:    600 (100.00%)" in output, output
    assert "NXDOMAIN 200" in output, output


def test_dnspython_over_dot(secure: Secure) -> None:
    query = dns.message.make_query("www.example.com.", "A")
    reply = dns.query.tls(
        query, "127.0.0.1", port=secure.resolver.dot, ssl_context=secure.context,
        server_hostname=HOSTNAME, timeout=5,
    )  # fmt: skip
    assert sorted(r.address for rrset in reply.answer for r in rrset) == ALL


def test_the_doh_json_form_over_https(secure: Secure) -> None:
    status, body = secure.resolver.get("/resolve", name="www.example.com", type="A")
    assert status == 200
    assert sorted(a["data"] for a in json.loads(body)["Answer"]) == ALL
    encoded = base64.urlsafe_b64encode(dns.message.make_query("x.example.com", "A").to_wire())
    status, body = secure.resolver.get("/dns-query", dns=encoded.decode().rstrip("="))
    assert status == 200
    assert dns.message.from_wire(body).rcode() == dns.rcode.NXDOMAIN
