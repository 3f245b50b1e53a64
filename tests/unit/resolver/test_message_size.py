"""No response exceeds 65,535 bytes: validation refuses a record that could make one, and
the wire path cuts one it is handed anyway (TC set) on streams, as UDP always has."""

from __future__ import annotations

import random
from dataclasses import replace

import dns.flags
import dns.message
import dns.rcode
import pytest

from resolver.answer import Responder
from resolver.dnsmsg import MAX_MESSAGE
from resolver.records import compile_records
from sim.testing import document_dict
from urn.config import Answer, parse_document
from urn.errors import ConfigError

NAME = "big.example.com."


def txt_record(count: int, length: int = 255, policy: str = "simple") -> dict[str, object]:
    """`count` distinct TXT strings of `length` bytes each."""
    return {
        "name": NAME,
        "type": "TXT",
        "policy": policy,
        "answers": [{"value": f"{i:04d}" + "x" * (length - 4)} for i in range(count)],
    }


def query(edns: bool = True) -> bytes:
    return dns.message.make_query(NAME, "TXT", use_edns=0 if edns else False).to_wire()


def test_a_300_answer_record_is_refused_naming_the_field_and_the_size() -> None:
    small = {"name": "a.example.com.", "answers": [{"value": "192.0.2.1"}]}
    document = document_dict(records=[small, txt_record(300, 240)])
    with pytest.raises(ConfigError) as caught:
        parse_document(document)
    assert caught.value.field_path == "records[1].answers"
    assert "over the 65,535 a DNS message can hold" in str(caught.value)
    assert "75,944 bytes" in str(caught.value)


@pytest.mark.parametrize(
    ("record", "fits"),
    [
        (txt_record(244), True),  # 12 + 21 + 244 x 268 + 11 = 65,436
        (txt_record(245), False),  # 65,704
        (txt_record(300, policy="multivalue"), True),  # at most 8 answers per response
        (txt_record(300, policy="weighted"), True),  # one
        (
            {
                "name": "v6.example.com.",
                "type": "AAAA",
                "answers": [{"value": f"2001:db8::{i:x}"} for i in range(2300)],
            },
            True,  # 28 bytes an answer: 64,448
        ),
        (
            {
                "name": "v6.example.com.",
                "type": "AAAA",
                "answers": [{"value": f"2001:db8::{i:x}"} for i in range(2400)],
            },
            False,
        ),
    ],
)
def test_the_bound_is_the_largest_response_the_policy_can_give(
    record: dict[str, object], fits: bool
) -> None:
    document = document_dict(records=[record])
    if fits:
        parse_document(document)
    else:
        with pytest.raises(ConfigError, match=r"records\[0\]\.answers"):
            parse_document(document)


def test_the_largest_accepted_record_fits_every_transport() -> None:
    document = parse_document(document_dict(records=[txt_record(244)]))
    responder = Responder(compile_records(document, random.Random(1)), random.Random(1))
    stream = responder.dns(query(), False, {})
    assert stream is not None
    assert len(stream) <= MAX_MESSAGE
    reply = dns.message.from_wire(stream)
    assert not reply.flags & dns.flags.TC
    assert sum(len(rrset) for rrset in reply.answer) == 244
    udp = responder.dns(query(), True, {})
    assert udp is not None
    assert len(udp) <= 1232
    truncated = dns.message.from_wire(udp)
    assert truncated.flags & dns.flags.TC
    assert not truncated.answer


def test_a_record_past_the_bound_is_cut_to_whole_answers_with_tc_on_streams() -> None:
    # Validation refuses such a record; the wire path must still never build more.
    document = parse_document(document_dict(records=[txt_record(200)]))
    record = document.records[0]
    more = tuple(Answer(value=f"{i:04d}" + "y" * 251) for i in range(100))
    document = replace(document, records=(replace(record, answers=record.answers + more),))
    responder = Responder(compile_records(document, random.Random(1)), random.Random(1))
    for edns in (True, False):
        wire = responder.dns(query(edns), False, {})
        assert wire is not None
        assert len(wire) <= MAX_MESSAGE
        reply = dns.message.from_wire(wire)
        assert reply.flags & dns.flags.TC
        assert reply.rcode() == dns.rcode.NOERROR
        assert 0 < sum(len(rrset) for rrset in reply.answer) < 300
        udp = dns.message.from_wire(responder.dns(query(edns), True, {}) or b"")
        assert udp.flags & dns.flags.TC
        assert not udp.answer
