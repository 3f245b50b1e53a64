"""A running resolver on real loopback sockets: dnspython over UDP, TCP and DoH, aiohttp for
JSON, dig, the hostile corpus over UDP and TCP, and the `urn resolver` process itself."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import dns.asyncquery
import dns.message
import dns.query
import dns.rcode
import pytest

from resolver.main import add_arguments
from resolver.settings import ResolverSettings
from resolver.tcplimits import TcpLimits
from sim.testing import document_dict, free_port, signed_table, wait_until
from sim.testing.resolver import (
    TEST_ENVIRON,
    check_outcome,
    multivalue_record,
    running_resolver,
    tcp_checks,
    write_config,
)
from urn.errors import StartupError
from urn.table import Reason, Status, aggregated_byte
from urn.wire import TableKind

if TYPE_CHECKING:
    import trustme

    from sim.testing.resolver import RunningResolver

CORPUS = Path(__file__).parents[2] / "corpus" / "dns"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
CAPACITY = 64
ALL = sorted(f"10.0.0.{i}" for i in range(1, 9))
LIVE_AFTER_UPDATE = ALL[4:]


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


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(rdata.address for rdata in reply.answer[0]) if reply.answer else []


async def json_values(url: str) -> list[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{url}/v1/resolve", params={"name": "www.example.com.", "type": "A"}
        ) as response,
    ):
        assert response.status == 200
        body = await response.json()
    return sorted(answer["data"] for answer in body["Answer"])


async def all_transports(resolver: RunningResolver) -> dict[str, list[str]]:
    query = dns.message.make_query("www.example.com.", "A", use_edns=0)
    udp = await dns.asyncquery.udp(query, "127.0.0.1", port=resolver.dns_port, timeout=5)
    tcp = await dns.asyncquery.tcp(query, "127.0.0.1", port=resolver.dns_port, timeout=5)
    h1 = dns.query.HTTPVersion.H1
    doh_post = await asyncio.to_thread(
        dns.query.https, query, f"{resolver.url}/dns-query", timeout=5, http_version=h1
    )
    doh_get = await asyncio.to_thread(
        dns.query.https, query, f"{resolver.url}/dns-query", timeout=5, post=False, http_version=h1
    )
    return {
        "udp": addresses(udp),
        "tcp": addresses(tcp),
        "doh_post": addresses(doh_post),
        "doh_get": addresses(doh_get),
        "json": await json_values(resolver.url),
    }


async def test_every_transport_before_and_after_a_table_update(tmp_path: Path) -> None:
    async with running_resolver(write_config(tmp_path / "urn.json", document())) as resolver:
        before = await all_transports(resolver)
        assert before == dict.fromkeys(before, ALL)
        status, _ = await resolver.push(half_down())
        assert status == 200
        after = await all_transports(resolver)
        assert after == dict.fromkeys(after, LIVE_AFTER_UPDATE)
        registry = resolver.service.registry
        resolver.service.flush_metrics()
        for transport, count in (("udp", 2), ("tcp", 2), ("doh", 4), ("json", 2)):
            labels = {"transport": transport, "qtype": "A", "rcode": "noerror"}
            assert registry.get_sample_value("urn_queries_total", labels) == count


async def test_udp_truncation_falls_back_to_tcp(tmp_path: Path) -> None:
    doc = document()
    doc["records"].append(
        {
            "name": "big.example.com.",
            "type": "TXT",
            "answers": [{"value": f"{i}" + "y" * 120} for i in range(8)],
        }
    )
    async with running_resolver(write_config(tmp_path / "urn.json", doc)) as resolver:
        query = dns.message.make_query("big.example.com.", "TXT")
        reply, used_tcp = await dns.asyncquery.udp_with_fallback(
            query, "127.0.0.1", port=resolver.dns_port, timeout=5
        )
        assert used_tcp
        assert len(reply.answer[0]) == 8


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed (make tools)")
async def test_dig_over_udp_and_tcp(tmp_path: Path) -> None:
    async with running_resolver(write_config(tmp_path / "urn.json", document())) as resolver:
        await resolver.push(half_down())
        for extra in ([], ["+tcp"]):
            process = await asyncio.create_subprocess_exec(
                "dig",
                "@127.0.0.1",
                "-p",
                str(resolver.dns_port),
                "WWW.example.com",
                "A",
                "+short",
                "+tries=1",
                "+time=5",
                *extra,
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0
            assert sorted(out.decode().split()) == LIVE_AFTER_UPDATE, extra
        process = await asyncio.create_subprocess_exec(
            "dig",
            "@127.0.0.1",
            "-p",
            str(resolver.dns_port),
            "nope.example.com",
            "+tries=1",
            "+time=5",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        assert "status: NXDOMAIN" in out.decode()


SENTINEL = dns.message.make_query("txt.example.com.", "TXT")
SENTINEL.id = 0xBEEF


async def _udp_exchange(port: int, payload: bytes) -> tuple[bytes | None, bytes]:
    """Send `payload` then a sentinel query; the first reply that is not the sentinel's is
    the payload's (the server answers in order), so a drop is proven without waiting."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        await loop.sock_sendall(sock, payload) if payload else sock.send(b"")
        await loop.sock_sendall(sock, SENTINEL.to_wire())
        replies = []
        async with asyncio.timeout(10):
            while True:
                data = await loop.sock_recv(sock, 65535)
                replies.append(data)
                if data[:2] == b"\xbe\xef" and (len(data) > 12 and data[4:6] == b"\x00\x01"):
                    break
    first = replies[0] if len(replies) > 1 else None
    return first, replies[-1]


async def _tcp_exchange(port: int, payload: bytes) -> tuple[bytes | None, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        sentinel = SENTINEL.to_wire()
        writer.write(
            len(payload).to_bytes(2, "big") + payload + len(sentinel).to_bytes(2, "big") + sentinel
        )
        await writer.drain()
        replies = []
        async with asyncio.timeout(10):
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(size)
                replies.append(data)
                if data[:2] == b"\xbe\xef" and data[4:6] == b"\x00\x01":
                    break
    finally:
        writer.close()
        await writer.wait_closed()
    return (replies[0] if len(replies) > 1 else None), replies[-1]


async def test_hostile_corpus_over_udp_and_tcp(tmp_path: Path) -> None:
    async with running_resolver(write_config(tmp_path / "urn.json", document())) as resolver:
        for case in sorted(EXPECTED):
            payload = (CORPUS / f"{case}.bin").read_bytes()
            outcome = EXPECTED[case]["outcome"]
            for exchange in (_udp_exchange, _tcp_exchange):
                if case == "empty" and exchange is _udp_exchange:
                    continue  # an empty datagram cannot be sent with sock_sendall; tested below
                reply, sentinel = await exchange(resolver.dns_port, payload)
                problem = check_outcome(payload, reply, outcome)
                assert problem is None, f"{case} over {exchange.__name__}: {problem}"
                assert dns.message.from_wire(sentinel).answer, "server stopped answering"
        # An empty datagram is dropped, and the server carries on.
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(("127.0.0.1", resolver.dns_port))
            sock.send(b"")
            await loop.sock_sendall(sock, SENTINEL.to_wire())
            async with asyncio.timeout(10):
                data = await loop.sock_recv(sock, 65535)
            assert data[:2] == b"\xbe\xef"
        resolver.service.flush_metrics()
        registry = resolver.service.registry
        assert registry.get_sample_value("urn_dns_malformed_total", {"reason": "pointer"}) == 4
        assert (
            registry.get_sample_value("urn_dns_malformed_total", {"reason": "internal_error"}) == 0
        )


async def test_idle_tcp_connections_are_closed(tmp_path: Path) -> None:
    async with running_resolver(write_config(tmp_path / "urn.json", document())) as resolver:
        assert resolver.service.dns is not None
        resolver.service.dns.limits = TcpLimits(idle_timeout=0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", resolver.dns_port)
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # closed by the server
        writer.close()
        await wait_until(lambda: not resolver.service.dns.connections, message="connection dropped")


def test_settings_from_flags() -> None:
    def flags(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(["--id", "r1", "--config", "c.yaml", *argv])

    settings = ResolverSettings.from_args(flags("--listen", "127.0.0.1:8000", "--dns", "none"))
    assert (settings.listen_port, settings.dns_host) == (8000, None)
    settings = ResolverSettings.from_args(flags("--listen", ":9", "--dns", "127.0.0.2:53"))
    assert (settings.dns_host, settings.dns_port) == ("127.0.0.2", 53)
    with pytest.raises(StartupError, match="--dns"):
        ResolverSettings.from_args(flags("--dns", "127.0.0.1:domain"))
    with pytest.raises(StartupError, match="--id"):
        ResolverSettings.from_args(flags("--id", "x" * 40))
    with pytest.raises(ValueError):
        ResolverSettings(id="x" * 40, config="c")


async def _resolver_process(*flags: str) -> asyncio.subprocess.Process:
    """`urn resolver FLAGS` as a child holding the test keys, its stderr piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "urn",
        "resolver",
        *flags,
        env={**os.environ, **TEST_ENVIRON},
        stderr=asyncio.subprocess.PIPE,
    )


async def _fail_if_exited(process: asyncio.subprocess.Process) -> None:
    """AssertionError carrying its stderr once `process` has exited."""
    if process.returncode is not None:
        assert process.stderr is not None
        raise AssertionError((await process.stderr.read()).decode())


async def _stopped(process: asyncio.subprocess.Process) -> bytes:
    """SIGTERM to `process` unless it has exited; its stderr once it has."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    return err


async def test_cli_process_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    path = write_config(tmp_path / "urn.json", document())
    http_port = free_port()
    dns_port = free_port(udp=True)
    process = await _resolver_process(
        "--config", str(path), "--id", "res-cli",
        "--listen", f"127.0.0.1:{http_port}", "--dns", f"127.0.0.1:{dns_port}",
    )  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    try:

        async def healthy() -> bool:
            await _fail_if_exited(process)
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"{url}/healthz") as response,
                ):
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(healthy, timeout=30, message="resolver process healthy")
        query = dns.message.make_query("www.example.com.", "A")
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=dns_port, timeout=5)
        assert addresses(reply) == ALL
        body = signed_table(half_down(), kind=TableKind.AGGREGATE, sender="agg-1")
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/v1/table", data=body) as response,
        ):
            assert response.status == 200
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=dns_port, timeout=5)
        assert addresses(reply) == LIVE_AFTER_UPDATE
    finally:
        err = await _stopped(process)
    assert process.returncode == 0, err.decode()
    assert b'"event": "stopped"' in err


async def test_cli_refuses_to_start_without_a_good_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("capacity: -1\n")
    process = await _resolver_process(
        "--config", str(bad), "--id", "r", "--listen", "127.0.0.1:0", "--dns", "none"
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"capacity" in err


async def test_cli_serves_https_when_the_config_names_a_certificate(
    tmp_path: Path, ca: trustme.CA
) -> None:
    import ssl

    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    doc = document()
    doc["tls"] = {"cert": str(cert), "key": str(key)}
    path = write_config(tmp_path / "urn.json", doc)
    http_port = free_port()
    process = await _resolver_process(
        "--config", str(path), "--id", "res-tls",
        "--listen", f"127.0.0.1:{http_port}", "--dns", "none",
    )  # fmt: skip
    context = ssl.create_default_context()
    ca.configure_trust(context)
    url = f"https://127.0.0.1:{http_port}"
    try:

        async def answered() -> bool:
            await _fail_if_exited(process)
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(
                        f"{url}/v1/resolve",
                        params={"name": "txt.example.com", "type": "TXT"},
                        ssl=context,
                    ) as response,
                ):
                    body = await response.json()
                    return bool(body["Answer"][0]["data"] == '"hello"')
            except aiohttp.ClientConnectorError:
                return False

        await wait_until(answered, timeout=30, message="HTTPS answer")
    finally:
        await _stopped(process)
    assert process.returncode == 0


async def test_tcp_frames_split_across_writes_and_pipelined(tmp_path: Path) -> None:
    async with running_resolver(write_config(tmp_path / "urn.json", document())) as resolver:
        reader, writer = await asyncio.open_connection("127.0.0.1", resolver.dns_port)
        try:
            queries = [dns.message.make_query("www.example.com.", "A") for _ in range(3)]
            stream = b"".join(len(q.to_wire()).to_bytes(2, "big") + q.to_wire() for q in queries)
            for i in range(0, len(stream), 7):  # dribble the bytes in small pieces
                writer.write(stream[i : i + 7])
                await writer.drain()
            async with asyncio.timeout(10):
                for query in queries:
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    reply = dns.message.from_wire(await reader.readexactly(size))
                    assert reply.id == query.id
                    assert addresses(reply) == ALL
        finally:
            writer.close()
            await writer.wait_closed()


async def test_past_the_tcp_limit_the_idlest_connection_makes_room(tmp_path: Path) -> None:
    async with running_resolver(write_config(tmp_path / "urn.json", document())) as resolver:
        assert resolver.service.dns is not None
        resolver.service.dns.limits = TcpLimits(max_connections=1, per_source=1)
        first = await asyncio.open_connection("127.0.0.1", resolver.dns_port)
        await wait_until(lambda: len(resolver.service.dns.connections) == 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", resolver.dns_port)
        async with asyncio.timeout(10):
            assert await first[0].read() == b""  # the idle one went, the new one answers
            query = dns.message.make_query("www.example.com.", "A")
            writer.write(len(query.to_wire()).to_bytes(2, "big") + query.to_wire())
            size = int.from_bytes(await reader.readexactly(2), "big")
            assert dns.message.from_wire(await reader.readexactly(size)).id == query.id
        for w in (writer, first[1]):
            w.close()
            await w.wait_closed()


async def test_internal_error_gets_servfail_and_the_server_carries_on(tmp_path: Path) -> None:
    async with running_resolver(write_config(tmp_path / "urn.json", document())) as resolver:
        responder = resolver.service.responder
        assert responder is not None
        good = responder.compiled

        class Broken:
            def __getattr__(self, name: str) -> Any:
                raise RuntimeError("injected fault")

        responder.compiled = Broken()  # type: ignore[assignment]
        query = dns.message.make_query("www.example.com.", "A")
        for send in (dns.asyncquery.udp, dns.asyncquery.tcp):
            reply = await send(query, "127.0.0.1", port=resolver.dns_port, timeout=5)
            assert reply.rcode() == dns.rcode.SERVFAIL
        responder.compiled = good
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=resolver.dns_port, timeout=5)
        assert addresses(reply) == ALL
        resolver.service.flush_metrics()
        labels = {"reason": "internal_error"}
        assert resolver.service.registry.get_sample_value("urn_dns_malformed_total", labels) == 2
