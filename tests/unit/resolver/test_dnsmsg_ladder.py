"""dnsmsg.py field by field: each rung of the refusal ladder with its metric reason, the
exact limits (63-byte labels, 255-byte names), 16-bit fields, EDNS options and flags, and the
bytes of the header-only error and of our OPT record (no I/O).

The corpus (tests/corpus/dns) holds hostile messages by outcome; these build each case
from its fields, one byte away from the limit, so that every check is exercised alone.
"""

from __future__ import annotations

import struct

import pytest

from resolver.dnsmsg import (
    BADVERS,
    FORMERR,
    MAX_UDP_PAYLOAD,
    NOTIMP,
    OPT,
    SERVFAIL,
    BadVersion,
    Dropped,
    FormErr,
    MessageError,
    error_from_header,
    opt_record,
    parse_query,
)

WWW = b"\x03www\x07example\x03com\x00"
RD = 0x0100


def query(
    name: bytes = WWW,
    *,
    qtype: int = 1,
    qclass: int = 1,
    flags: int = RD,
    counts: tuple[int, int, int, int] = (1, 0, 0, 0),
    tail: bytes = b"",
) -> bytes:
    """A message: header, one question, then `tail` (an OPT record, junk)."""
    return (
        struct.pack(">HHHHHH", 0x1234, flags, *counts)
        + name
        + struct.pack(">HH", qtype, qclass)
        + tail
    )


def opt(
    *, payload: int = 1232, version: int = 0, flags: int = 0, options: bytes = b"", rtype: int = OPT
) -> bytes:
    return struct.pack(">BHHBBHH", 0, rtype, payload, 0, version, flags, len(options)) + options


def edns(*, version: int = 0, flags: int = 0, options: bytes = b"") -> bytes:
    return query(counts=(1, 0, 0, 1), tail=opt(version=version, flags=flags, options=options))


def name_of(wire_length: int) -> bytes:
    """A name whose wire form (length bytes and root included) is `wire_length` bytes."""
    labels, left = [], wire_length - 1
    while left:
        size = min(63, left - 1)
        labels.append(bytes([size]) + b"a" * size)
        left -= size + 1
    name = b"".join(labels) + b"\x00"
    assert len(name) == wire_length
    return name


@pytest.mark.parametrize(
    ("message", "kind", "reason"),
    [
        (b"\x00" * 11, Dropped, "short_header"),
        (query(flags=0x8000), Dropped, "response"),
        (query(counts=(1, 1, 0, 0)), FormErr, "sections"),  # one answer: low byte only
        (query(counts=(1, 0x100, 0, 0)), FormErr, "sections"),  # 256 answers: high byte only
        (query(counts=(1, 0, 1, 0)), FormErr, "sections"),
        (query(counts=(1, 0, 0x100, 0)), FormErr, "sections"),
        (query(counts=(1, 0, 0, 2)), FormErr, "additional"),
        (query(counts=(1, 0, 0, 0x100)), FormErr, "additional"),
        (struct.pack(">HHHHHH", 1, RD, 1, 0, 0, 0) + b"\x03www", FormErr, "overrun"),
        (query(b"\x40" + b"a" * 64 + b"\x00"), FormErr, "label"),  # 64: extended label type
        (query(b"\x80" + b"a" * 64 + b"\x00"), FormErr, "label"),
        (query(b"\xc0\x0c"), FormErr, "pointer"),
        (query(name_of(256)), FormErr, "name_length"),
        (query()[:-2], FormErr, "overrun"),  # the question cut after its type
        (query(tail=b"\x00"), FormErr, "trailing"),
        (query(counts=(1, 0, 0, 1), tail=opt()[:-3]), FormErr, "overrun"),
        (query(counts=(1, 0, 0, 1), tail=opt(rtype=1)), FormErr, "additional"),
        (query(counts=(1, 0, 0, 1), tail=opt()[:-2] + b"\x00\x08"), FormErr, "overrun"),
        (query(counts=(1, 0, 0, 1), tail=opt() + b"\x00"), FormErr, "trailing"),
        (edns(options=b"\x00\x0c\x00"), FormErr, "opt"),  # option header cut
        (edns(options=b"\x00\x0c\x00\x0a\x00\x00"), FormErr, "opt"),  # option data cut
    ],
)
def test_each_refusal_carries_its_reason(
    message: bytes, kind: type[MessageError], reason: str
) -> None:
    with pytest.raises(kind) as info:
        parse_query(message)
    assert type(info.value) is kind
    assert info.value.reason == reason
    assert str(info.value) == reason


def test_a_63_byte_label_and_a_255_byte_name_are_the_largest_accepted() -> None:
    label = b"\x3f" + b"a" * 63 + b"\x00"
    assert parse_query(query(label)) == (12 + len(label), 1, 1, 0, 0)
    longest = name_of(255)
    assert parse_query(query(longest)) == (12 + 255, 1, 1, 0, 0)


def test_qtype_and_qclass_are_read_as_16_bit_big_endian() -> None:
    message = query(qtype=0xFF01, qclass=0x8001)
    assert parse_query(message) == (12 + len(WWW), 0xFF01, 0x8001, 0, 0)


@pytest.mark.parametrize(
    "options",
    [
        b"\x00\x0c\x00\x00",  # one empty option, ending exactly at the record's end
        b"\x00\x0c\x01\x2c" + b"\xff" * 300,  # a 300-byte option: length high byte
        b"\x00\x0a\x00\x08" + b"c" * 8 + b"\x00\x0c\x00\x02\x00\x00",  # cookie, then padding
    ],
)
def test_edns_options_are_walked_to_the_end(options: bytes) -> None:
    assert parse_query(edns(options=options)) == (12 + len(WWW), 1, 1, 1232, 0)


@pytest.mark.parametrize(
    ("flags", "do_bit"), [(0x0000, 0), (0x8000, 0x80), (0x0100, 0), (0x7FFF, 0), (0xFFFF, 0x80)]
)
def test_only_the_do_bit_of_the_edns_flags_is_read(flags: int, do_bit: int) -> None:
    assert parse_query(edns(flags=flags))[4] == do_bit


def test_edns_version_other_than_zero_keeps_the_do_bit() -> None:
    with pytest.raises(BadVersion) as info:
        parse_query(edns(version=1, flags=0x8000))
    assert (info.value.reason, info.value.name_end, info.value.do_bit) == (
        "edns_version",
        12 + len(WWW),
        0x80,
    )


@pytest.mark.parametrize("rcode", [FORMERR, NOTIMP, SERVFAIL])
def test_header_only_error_copies_id_opcode_and_rd_and_nothing_else(rcode: int) -> None:
    # opcode STATUS (2), RD and CD set, and junk counts: the reply keeps id, opcode and RD.
    message = struct.pack(">HHHHHH", 0xBEEF, 0x1000 | RD | 0x0010, 3, 4, 5, 6)
    reply = error_from_header(message, rcode)
    assert reply == struct.pack(">HHHHHH", 0xBEEF, 0x8000 | 0x1000 | RD | rcode, 0, 0, 0, 0)
    plain = error_from_header(struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0), rcode)
    assert plain == struct.pack(">HHHHHH", 7, 0x8000 | rcode, 0, 0, 0, 0)


def test_our_opt_record_bytes() -> None:
    assert opt_record(0) == struct.pack(">BHHBBHH", 0, OPT, MAX_UDP_PAYLOAD, 0, 0, 0, 0)
    assert opt_record(0x80) == struct.pack(">BHHBBHH", 0, OPT, MAX_UDP_PAYLOAD, 0, 0, 0x8000, 0)
    # BADVERS is 16: its upper 8 bits go in the OPT's extended-rcode byte.
    assert opt_record(0x80, BADVERS) == struct.pack(
        ">BHHBBHH", 0, OPT, MAX_UDP_PAYLOAD, 1, 0, 0x8000, 0
    )
