"""DNS over TLS (RFC 7858) in-process, over real loopback TLS: answers, ALPN `dot`,
pipelining, a large answer, the RFC 7766 bounds shared with DNS/TCP, and a certificate
rotated under a running listener."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype

from sim.testing import document_dict, wait_until
from sim.testing.resolver import multivalue_record, running_resolver, tcp_checks, write_config

if TYPE_CHECKING:
    from pathlib import Path

    import trustme

ALL = sorted(f"10.0.0.{i}" for i in range(1, 5))


def tls_files(tmp_path: Path, ca: trustme.CA, name: str = "server") -> dict[str, str]:
    """A certificate for 127.0.0.1 (and dns.example.test) from `ca`, as config paths."""
    issued = ca.issue_cert("127.0.0.1", "dns.example.test")
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return {"cert": str(cert), "key": str(key)}


def config(tmp_path: Path, ca: trustme.CA) -> Path:
    big = {
        "name": "big.example.com.",
        "type": "TXT",
        "answers": [{"value": f"{i:02d}" + "x" * 178} for i in range(40)],
    }
    document = document_dict(
        checks=tcp_checks(range(4)),
        records=[multivalue_record("www.example.com.", 4), big],
        tls=tls_files(tmp_path, ca),
    )
    return write_config(tmp_path / "urn.json", document)


def client_context(ca: trustme.CA, alpn: tuple[str, ...] = ("dot",)) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


async def exchange(
    port: int, context: ssl.SSLContext, queries: list[dns.message.Message]
) -> tuple[list[dns.message.Message], str | None, bytes]:
    """Send every query in one write on one connection; the replies in arrival order,
    the ALPN protocol the server chose, and the certificate it presented (DER)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="dns.example.test"
    )
    try:
        payload = b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries))
        writer.write(payload)
        await writer.drain()
        replies = []
        for _ in queries:
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5), "big")
            replies.append(dns.message.from_wire(await reader.readexactly(size)))
        ssl_object: Any = writer.get_extra_info("ssl_object")
        return replies, ssl_object.selected_alpn_protocol(), ssl_object.getpeercert(True)
    finally:
        writer.close()


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(item.address for rrset in reply.answer for item in rrset)


async def test_dot_answers_like_udp_with_alpn_dot(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_resolver(config(tmp_path, ca), dot=True) as resolver:
        assert resolver.dot_port
        queries = [
            dns.message.make_query("www.example.com.", "A"),
            dns.message.make_query("nope.example.com.", "A"),
            dns.message.make_query("www.example.com.", "AAAA"),
        ]
        replies, alpn, _ = await exchange(resolver.dot_port, client_context(ca), queries)
        assert alpn == "dot"
        by_id = {reply.id: reply for reply in replies}
        answer, missing, nodata = (by_id[q.id] for q in queries)
        assert addresses(answer) == ALL
        assert missing.rcode() == dns.rcode.NXDOMAIN
        assert nodata.rcode() == dns.rcode.NOERROR
        assert not nodata.answer
        assert nodata.authority[0].rdtype == dns.rdatatype.SOA
        await asyncio.sleep(0)
        resolver.service.flush_metrics()
        sample = resolver.service.registry.get_sample_value(
            "urn_queries_total", {"transport": "dot", "qtype": "A", "rcode": "nxdomain"}
        )
        assert sample == 1


async def test_dot_pipelines_two_queries_and_a_large_answer_on_one_connection(
    tmp_path: Path, ca: trustme.CA
) -> None:
    async with running_resolver(config(tmp_path, ca), dot=True) as resolver:
        big = dns.message.make_query("big.example.com.", "TXT", use_edns=0, payload=1232)
        small = dns.message.make_query("www.example.com.", "A")
        replies, _, _ = await exchange(resolver.dot_port, client_context(ca), [big, small])
        by_id = {reply.id: reply for reply in replies}
        assert sum(len(rrset) for rrset in by_id[big.id].answer) == 40  # no truncation
        assert len(by_id[big.id].to_wire()) > 1232
        assert addresses(by_id[small.id]) == ALL
        # dnspython's own DoT client agrees
        reply = await dns.asyncquery.tls(
            small, "127.0.0.1", port=resolver.dot_port, ssl_context=client_context(ca),
            server_hostname="dns.example.test", timeout=5,
        )  # fmt: skip
        assert addresses(reply) == ALL


async def test_a_client_without_alpn_is_served_too(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_resolver(config(tmp_path, ca), dot=True) as resolver:
        query = dns.message.make_query("www.example.com.", "A")
        replies, alpn, _ = await exchange(resolver.dot_port, client_context(ca, ()), [query])
        assert alpn is None
        assert addresses(replies[0]) == ALL


async def test_a_handshake_that_never_finishes_is_closed(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_resolver(
        config(tmp_path, ca), dot=True, tcp_message_timeout=0.3
    ) as resolver:
        reader, writer = await asyncio.open_connection("127.0.0.1", resolver.dot_port)
        writer.write(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
        await writer.drain()
        closed = await asyncio.wait_for(reader.read(), 10)  # EOF once the handshake times out
        assert closed == b""
        writer.close()


async def test_dot_connections_share_the_per_source_limit_with_tcp(
    tmp_path: Path, ca: trustme.CA
) -> None:
    async with running_resolver(config(tmp_path, ca), dot=True) as resolver:
        server = resolver.service.dns
        limit = server.limits.per_source
        context = client_context(ca)
        held = [
            await asyncio.open_connection(
                "127.0.0.1", resolver.dot_port, ssl=context, server_hostname="dns.example.test"
            )
            for _ in range(limit)
        ]
        await wait_until(lambda: len(server.connections) == limit, timeout=10)
        one_more = await asyncio.open_connection("127.0.0.1", resolver.dns_port)
        await wait_until(lambda: server.closed_counts["source_limit"] == 1, timeout=10)
        assert await asyncio.wait_for(held[0][0].read(), 10) == b""  # the idlest went
        for _, writer in [*held, one_more]:
            writer.close()


async def test_a_rotated_certificate_serves_new_connections(tmp_path: Path, ca: trustme.CA) -> None:
    path = config(tmp_path, ca)
    async with running_resolver(path, dot=True) as resolver:
        query = dns.message.make_query("www.example.com.", "A")
        _, _, before = await exchange(resolver.dot_port, client_context(ca), [query])
        # certbot's way: new files written over the old paths, under a running listener
        renewed = tls_files(tmp_path, ca, name="renewed")
        (tmp_path / "server.crt").write_bytes((tmp_path / "renewed.crt").read_bytes())
        (tmp_path / "server.key").write_bytes((tmp_path / "renewed.key").read_bytes())
        assert renewed

        async def rotated() -> bool:
            _, _, now = await exchange(resolver.dot_port, client_context(ca), [query])
            return now != before

        await wait_until(rotated, timeout=10, message="the renewed certificate served")
        reloads = resolver.service.registry.get_sample_value(
            "urn_tls_certificate_reloads_total", {"listener": "dot", "result": "ok"}
        )
        assert reloads == 1


async def test_a_broken_pair_is_refused_and_the_old_certificate_keeps_serving(
    tmp_path: Path, ca: trustme.CA
) -> None:
    async with running_resolver(config(tmp_path, ca), dot=True) as resolver:
        query = dns.message.make_query("www.example.com.", "A")
        _, _, before = await exchange(resolver.dot_port, client_context(ca), [query])
        tls_files(tmp_path, ca, name="other")
        # a key that does not match the certificate: a half-finished renewal
        (tmp_path / "server.key").write_bytes((tmp_path / "other.key").read_bytes())
        registry = resolver.service.registry

        def refused() -> bool:
            value = registry.get_sample_value(
                "urn_tls_certificate_reloads_total", {"listener": "dot", "result": "refused"}
            )
            return value == 1

        await wait_until(refused, timeout=10, message="the mismatched pair refused")
        replies, _, after = await exchange(resolver.dot_port, client_context(ca), [query])
        assert after == before
        assert addresses(replies[0]) == ALL
