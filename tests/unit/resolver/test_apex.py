"""A delegable zone compiled and answered without sockets: the apex NS with in-zone glue in
additional (its names compressed, for a question in any case), the SOA from the config as
an answer and, with TTL min(ttl, minimum), in authority, the nameservers' own addresses,
and a bare zone exactly as before."""

from __future__ import annotations

import json
import random
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.answer import Responder, explain, unknown_view
from resolver.levers import plain
from resolver.records import Compiled, compile_records
from sim.testing import document_dict
from urn.config import Document, parse_document

NS1, NS2, OUTSIDE = "ns1.example.com.", "ns2.example.com.", "ns.provider.net."
DELEGABLE = {
    "name": "example.com.",
    "ns": [NS1, NS2, OUTSIDE],
    "addresses": {NS1: ["192.0.2.1", "2001:db8::1"], NS2: ["192.0.2.2"]},
    "ttl": 7200,
    "soa": {
        "rname": "dns-admin.example.com.",
        "serial": 2026120101,
        "refresh": 14400,
        "retry": 3600,
        "expire": 1209600,
        "minimum": 300,
        "ttl": 3600,
    },
}
WWW = {"name": "www.example.com.", "answers": [{"value": "10.0.0.1"}]}


def document(*zones: Any, records: list[dict[str, Any]] | None = None) -> Document:
    return parse_document(document_dict(zones=list(zones or [DELEGABLE]), records=records or [WWW]))


def compiled(*zones: Any, records: list[dict[str, Any]] | None = None) -> Compiled:
    return compile_records(document(*zones, records=records), random.Random(1))


def ask(
    index: Compiled, name: str, rdtype: str, *, udp: bool = True, edns: int | None = 1232
) -> tuple[dns.message.Message, bytes]:
    responder = Responder(index, random.Random(2))
    use_edns = False if edns is None else 0
    query = dns.message.make_query(name, rdtype, use_edns=use_edns, payload=edns or 0)
    raw = responder.dns(query.to_wire(), udp, {})
    assert raw is not None
    return dns.message.from_wire(raw), raw


def records(section: list[dns.rrset.RRset]) -> list[tuple[str, str, int, str]]:
    return [
        (rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, rr.to_text())
        for rrset in section
        for rr in rrset
    ]


GLUE = [
    (NS1, "A", 7200, "192.0.2.1"),
    (NS1, "AAAA", 7200, "2001:db8::1"),
    (NS2, "A", 7200, "192.0.2.2"),
]


def test_the_apex_answers_every_nameserver_with_in_zone_glue_in_additional() -> None:
    for name in ("example.com.", "ExAmPle.COM."):
        reply, _ = ask(compiled(), name, "NS")
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.AA
        # Targets and glue owners point into the question: they come back in its case.
        assert [(o, t, ttl, v.lower()) for o, t, ttl, v in records(reply.answer)] == [
            ("example.com.", "NS", 7200, server) for server in (NS1, NS2, OUTSIDE)
        ]
        assert reply.authority == []
        assert records(reply.additional) == GLUE
        assert reply.edns == 0  # the OPT record still goes last, after the glue


def test_the_ns_answer_compresses_its_names() -> None:
    _, raw = ask(compiled(), "example.com.", "NS")

    def wire(name: str) -> int:
        return len(name) + 1

    uncompressed = (
        12
        + wire("example.com.")
        + 4
        + sum(2 + 10 + wire(server) for server in (NS1, NS2, OUTSIDE))
        + sum(wire(owner) + 10 + (4 if rtype == "A" else 16) for owner, rtype, *_ in GLUE)
        + 11
    )
    # ns1/ns2 targets become 4 bytes (label + pointer), each glue owner a 2-byte pointer.
    saved = 2 * (wire(NS1) - 6) + sum(wire(owner) - 2 for owner, *_ in GLUE)
    assert len(raw) == uncompressed - saved


def test_the_soa_answers_at_the_apex_and_negative_answers_carry_it_with_the_minimum_ttl() -> None:
    index = compiled()
    soa = f"{NS1} dns-admin.example.com. 2026120101 14400 3600 1209600 300"
    reply, _ = ask(index, "example.com.", "SOA")
    assert (reply.flags & dns.flags.AA, records(reply.answer)) == (
        dns.flags.AA,
        [("example.com.", "SOA", 3600, soa)],
    )
    for name, rdtype, rcode in (
        ("nope.example.com.", "A", dns.rcode.NXDOMAIN),
        ("www.example.com.", "AAAA", dns.rcode.NOERROR),  # NODATA
        ("www.example.com.", "NS", dns.rcode.NOERROR),  # NS below the apex: NODATA
        (NS2, "AAAA", dns.rcode.NOERROR),  # a nameserver without IPv6
    ):
        reply, _ = ask(index, name, rdtype)
        assert reply.rcode() == rcode, (name, rdtype)
        assert reply.flags & dns.flags.AA
        assert reply.answer == []
        assert records(reply.authority) == [("example.com.", "SOA", 300, soa)], (name, rdtype)
        assert reply.additional == []


def test_a_negative_ttl_is_the_soa_ttl_when_that_is_lower() -> None:
    zone = {**DELEGABLE, "soa": {"ttl": 30, "minimum": 300}}
    reply, _ = ask(compiled(zone), "nope.example.com.", "A")
    assert reply.authority[0].ttl == 30


def test_nameservers_answer_their_own_addresses_authoritatively() -> None:
    index = compiled()
    for name, rdtype, values in (
        (NS1, "A", ["192.0.2.1"]),
        (NS1, "AAAA", ["2001:db8::1"]),
        ("NS2.example.com.", "A", ["192.0.2.2"]),
    ):
        reply, _ = ask(index, name, rdtype)
        assert reply.flags & dns.flags.AA
        assert [r[3] for r in records(reply.answer)] == values
        assert {r[2] for r in records(reply.answer)} == {7200}
    reply, _ = ask(index, OUTSIDE, "A")  # outside every zone: not ours to answer
    assert reply.rcode() == dns.rcode.REFUSED


def test_a_deep_nameserver_name_makes_the_names_above_it_exist() -> None:
    server = "a.dns.example.com."
    zone = {"name": "example.com.", "ns": [server], "addresses": {server: ["192.0.2.9"]}}
    reply, _ = ask(compiled(zone), "dns.example.com.", "A")
    assert reply.rcode() == dns.rcode.NOERROR  # an empty non-terminal: NODATA, not NXDOMAIN
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_only_outside_nameservers_means_no_additional_section() -> None:
    zone = {"name": "example.com.", "ns": [OUTSIDE, "ns.other.org."]}
    reply, _ = ask(compiled(zone), "example.com.", "NS")
    assert [r[3] for r in records(reply.answer)] == [OUTSIDE, "ns.other.org."]
    assert reply.additional == []
    soa, _ = ask(compiled(zone), "example.com.", "SOA")
    assert soa.answer[0][0].mname.to_text() == OUTSIDE  # mname: the first nameserver


def test_a_bare_zone_answers_as_it_always_did() -> None:
    index = compiled("example.com.")
    reply, _ = ask(index, "example.com.", "NS")
    assert (reply.rcode(), reply.answer) == (dns.rcode.NOERROR, [])  # NODATA: no NS at all
    soa = "ns.example.com. hostmaster.example.com. 1 3600 600 86400 60"
    assert records(reply.authority) == [("example.com.", "SOA", 60, soa)]
    reply, _ = ask(index, "example.com.", "SOA")
    assert records(reply.answer) == [("example.com.", "SOA", 60, soa)]
    assert index.by_text["example.com."].apex is None


def test_any_at_a_delegable_apex_is_still_the_rfc8482_answer() -> None:
    reply, _ = ask(compiled(), "example.com.", "ANY")
    assert records(reply.answer) == [("example.com.", "HINFO", 3600, '"RFC8482" ""')]
    assert reply.additional == []


def test_udp_truncates_an_ns_answer_and_its_glue_whole_and_tcp_carries_it() -> None:
    servers = [f"ns{i}.example.com." for i in range(12)]
    glue = {s: [f"192.0.2.{i}", f"2001:db8::{i:x}"] for i, s in enumerate(servers)}
    index = compiled({"name": "example.com.", "ns": servers, "addresses": glue})
    reply, raw = ask(index, "example.com.", "NS", edns=None)  # 512 bytes at most
    assert reply.flags & dns.flags.TC
    assert (reply.answer, reply.authority, reply.additional) == ([], [], [])
    assert raw[6:12] == bytes(6)
    reply, raw = ask(index, "example.com.", "NS", edns=None, udp=False)
    assert not reply.flags & dns.flags.TC
    assert len(records(reply.answer)) == 12
    assert len(records(reply.additional)) == 24
    assert len(raw) > 512
    reply, _ = ask(index, "example.com.", "NS", edns=1232)  # fits in 1,232 bytes
    assert not reply.flags & dns.flags.TC
    assert len(records(reply.additional)) == 24


def test_json_answers_ns_with_additional_glue_and_soa_as_an_answer() -> None:
    responder = Responder(compiled(), random.Random(2))
    body = json.loads(responder.json("example.com.", 2, {}))
    assert body["Status"] == 0
    assert [a["data"] for a in body["Answer"]] == [NS1, NS2, OUTSIDE]
    assert {(a["name"], a["type"], a["TTL"]) for a in body["Answer"]} == {("example.com.", 2, 7200)}
    assert [(a["name"], a["type"], a["data"]) for a in body["Additional"]] == [
        (NS1, 1, "192.0.2.1"),
        (NS1, 28, "2001:db8::1"),
        (NS2, 1, "192.0.2.2"),
    ]
    assert "Authority" not in body
    body = json.loads(responder.json("example.com.", 6, {}))
    assert [a["type"] for a in body["Answer"]] == [6]
    assert "Additional" not in body


def test_explain_lists_the_apex_ns_records() -> None:
    index = compiled()
    decision = plain(index.levers, unknown_view(64))
    result = explain(index, document(), "example.com.", None, None, decision, random.Random(1), {})
    by_type = {r["type"]: r for r in result["records"]}
    assert set(by_type) == {"SOA", "NS"}
    assert by_type["NS"]["would_answer"] == [NS1, NS2, OUTSIDE]
    assert [a["status"] for a in by_type["NS"]["answers"]] == ["no_check"] * 3
    only_ns = explain(index, document(), "example.com.", 2, None, decision, random.Random(1), {})
    assert [r["type"] for r in only_ns["records"]] == ["NS"]
