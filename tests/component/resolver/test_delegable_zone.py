"""A delegable zone over real loopback DNS (dnspython, UDP and TCP) and the JSON API: the
apex answers NS with in-zone glue and SOA, the nameservers answer their addresses, every
answer is authoritative, NXDOMAIN and NODATA still carry the SOA, a bare zone still works
as before, and a config pass turns a bare zone into a delegable one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from sim.testing import FakeClock, document_dict
from sim.testing.resolver import running_resolver, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from sim.testing.resolver import RunningResolver

NS1, NS2, OUTSIDE = "ns1.gslb.example.com.", "ns2.gslb.example.com.", "ns.provider.net."
SOA = f"{NS1} hostmaster.example.com. 2026120101 3600 600 1209600 60"


def delegable() -> dict[str, Any]:
    return {
        "name": "gslb.example.com.",
        "ns": [NS1, NS2, OUTSIDE],
        "addresses": {NS1: ["192.0.2.1", "2001:db8::1"], NS2: ["192.0.2.2"]},
        "soa": {"rname": "hostmaster.example.com.", "serial": 2026120101, "expire": 1209600},
    }


def config(tmp_path: Path, *zones: Any) -> Path:
    records = [
        {"name": "www.gslb.example.com.", "answers": [{"value": "10.0.0.1"}]},
        {"name": "www.bare.example.", "answers": [{"value": "10.0.0.2"}]},
    ]
    document = document_dict(zones=list(zones or [delegable(), "bare.example."]), records=records)
    return write_config(tmp_path / "urn.json", document)


async def query(
    resolver: RunningResolver, name: str, rdtype: str, *, tcp: bool = False
) -> dns.message.Message:
    message = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
    send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await send(message, "127.0.0.1", port=resolver.dns_port, timeout=5)


def rows(section: list[dns.rrset.RRset]) -> list[tuple[str, str, str]]:
    return [
        (rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), rr.to_text().lower())
        for rrset in section
        for rr in rrset
    ]


async def resolve_json(resolver: RunningResolver, name: str, rdtype: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{resolver.url}/v1/resolve", params={"name": name, "type": rdtype}) as r,
    ):
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


GLUE = [(NS1, "A", "192.0.2.1"), (NS1, "AAAA", "2001:db8::1"), (NS2, "A", "192.0.2.2")]


async def test_the_apex_answers_ns_with_glue_and_soa_over_udp_and_tcp(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        for tcp in (False, True):
            reply = await query(resolver, "GSLB.example.com.", "NS", tcp=tcp)
            assert reply.rcode() == dns.rcode.NOERROR
            assert reply.flags & dns.flags.AA, tcp
            assert rows(reply.answer) == [
                ("gslb.example.com.", "NS", server) for server in (NS1, NS2, OUTSIDE)
            ]
            assert reply.authority == []
            assert rows(reply.additional) == GLUE
            reply = await query(resolver, "gslb.example.com.", "SOA", tcp=tcp)
            assert reply.flags & dns.flags.AA
            assert rows(reply.answer) == [("gslb.example.com.", "SOA", SOA)]
            assert reply.answer[0].ttl == 60


async def test_nameservers_answer_their_addresses(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        for name, rdtype, values in (
            (NS1, "A", ["192.0.2.1"]),
            (NS1, "AAAA", ["2001:db8::1"]),
            (NS2, "A", ["192.0.2.2"]),
        ):
            reply = await query(resolver, name, rdtype)
            assert reply.flags & dns.flags.AA
            assert [row[2] for row in rows(reply.answer)] == values
        reply = await query(resolver, OUTSIDE, "A")  # not a zone of ours
        assert reply.rcode() == dns.rcode.REFUSED
        assert not reply.flags & dns.flags.AA


async def test_negative_answers_still_carry_the_soa(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        for name, rdtype, rcode in (
            ("nope.gslb.example.com.", "A", dns.rcode.NXDOMAIN),
            ("www.gslb.example.com.", "AAAA", dns.rcode.NOERROR),
            ("www.gslb.example.com.", "NS", dns.rcode.NOERROR),
            (NS2, "AAAA", dns.rcode.NOERROR),
        ):
            reply = await query(resolver, name, rdtype)
            assert (reply.rcode(), reply.answer) == (rcode, []), (name, rdtype)
            assert reply.flags & dns.flags.AA
            assert rows(reply.authority) == [("gslb.example.com.", "SOA", SOA)]
            assert reply.authority[0].ttl == 60  # min(soa ttl, minimum)


async def test_a_bare_zone_still_answers_as_before(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        reply = await query(resolver, "www.bare.example.", "A")
        assert reply.flags & dns.flags.AA
        assert rows(reply.answer) == [("www.bare.example.", "A", "10.0.0.2")]
        bare_soa = "ns.bare.example. hostmaster.bare.example. 1 3600 600 86400 60"
        reply = await query(resolver, "bare.example.", "NS")  # no NS at a bare apex: NODATA
        assert (reply.rcode(), reply.answer) == (dns.rcode.NOERROR, [])
        assert rows(reply.authority) == [("bare.example.", "SOA", bare_soa)]
        reply = await query(resolver, "bare.example.", "SOA")
        assert rows(reply.answer) == [("bare.example.", "SOA", bare_soa)]
        reply = await query(resolver, "nope.bare.example.", "A")
        assert reply.rcode() == dns.rcode.NXDOMAIN
        assert rows(reply.authority) == [("bare.example.", "SOA", bare_soa)]


async def test_the_json_api_answers_ns_and_soa(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver:
        body = await resolve_json(resolver, "gslb.example.com", "NS")
        assert body["Status"] == 0
        assert [(a["name"], a["type"], a["data"]) for a in body["Answer"]] == [
            ("gslb.example.com.", 2, server) for server in (NS1, NS2, OUTSIDE)
        ]
        assert [(a["name"], a["type"], a["data"]) for a in body["Additional"]] == [
            (NS1, 1, "192.0.2.1"),
            (NS1, 28, "2001:db8::1"),
            (NS2, 1, "192.0.2.2"),
        ]
        body = await resolve_json(resolver, "gslb.example.com", "SOA")
        assert [(a["type"], a["data"]) for a in body["Answer"]] == [(6, SOA)]
        body = await resolve_json(resolver, "nope.gslb.example.com", "A")
        assert body["Status"] == 3
        assert [a["data"] for a in body["Authority"]] == [SOA]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{resolver.url}/v1/explain", params={"name": "gslb.example.com"}) as r,
        ):
            assert r.status == 200
            explained = await r.json()
        by_type = {record["type"]: record for record in explained["records"]}
        assert by_type["NS"]["would_answer"] == [NS1, NS2, OUTSIDE]
        assert set(by_type) == {"NS", "SOA"}


async def test_a_config_pass_makes_a_bare_zone_delegable(tmp_path: Path) -> None:
    path = config(tmp_path, "gslb.example.com.", "bare.example.")
    async with running_resolver(path, clock=FakeClock()) as resolver:
        reply = await query(resolver, "gslb.example.com.", "NS")
        assert reply.answer == []
        config(tmp_path, delegable(), "bare.example.")
        assert await resolver.service.reload()
        reply = await query(resolver, "gslb.example.com.", "NS")
        assert [row[2] for row in rows(reply.answer)] == [NS1, NS2, OUTSIDE]
        assert rows(reply.additional) == GLUE
