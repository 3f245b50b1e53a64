"""The UDP size rule: a response goes whole over UDP while it fits the requestor's EDNS
payload size (at most our 1,232), or 512 bytes without EDNS; else TC with no answers."""

from __future__ import annotations

import random

import dns.flags
import dns.message

from resolver.answer import Responder
from resolver.dnsmsg import MAX_UDP_PAYLOAD
from resolver.records import compile_records
from sim.testing import document_dict
from urn.config import parse_document


def txt_record(name: str, count: int) -> dict[str, object]:
    """`count` TXT answers of 180 bytes: 193 bytes each on the wire."""
    return {
        "name": name,
        "type": "TXT",
        "answers": [{"value": f"{i:02d}" + "x" * 178} for i in range(count)],
    }


RESPONDER = Responder(
    compile_records(
        parse_document(
            document_dict(
                records=[txt_record("mid.example.com.", 4), txt_record("big.example.com.", 8)]
            )
        ),
        random.Random(1),
    ),
    random.Random(1),
)


def ask(name: str, udp: bool, payload: int | None) -> tuple[bytes, dns.message.Message]:
    """The wire reply to a TXT query, with EDNS advertising `payload` (None: no EDNS)."""
    use_edns = False if payload is None else 0
    query = dns.message.make_query(name, "TXT", use_edns=use_edns, payload=payload or 0)
    wire = RESPONDER.dns(query.to_wire(), udp, {})
    assert wire is not None
    return wire, dns.message.from_wire(wire)


def whole(reply: dns.message.Message, answers: int) -> bool:
    return not reply.flags & dns.flags.TC and sum(len(r) for r in reply.answer) == answers


def truncated(reply: dns.message.Message) -> bool:
    return bool(reply.flags & dns.flags.TC) and not reply.answer


def test_a_response_past_512_goes_whole_over_udp_up_to_the_edns_size() -> None:
    stream, _ = ask("mid.example.com.", udp=False, payload=MAX_UDP_PAYLOAD)
    assert 512 < len(stream) < MAX_UDP_PAYLOAD  # 816 bytes
    for payload in (len(stream), MAX_UDP_PAYLOAD, 4096):
        wire, reply = ask("mid.example.com.", udp=True, payload=payload)
        assert whole(reply, 4), payload
        assert wire[2:] == stream[2:]  # the very bytes TCP gets, past the query's id
        assert reply.edns == 0


def test_past_the_advertised_size_or_512_without_edns_it_is_truncated() -> None:
    stream, _ = ask("mid.example.com.", udp=False, payload=MAX_UDP_PAYLOAD)
    _, reply = ask("mid.example.com.", udp=True, payload=len(stream) - 1)
    assert truncated(reply)
    assert reply.edns == 0  # a truncated reply still carries our OPT record
    classic, _ = ask("mid.example.com.", udp=False, payload=None)
    assert len(classic) > 512
    _, reply = ask("mid.example.com.", udp=True, payload=None)
    assert truncated(reply)
    assert reply.edns == -1


def test_we_never_send_more_than_1232_over_udp_whatever_the_client_advertises() -> None:
    stream, _ = ask("big.example.com.", udp=False, payload=4096)
    assert len(stream) > MAX_UDP_PAYLOAD  # 1,588 bytes
    wire, reply = ask("big.example.com.", udp=True, payload=4096)
    assert truncated(reply)
    assert len(wire) <= MAX_UDP_PAYLOAD
    assert whole(dns.message.from_wire(stream), 8)


def test_an_advertised_size_below_512_counts_as_512() -> None:
    _, reply = ask("small.example.com.", udp=True, payload=100)  # NXDOMAIN with an SOA
    assert not reply.flags & dns.flags.TC
    assert reply.authority
