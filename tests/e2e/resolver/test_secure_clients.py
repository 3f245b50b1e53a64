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
        records=[
            multivalue_record("www.example.com.", 4),
            big,
            {"name": "loopback.example.com.", "type": "A", "answers": [{"value": "127.0.0.1"}]},
        ],
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
        if "opcode:" in line and "status:" in line:  # not kdig's `HTTP session` line
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


# --- DNS over HTTPS, HTTP/2 -----------------------------------------------------------


def dig_https(secure: Secure, *question: str, get: bool = False) -> str:
    return run(
        tool("dig"), "@127.0.0.1", "-p", str(secure.resolver.http),
        "+https-get" if get else "+https", f"+tls-ca={secure.ca_file}",
        f"+tls-hostname={HOSTNAME}", "+time=5", "+tries=1", *question,
    )  # fmt: skip


def dig_https_get(secure: Secure, *question: str) -> str:
    return dig_https(secure, *question, get=True)


def kdig_https(secure: Secure, *question: str) -> str:
    return run(
        tool("kdig"), "@127.0.0.1", "-p", str(secure.resolver.http), "+https",
        f"+tls-ca={secure.ca_file}", f"+tls-hostname={HOSTNAME}", "+timeout=5", *question,
    )  # fmt: skip


@pytest.mark.parametrize(
    "client", [dig_https, dig_https_get, kdig_https], ids=["dig-post", "dig-get", "kdig"]
)
def test_doh_clients_over_h2_get_answers_nxdomain_nodata_and_a_large_answer(
    secure: Secure, client: object
) -> None:
    test_dot_clients_get_answers_nxdomain_nodata_and_a_large_answer(secure, client)


def streams(secure: Secure) -> float:
    return secure.resolver.metric("urn_http2_streams_total")


def test_the_doh_clients_really_spoke_http2(secure: Secure) -> None:
    before = streams(secure)
    kdig_https(secure, "www.example.com", "A")
    dig_https(secure, "www.example.com", "A")
    assert streams(secure) == before + 2


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_dnsperf_over_doh_completes_every_query(
    secure: Secure, tmp_path: Path, method: str
) -> None:
    """dnsperf's DoH client keeps one message buffer per connection, so it is the client
    that catches replies run together; large answers are left to the other clients (it
    stalls on its own flow-control window with them under load)."""
    queries = tmp_path / "queries.txt"
    queries.write_text("www.example.com A\nnope.example.com A\n")
    before = streams(secure)
    output = run(
        tool("dnsperf"), "-m", "doh", "-s", "127.0.0.1", "-p", str(secure.resolver.http),
        "-O", f"doh-uri=https://127.0.0.1:{secure.resolver.http}/dns-query",
        "-O", f"doh-method={method}",
        "-d", str(queries), "-n", "100", "-c", "2", "-q", "10", "-t", "5",
    )  # fmt: skip
    assert "Queries lost:         0 (0.00%)" in output, output
    assert "Queries completed:    200 (100.00%)" in output, output
    assert "NXDOMAIN 100" in output, output
    assert streams(secure) - before >= 200  # over HTTP/2, every one


def curl(secure: Secure, *arguments: str) -> tuple[str, str]:
    """curl's body and `%{http_code} %{http_version}`."""
    output = run(
        tool("curl"), "-s", "--cacert", str(secure.ca_file), "-w", "\n%{http_code} %{http_version}",
        *arguments,
    )  # fmt: skip
    body, _, last = output.rpartition("\n")
    return body, last


def test_curl_over_h2_json_and_bad_requests(secure: Secure, tmp_path: Path) -> None:
    base = secure.resolver.url
    body, last = curl(
        secure, "--http2", "-H", "accept: application/dns-json",
        f"{base}/dns-query?name=www.example.com&type=A",
    )  # fmt: skip
    assert last == "200 2"
    assert sorted(a["data"] for a in json.loads(body)["Answer"]) == ALL
    _, last = curl(secure, "--http2", f"{base}/dns-query?dns=!!!")
    assert last == "400 2"
    _, last = curl(
        secure, "--http2", "-H", "content-type: text/plain", "--data-binary", "x",
        f"{base}/dns-query",
    )  # fmt: skip
    assert last == "415 2"
    huge = tmp_path / "huge.bin"
    huge.write_bytes(b"x" * 70_000)
    _, last = curl(
        secure, "--http2", "-H", "content-type: application/dns-message",
        "--data-binary", f"@{huge}", f"{base}/dns-query",
    )  # fmt: skip
    assert last == "413 2"
    # a route HTTP/2 does not serve: curl is told HTTP_1_1_REQUIRED and asks again
    body, last = curl(secure, "--http2", f"{base}/readyz")
    assert last.split()[1] == "1.1"
    assert "table" in json.loads(body)


def test_curl_resolves_a_name_through_urn_with_doh_url(secure: Secure) -> None:
    """`curl --doh-url`: curl's own resolver asks urn, over HTTP/2, for the address of the
    name in the URL; urn answers 127.0.0.1, so the request lands on urn itself."""
    before = streams(secure)
    body, last = curl(
        secure, "--http2", "--doh-url", f"{secure.resolver.url}/dns-query", "-k",
        f"https://loopback.example.com:{secure.resolver.http}/resolve?name=www.example.com",
    )  # fmt: skip
    assert last.startswith("200 ")
    assert sorted(a["data"] for a in json.loads(body)["Answer"]) == ALL
    assert streams(secure) > before  # curl's DoH lookups went over HTTP/2


def test_dnspython_doh_over_h2(secure: Secure) -> None:
    query = dns.message.make_query("big.example.com.", "TXT")
    reply = dns.query.https(
        query, f"{secure.resolver.url}/dns-query", timeout=5, verify=secure.context,
        http_version=dns.query.HTTPVersion.H2,
    )  # fmt: skip
    assert sum(len(rrset) for rrset in reply.answer) == BIG_ANSWERS
    get = dns.query.https(
        dns.message.make_query("nope.example.com.", "A"), f"{secure.resolver.url}/dns-query",
        timeout=5, verify=secure.context, post=False, http_version=dns.query.HTTPVersion.H2,
    )  # fmt: skip
    assert get.rcode() == dns.rcode.NXDOMAIN


def test_doh_over_http1_keeps_working(secure: Secure) -> None:
    query = dns.message.make_query("www.example.com.", "A")
    reply = dns.query.https(
        query, f"{secure.resolver.url}/dns-query", timeout=5, verify=secure.context,
        http_version=dns.query.HTTPVersion.H1,
    )  # fmt: skip
    assert sorted(r.address for rrset in reply.answer for r in rrset) == ALL


# --- certificate rotation -------------------------------------------------------------


def presented(port: int, ca: trustme.CA) -> bytes:
    """The certificate (DER) a new TLS connection to `port` is shown."""
    import socket

    context = ssl.create_default_context()
    ca.configure_trust(context)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_renewed_certificate_files_reach_new_https_and_dot_connections(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """certbot's way: new files over the old paths under a running process; no restart.
    Connections opened after get the new certificate on the HTTPS port and on DoT."""
    import time

    def issue(name: str) -> tuple[Path, Path]:
        issued = ca.issue_cert("127.0.0.1", HOSTNAME)
        cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        return cert, key

    cert, key = issue("live")
    document = document_dict(
        checks=tcp_checks(range(4)),
        records=[multivalue_record("www.example.com.", 4)],
        tls={"cert": str(cert), "key": str(key)},
    )
    config = write_config(tmp_path / "urn.json", document)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with resolver_process(config, tmp_path, context=context, dot=True) as resolver:
        before = {port: presented(port, ca) for port in (resolver.http, resolver.dot)}
        new_cert, new_key = issue("renewed")
        key.write_bytes(new_key.read_bytes())  # never a moment with a mismatched pair
        cert.write_bytes(new_cert.read_bytes())  # loaded: the pair is read together
        deadline = time.monotonic() + 15
        for port in (resolver.http, resolver.dot):
            while presented(port, ca) == before[port]:
                assert time.monotonic() < deadline, f"port {port} still shows the old one"
                time.sleep(0.1)  # polling, bounded by the deadline above
        assert resolver.metric("urn_tls_certificate_reloads_total", result="ok") >= 2
        status, _ = resolver.get("/healthz")
        assert status == 200  # and HTTP/1.1 over the new certificate
