"""Hostile bytes never escape the ladder: drop, FORMERR/NOTIMP/BADVERS, or a real answer."""

from __future__ import annotations

import contextlib
import random
import struct

import dns.message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver.answer import Responder
from resolver.dnsmsg import MessageError, parse_query
from resolver.records import compile_records
from sim.testing import document_dict
from sim.testing.resolver import multivalue_record, tcp_checks
from urn.config import parse_document

RESPONDER = Responder(
    compile_records(
        parse_document(
            document_dict(
                checks=tcp_checks(range(8)), records=[multivalue_record("www.example.com.", 8)]
            )
        ),
        random.Random(1),
    ),
    random.Random(2),
)
VALID = dns.message.make_query("www.example.com.", "A", use_edns=0).to_wire()


def check(data: bytes) -> None:
    with contextlib.suppress(MessageError):
        parse_query(data)
    for udp in (True, False):
        reply = RESPONDER.dns(data, udp, {})
        if reply is None:
            continue
        assert reply[:2] == data[:2]
        assert reply[2] & 0x80
        if udp:
            assert len(reply) <= 1232
        parsed = dns.message.from_wire(reply)  # always a well-formed message
        assert parsed.id == struct.unpack(">H", data[:2])[0]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    check(data)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255), st.integers(0, len(VALID)))
def test_mutated_valid_query(position: int, value: int, cut: int) -> None:
    mutated = bytearray(VALID)
    mutated[position] = value
    check(bytes(mutated))
    check(bytes(mutated[:cut]))
