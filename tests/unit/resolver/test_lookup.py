"""`answer.lookup`, the one decision ladder behind the DNS and JSON renderers: every rung,
in both name forms, and the renderers agreeing on what it decided."""

from __future__ import annotations

import json
import random
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import numpy as np
import pytest

from resolver.answer import Responder, down_view, lookup, resolve, unknown_view
from resolver.dnsmsg import NOERROR, NXDOMAIN, REFUSED
from resolver.levers import CLOSED, DEGRADED, NORMAL, OPEN, plain
from resolver.records import HINFO_ANY, Compiled, compile_records, name_to_wire
from sim.testing import document_dict
from sim.testing.resolver import answer_from, failover_record, multivalue_record, tcp_checks
from urn.config import parse_document
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 32
A, NS, SOA, CNAME, TXT, AAAA, ANY, IXFR, AXFR, MX = 1, 2, 6, 5, 16, 28, 255, 251, 252, 15
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
UP = aggregated_byte(Status.HEALTHY)


def compiled(fail_open: bool = True) -> Compiled:
    document = parse_document(
        document_dict(
            checks=tcp_checks(range(12)),
            records=[
                multivalue_record("www.example.com.", 4),
                failover_record("api.example.com.", ("10.1.0.1", 4), ("10.1.0.2", 5)),
                {
                    "name": "api.example.com.",
                    "type": "AAAA",
                    "policy": "weighted",
                    "answers": [
                        {"value": "2001:db8::1", "check": 6, "weight": 3},
                        {"value": "2001:db8::2", "check": 7, "weight": 1},
                        {"value": "2001:db8::3", "weight": 0},
                    ],
                },
                {"name": "api.example.com.", "type": "TXT", "answers": [{"value": 'say "hi"'}]},
                {
                    "name": "alias.example.com.",
                    "type": "CNAME",
                    "answers": [{"value": "www.example.com.", "check": 8}],
                },
                {"name": "deep.a.b.example.com.", "type": "A", "answers": [{"value": "10.9.9.9"}]},
                {"name": "x.sub.example.com.", "type": "A", "answers": [{"value": "10.8.8.8"}]},
            ],
            zones=[
                "example.com.",
                {
                    "name": "sub.example.com.",
                    "ns": ["ns1.sub.example.com.", "ns.example.net."],
                    "addresses": {"ns1.sub.example.com.": ["192.0.2.53", "2001:db8::53"]},
                },
            ],
            capacity=CAPACITY,
            fail_open=fail_open,
        )
    )
    return compile_records(document, random.Random(1))


def view(states: dict[int, int] | None = None, default: int = UP) -> bytes:
    table = np.full(CAPACITY, default, dtype=np.uint8)
    for slot, value in (states or {}).items():
        table[slot] = value
    return down_view(table)


def looked_up(index: Compiled, name: str | bytes, qtype: int, down: bytes, seed: int) -> Any:
    """`lookup` from the down view `down`, with no slot levers."""
    decision = plain(index.levers, down)
    return lookup(index, name, qtype, decision.views, decision.modes, random.Random(seed))


def both(
    index: Compiled, name: str, qtype: int, down: bytes | None = None
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """lookup of the same question in wire form and in text form, from equal rngs."""
    down = unknown_view(CAPACITY) if down is None else down
    wire = looked_up(index, name_to_wire(name), qtype, down, 9)
    text = looked_up(index, name, qtype, down, 9)
    return wire, text


@pytest.mark.parametrize("name", ["example.org.", "www.example.org.", "com.", "."])
def test_a_name_outside_every_zone_is_refused_and_not_authoritative(name: str) -> None:
    for result in both(compiled(), name, A):
        assert result == (REFUSED, False, None, (), None, NORMAL)


@pytest.mark.parametrize(
    ("name", "zone"),
    [("zz.example.com.", "example.com."), ("y.sub.example.com.", "sub.example.com.")],
)
def test_a_missing_name_in_a_zone_is_nxdomain_with_the_most_specific_zone_soa(
    name: str, zone: str
) -> None:
    index = compiled()
    (soa_zone,) = [z for z in index.zones if z.name == zone]
    wire, text = both(index, name, A)
    assert wire == (NXDOMAIN, True, None, (), soa_zone.negative_wire, NORMAL)
    assert text == (NXDOMAIN, True, None, (), soa_zone.negative_json, NORMAL)


def test_the_entry_for_the_type_answers_with_every_healthy_candidate() -> None:
    index = compiled()
    node = index.by_text["www.example.com."]
    entry = node.by_type[A]
    wire, text = both(index, "www.example.com.", A, view({0: DOWN}))
    rcode, authoritative, found, answers, authority, mode = wire
    assert (rcode, authoritative, found, authority, mode) == (
        NOERROR,
        True,
        node,
        None,
        NORMAL | DEGRADED,  # one answer is down
    )
    assert sorted(answers) == sorted(entry.wires[1:])  # multivalue: random order, 0 is down
    assert text[3] == [entry.jsons[entry.wires.index(answer)] for answer in answers]


def test_a_cname_answers_for_every_type_of_its_name() -> None:
    index = compiled()
    cname = index.by_text["alias.example.com."].cname
    assert cname is not None
    for qtype in (A, AAAA, TXT, MX, CNAME, ANY):
        wire, text = both(index, "alias.example.com.", qtype)
        assert wire[:3] == (NOERROR, True, index.by_text["alias.example.com."])
        assert (list(wire[3]), list(text[3])) == (list(cname.wires), list(cname.jsons))


@pytest.mark.parametrize("fail_open", [True, False])
def test_every_candidate_down_fails_open_only_when_configured(fail_open: bool) -> None:
    index = compiled(fail_open)
    entry = index.by_text["api.example.com."].by_type[A]
    wire, text = both(index, "api.example.com.", A, view(default=DOWN))
    if fail_open:  # failover fails open to the primary
        assert wire[3:] == ([entry.wires[0]], None, OPEN | DEGRADED)
        assert text[3:] == ([entry.jsons[0]], None, OPEN | DEGRADED)
    else:  # `fail_open: false` is when_all_down closed: NODATA, the zone's SOA in authority
        zone = index.by_text["api.example.com."].zone
        assert wire == (NOERROR, True, wire[2], (), zone.negative_wire, CLOSED)
        assert text == (NOERROR, True, text[2], (), zone.negative_json, CLOSED)


def test_one_candidate_up_is_not_fail_open() -> None:
    index = compiled()
    failover = index.by_text["api.example.com."].by_type[A]
    wire, _ = both(index, "api.example.com.", A, view({4: DOWN}))  # the primary is down
    assert wire[3:] == ([failover.wires[1]], None, NORMAL | DEGRADED)
    multivalue = index.by_text["www.example.com."].by_type[A]
    wire, _ = both(index, "www.example.com.", A, view({0: DOWN, 1: DOWN, 2: DOWN}))
    assert wire[3:] == ([multivalue.wires[3]], None, NORMAL | DEGRADED)


def test_any_gets_the_rfc8482_hinfo_answer() -> None:
    index = compiled()
    node = index.by_text["www.example.com."]
    wire, text = both(index, "www.example.com.", ANY)
    assert wire == (NOERROR, True, node, (HINFO_ANY,), None, NORMAL)
    (fragment,) = text[3]
    assert json.loads(fragment) == {
        "name": "www.example.com.",
        "type": 13,
        "TTL": 3600,
        "data": '"RFC8482" ""',
    }
    assert text[:3] + text[4:] == (NOERROR, True, node, None, NORMAL)


@pytest.mark.parametrize("qtype", [IXFR, AXFR])
@pytest.mark.parametrize("name", ["example.com.", "www.example.com.", "b.example.com."])
def test_zone_transfers_are_refused_for_names_that_exist(qtype: int, name: str) -> None:
    index = compiled()
    for result in both(index, name, qtype):
        assert result == (REFUSED, False, index.by_text[name], (), None, NORMAL)


@pytest.mark.parametrize(
    ("name", "qtype", "zone"),
    [
        ("www.example.com.", AAAA, "example.com."),
        ("www.example.com.", MX, "example.com."),
        ("b.example.com.", A, "example.com."),  # an empty non-terminal exists: NODATA
        ("a.b.example.com.", TXT, "example.com."),
        ("sub.example.com.", A, "sub.example.com."),
    ],
)
def test_nodata_puts_the_zone_soa_in_authority(name: str, qtype: int, zone: str) -> None:
    index = compiled()
    node = index.by_text[name]
    assert node.zone.name == zone
    wire, text = both(index, name, qtype)
    assert wire == (NOERROR, True, node, (), node.zone.negative_wire, NORMAL)
    assert text == (NOERROR, True, node, (), node.zone.negative_json, NORMAL)


def test_the_apex_answers_its_soa() -> None:
    index = compiled()
    entry = index.by_text["example.com."].by_type[SOA]
    wire, text = both(index, "example.com.", SOA)
    assert (wire[3], text[3]) == (list(entry.wires), list(entry.jsons))


def health_patterns(width: int) -> list[set[int]]:
    """Every up/down pattern of `width` candidates: the positions of the down ones."""
    return [{i for i in range(width) if bits >> i & 1} for bits in range(1 << width)]


@pytest.mark.parametrize("fail_open", [True, False])
def test_lookup_chooses_exactly_what_resolve_chooses(fail_open: bool) -> None:
    index = compiled(fail_open)
    for name, node in index.by_text.items():
        for qtype, entry in node.by_type.items():
            slots = [c.slot for c in entry.candidates]
            for pattern in health_patterns(len(slots)):
                down = view(
                    {
                        slot: DOWN
                        for i, slot in enumerate(slots)
                        if i in pattern and slot is not None
                    }
                )
                decision = plain(index.levers, down)
                for seed in range(4):
                    expected = resolve(
                        entry,
                        decision.views,
                        decision.modes[entry.index],
                        random.Random(seed),
                        entry.wires,
                    )
                    result = looked_up(index, name_to_wire(name), qtype, down, seed)
                    assert (list(result[3]), result[5]) == expected, (name, qtype, pattern)


NAMES = [
    "www.example.com.",
    "api.example.com.",
    "alias.example.com.",
    "deep.a.b.example.com.",
    "b.example.com.",
    "example.com.",
    "sub.example.com.",
    "x.sub.example.com.",
    "ns1.sub.example.com.",
    "zz.example.com.",
    "zz.sub.example.com.",
    "example.org.",
]
QTYPES = [A, NS, AAAA, TXT, CNAME, SOA, MX, ANY, IXFR, AXFR, 65]
TABLES = {
    "unknown": unknown_view(CAPACITY),
    "up": view(),
    "down": view(default=DOWN),
    "mixed": view({0: DOWN, 2: DOWN, 4: DOWN, 7: DOWN, 8: DOWN}),
}


@pytest.mark.parametrize("fail_open", [True, False])
@pytest.mark.parametrize("table", list(TABLES))
def test_wire_and_text_lookups_decide_the_same(table: str, fail_open: bool) -> None:
    index = compiled(fail_open)
    for name in NAMES:
        for qtype in QTYPES:
            for seed in range(3):
                down = TABLES[table]
                wire = looked_up(index, name_to_wire(name), qtype, down, seed)
                text = looked_up(index, name, qtype, down, seed)
                question = (name, qtype, seed)
                rcode, authoritative, node, answers, authority, failed_open = wire
                assert (rcode, authoritative, node, failed_open) == (
                    text[0],
                    text[1],
                    text[2],
                    text[5],
                ), question
                assert len(answers) == len(text[3]), question
                if node is not None and answers and answers[0] != HINFO_ANY:
                    entry = node.by_type.get(qtype) or node.cname
                    if entry is None and node.apex is not None:
                        entry = node.apex.ns
                    assert entry is not None
                    picked = [entry.wires.index(a) for a in answers]
                    assert picked == [entry.jsons.index(a) for a in text[3]], question
                tails: dict[object, object] = {
                    z.negative_wire: z.negative_json for z in index.zones
                }
                tails.update(
                    (n.apex.glue_wire, n.apex.glue_json)
                    for n in index.by_text.values()
                    if n.apex is not None
                )
                assert (authority is None) == (text[4] is None), question
                if authority is not None:
                    assert tails[authority] == text[4], question


@pytest.mark.parametrize("fail_open", [True, False])
@pytest.mark.parametrize("table", list(TABLES))
def test_the_wire_and_json_renderers_agree(table: str, fail_open: bool) -> None:
    index = compiled(fail_open)
    for name in NAMES:
        for qtype in [q for q in QTYPES if q not in (IXFR, AXFR)] + [IXFR, AXFR]:
            wire_responder = Responder(index, random.Random(3))
            json_responder = Responder(index, random.Random(3))
            answer_from(wire_responder, TABLES[table])
            answer_from(json_responder, TABLES[table])
            query = dns.message.make_query(name, dns.rdatatype.RdataType.make(qtype)).to_wire()
            raw = wire_responder.dns(query, False, {})
            assert raw is not None
            reply = dns.message.from_wire(raw)
            body = json.loads(json_responder.json(name, qtype, {}))
            question = (name, qtype)
            assert reply.rcode() == body["Status"], question
            assert bool(reply.flags & dns.flags.AA) == (body["Status"] != dns.rcode.REFUSED)
            assert [(rr.rdtype, rr.to_text()) for rrset in reply.answer for rr in rrset] == [
                (a["type"], a["data"]) for a in body["Answer"]
            ], question
            authority = [rr.to_text() for rrset in reply.authority for rr in rrset]
            assert authority == [a["data"] for a in body.get("Authority", [])], question
            additional = [
                (rrset.name.to_text(), rr.rdtype, rr.to_text())
                for rrset in reply.additional
                for rr in rrset
            ]
            assert additional == [
                (a["name"], a["type"], a["data"]) for a in body.get("Additional", [])
            ], question
            assert body.get("fail_open", False) == bool(wire_responder.fail_open_answers)
            assert json_responder.fail_open_answers == wire_responder.fail_open_answers


def test_other_classes_are_refused_before_any_lookup() -> None:
    responder = Responder(compiled(), random.Random(1))
    query = dns.message.make_query("www.example.com.", "A", rdclass="CH").to_wire()
    tally: dict[tuple[int, int], int] = {}
    raw = responder.dns(query, True, tally)
    assert raw is not None
    reply = dns.message.from_wire(raw)
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    assert (reply.answer, reply.authority) == ([], [])
    assert tally == {(A, REFUSED): 1}
