"""The hand parser and the Responder over wire bytes: the corpus, EDNS, truncation, rcodes."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import numpy as np
import pytest

from resolver.answer import Responder, down_view
from resolver.dnsmsg import MAX_UDP_PAYLOAD, Dropped, FormErr, NotImplementedOpcode, parse_query
from resolver.records import compile_records
from sim.testing import document_dict
from sim.testing.resolver import answer_from, check_outcome, multivalue_record, tcp_checks
from urn.config import parse_document
from urn.table import Reason, Status, aggregated_byte

CORPUS = Path(__file__).parents[2] / "corpus" / "dns"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
CAPACITY = 64


def make_responder(fail_open: bool = True) -> Responder:
    document = parse_document(
        document_dict(
            checks=tcp_checks(range(40)),
            records=[
                multivalue_record("www.example.com.", 8),
                {
                    "name": "alias.example.com.",
                    "type": "CNAME",
                    "answers": [{"value": "www.example.com."}],
                },
                {
                    "name": "v6.example.com.",
                    "type": "AAAA",
                    "answers": [{"value": "2001:db8::1", "check": 9}],
                },
                {
                    "name": "big.example.com.",
                    "type": "TXT",
                    "answers": [{"value": f"{i:03d}" + "x" * 197} for i in range(8)],
                },
                {"name": "deep.a.b.example.com.", "type": "A", "answers": [{"value": "10.9.9.9"}]},
            ],
            zones=["example.com.", "sub.example.net."],
            capacity=CAPACITY,
            fail_open=fail_open,
        )
    )
    return Responder(compile_records(document, random.Random(1)), random.Random(2))


def ask(
    responder: Responder, message: dns.message.Message, udp: bool = True
) -> dns.message.Message:
    wire = responder.dns(message.to_wire(), udp, {})
    assert wire is not None
    return dns.message.from_wire(wire)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_corpus_outcome(case: str) -> None:
    query = (CORPUS / f"{case}.bin").read_bytes()
    responder = make_responder()
    tally: dict[tuple[int, int], int] = {}
    for udp in (True, False):
        problem = check_outcome(query, responder.dns(query, udp, tally), EXPECTED[case]["outcome"])
        assert problem is None, f"{case} ({EXPECTED[case]['why']}): {problem}"


def test_corpus_files_and_expectations_match() -> None:
    assert {p.stem for p in CORPUS.glob("*.bin")} == set(EXPECTED)


def test_parser_reports_reasons() -> None:
    with pytest.raises(Dropped):
        parse_query(b"\0" * 11)
    with pytest.raises(NotImplementedOpcode):
        parse_query(struct.pack(">HHHHHH", 1, 0x2800, 1, 0, 0, 0))
    with pytest.raises(FormErr) as info:
        parse_query(struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1")
    assert info.value.reason == "pointer"


def test_parser_returns_question_offsets_and_edns() -> None:
    query = dns.message.make_query(
        "www.example.com.", "AAAA", use_edns=0, payload=4096, want_dnssec=True
    )
    name_end, qtype, qclass, udp_limit, do_bit = parse_query(query.to_wire())
    assert (name_end, qtype, qclass, udp_limit, do_bit) == (12 + 17, 28, 1, 4096, 0x80)
    small = dns.message.make_query("www.example.com.", "A", use_edns=0, payload=100)
    assert parse_query(small.to_wire())[3] == 512


def test_answer_echoes_question_case_and_sets_flags() -> None:
    query = dns.message.make_query("WwW.Example.COM.", "A")
    query.flags |= dns.flags.CD
    response = ask(make_responder(), query)
    assert response.id == query.id
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert response.flags & dns.flags.RD
    assert response.flags & dns.flags.CD
    assert not response.flags & dns.flags.RA
    assert str(response.question[0].name) == "WwW.Example.COM."
    assert len(response.answer[0]) == 8
    assert response.edns < 0  # no OPT in the query, none in the reply


def test_edns_is_echoed_with_do_bit() -> None:
    query = dns.message.make_query("www.example.com.", "A", use_edns=0, want_dnssec=True)
    response = ask(make_responder(), query)
    assert response.edns == 0
    assert response.payload == MAX_UDP_PAYLOAD
    assert response.ednsflags & dns.flags.DO


def test_nxdomain_under_a_zone_carries_its_soa() -> None:
    response = ask(make_responder(), dns.message.make_query("nope.example.com.", "A"))
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.authority[0].rdtype == dns.rdatatype.SOA
    assert str(response.authority[0].name) == "example.com."
    deeper_zone = ask(make_responder(), dns.message.make_query("x.sub.example.net.", "A"))
    assert deeper_zone.rcode() == dns.rcode.NXDOMAIN
    assert str(deeper_zone.authority[0].name) == "sub.example.net."


def test_nodata_for_known_name_other_type_and_empty_non_terminal() -> None:
    responder = make_responder()
    for name, rdtype in (
        ("www.example.com.", "AAAA"),
        ("www.example.com.", "MX"),
        ("a.b.example.com.", "A"),
    ):
        response = ask(responder, dns.message.make_query(name, rdtype))
        assert response.rcode() == dns.rcode.NOERROR, name
        assert response.answer == []
        assert response.authority[0].rdtype == dns.rdatatype.SOA


def test_refused_outside_zones_without_aa() -> None:
    response = ask(make_responder(), dns.message.make_query("www.example.org.", "A"))
    assert response.rcode() == dns.rcode.REFUSED
    assert not response.flags & dns.flags.AA


def test_cname_answers_every_type_and_aaaa_and_soa_work() -> None:
    responder = make_responder()
    response = ask(responder, dns.message.make_query("alias.example.com.", "A"))
    assert response.answer[0].rdtype == dns.rdatatype.CNAME
    assert str(response.answer[0][0].target) == "www.example.com."
    v6 = ask(responder, dns.message.make_query("v6.example.com.", "AAAA"))
    assert v6.answer[0][0].address == "2001:db8::1"
    soa = ask(responder, dns.message.make_query("example.com.", "SOA"))
    assert soa.answer[0].rdtype == dns.rdatatype.SOA


def test_any_gets_the_rfc8482_minimal_answer_and_axfr_is_refused() -> None:
    responder = make_responder()
    response = ask(responder, dns.message.make_query("www.example.com.", "ANY"))
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer[0].rdtype == dns.rdatatype.HINFO
    assert response.answer[0][0].cpu == b"RFC8482"
    axfr = ask(responder, dns.message.make_query("example.com.", "AXFR"), udp=False)
    assert axfr.rcode() == dns.rcode.REFUSED


def test_udp_truncates_beyond_512_or_the_edns_size_and_tcp_does_not() -> None:
    responder = make_responder()
    plain = ask(responder, dns.message.make_query("big.example.com.", "TXT"))
    assert plain.flags & dns.flags.TC
    assert plain.answer == []
    edns = ask(
        responder, dns.message.make_query("big.example.com.", "TXT", use_edns=0, payload=4096)
    )
    assert edns.flags & dns.flags.TC  # 8 x 200 bytes exceed our 1232-byte UDP ceiling
    tcp = ask(responder, dns.message.make_query("big.example.com.", "TXT"), udp=False)
    assert not tcp.flags & dns.flags.TC
    assert len(tcp.answer[0]) == 8
    small = ask(responder, dns.message.make_query("www.example.com.", "A"))
    assert not small.flags & dns.flags.TC


def test_all_down_fails_open_and_is_counted() -> None:
    responder = make_responder()
    table = np.full(CAPACITY, aggregated_byte(Status.UNHEALTHY, Reason.REFUSED), dtype=np.uint8)
    answer_from(responder, down_view(table))
    response = ask(responder, dns.message.make_query("www.example.com.", "A"))
    assert len(response.answer[0]) == 8
    assert responder.fail_open_answers == 1
    closed = make_responder(fail_open=False)  # when_all_down closed: NODATA with the SOA
    answer_from(closed, down_view(table))
    response = ask(closed, dns.message.make_query("www.example.com.", "A"))
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []
    assert [rrset.rdtype for rrset in response.authority] == [dns.rdatatype.SOA]
    assert closed.fail_open_answers == 0


def test_tally_counts_by_qtype_and_rcode() -> None:
    responder = make_responder()
    tally: dict[tuple[int, int], int] = {}
    responder.dns(dns.message.make_query("www.example.com.", "A").to_wire(), True, tally)
    responder.dns(dns.message.make_query("no.example.com.", "A").to_wire(), True, tally)
    responder.dns(b"\0\1\0\0\0\0\0\0\0\0\0\0", True, tally)
    assert tally == {(1, 0): 1, (1, 3): 1, (-1, 1): 1}
    assert responder.malformed == {"qdcount": 1}


def test_smallest_ttl_reads_answer_and_authority_past_compression() -> None:
    import dns.message
    import dns.rrset

    from resolver.dnsmsg import smallest_ttl

    query = dns.message.make_query("a.example.com.", "A", use_edns=0)
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("a.example.com.", 30, "IN", "A", "192.0.2.1"))
    reply.authority.append(dns.rrset.from_text("example.com.", 20, "IN", "NS", "ns.example.com."))
    reply.additional.append(dns.rrset.from_text("ns.example.com.", 5, "IN", "A", "192.0.2.9"))
    wire = reply.to_wire()
    assert smallest_ttl(wire) == 20  # the additional section's 5 is not an answer's
    assert smallest_ttl(wire[:-35]) is None  # cut inside the authority: no lifetime
    assert smallest_ttl(dns.message.make_response(query).to_wire()) is None
    assert smallest_ttl(b"\0" * 5) is None
