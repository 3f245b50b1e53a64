"""DNS messages by hand: a bounded parser of one query's question, and response assembly.

Owns: deciding whether bytes are a standard query we answer, and the ladder for those that
are not: fewer than 12 bytes or a response (QR set) is dropped; an opcode other than QUERY
gets NOTIMP; any other defect gets FORMERR built from the header alone; an EDNS version
other than 0 gets BADVERS. Every field is read by index after a bounds check, names are
walked label by label (no compression pointers are followed: a question never needs one),
and the question plus an optional OPT record must consume the message exactly.
Never: uses dnspython per message, allocates per label, or reads past the message.
Cost: O(question name length) per message.
"""

# urn: pure

from __future__ import annotations

import struct
from typing import ClassVar

from urn.errors import UrnError

__all__ = [
    "AA",
    "CD",
    "MAX_MESSAGE",
    "MAX_UDP_PAYLOAD",
    "QR",
    "RCODES",
    "RD",
    "TC",
    "BadVersion",
    "Dropped",
    "FormErr",
    "MessageError",
    "NotImplementedOpcode",
    "error_from_header",
    "opt_record",
    "parse_query",
    "smallest_ttl",
]

QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
CD = 0x0010
OPCODE_MASK = 0x7800
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 2, 3, 4, 5, 16
RCODES: dict[int, str] = {
    NOERROR: "noerror",
    FORMERR: "formerr",
    SERVFAIL: "servfail",
    NXDOMAIN: "nxdomain",
    NOTIMP: "notimp",
    REFUSED: "refused",
    BADVERS: "badvers",
}
HEADER_BYTES = 12
MAX_NAME_BYTES = 255
CLASSIC_UDP_PAYLOAD = 512
# What we advertise and the most we send over UDP (DNS flag day 2020: no fragmentation).
MAX_UDP_PAYLOAD = 1232
# The most any DNS message can hold: TCP and DoT frame it with a 2-byte length, and DoH
# carries one message (RFC 1035 4.2.2, RFC 8484 6). Responses over them are cut to it.
MAX_MESSAGE = 65535
OPT = 41
_HEADER = struct.Struct(">HHHHHH")
_OPT = struct.Struct(">BHHBBHH")  # root owner, type 41, payload size, ext rcode, version,
# flags, rdlength


class MessageError(UrnError):
    """A message we do not answer normally; `reason` is the metric label."""

    default_reason: ClassVar[str] = "malformed"

    def __init__(self, reason: str | None = None) -> None:
        self.reason: str = reason or self.default_reason
        super().__init__(self.reason)


class Dropped(MessageError):
    """Not worth an answer: shorter than a header, or itself a response."""

    default_reason = "short_header"


class FormErr(MessageError):
    """Malformed: answered FORMERR from the header alone."""

    default_reason = "formerr"


class NotImplementedOpcode(MessageError):
    """An opcode other than QUERY: answered NOTIMP from the header alone."""

    default_reason = "opcode"


class BadVersion(MessageError):
    """EDNS version other than 0: answered BADVERS with the question and an OPT record."""

    default_reason = "edns_version"

    def __init__(self, name_end: int, do_bit: int) -> None:
        super().__init__()
        self.name_end = name_end
        self.do_bit = do_bit


def parse_query(msg: bytes) -> tuple[int, int, int, int, int]:
    """(name_end, qtype, qclass, udp_limit, do_bit) of a standard query, or a MessageError.

    `name_end` is the offset just past the question name, so `msg[12:name_end]` is the name
    in wire form and `msg[12:name_end + 4]` the whole question. `udp_limit` is 0 without
    EDNS, else the requestor's payload size (at least 512); `do_bit` is 0x80 or 0.
    """
    n = len(msg)
    if n < HEADER_BYTES:
        raise Dropped("short_header")
    flags_hi = msg[2]
    if flags_hi & 0x80:
        raise Dropped("response")
    if flags_hi & 0x78:
        raise NotImplementedOpcode
    if msg[4] or msg[5] != 1:
        raise FormErr("qdcount")
    if msg[6] or msg[7] or msg[8] or msg[9]:
        raise FormErr("sections")
    if msg[10] or msg[11] > 1:
        raise FormErr("additional")
    pos = HEADER_BYTES
    while True:
        if pos >= n:
            raise FormErr("overrun")
        length = msg[pos]
        if not length:
            break
        if length > 63:
            raise FormErr("pointer" if length >= 0xC0 else "label")
        pos += length + 1
        if pos - HEADER_BYTES >= MAX_NAME_BYTES:
            raise FormErr("name_length")
    name_end = pos + 1
    qend = name_end + 4
    if qend > n:
        raise FormErr("overrun")
    qtype = msg[name_end] << 8 | msg[name_end + 1]
    qclass = msg[name_end + 2] << 8 | msg[name_end + 3]
    if not msg[11]:
        if qend != n:
            raise FormErr("trailing")
        return name_end, qtype, qclass, 0, 0
    return (name_end, qtype, qclass, *_parse_opt(msg, name_end, qend, n))


def _parse_opt(msg: bytes, name_end: int, pos: int, n: int) -> tuple[int, int]:
    if pos + _OPT.size > n:
        raise FormErr("overrun")
    owner, rtype, payload, _, version, flags, rdlength = _OPT.unpack_from(msg, pos)
    if owner != 0 or rtype != OPT:
        raise FormErr("additional")
    end = pos + _OPT.size + rdlength
    if end > n:
        raise FormErr("overrun")
    if end != n:
        raise FormErr("trailing")
    option = pos + _OPT.size
    while option < end:
        if option + 4 > end:
            raise FormErr("opt")
        option += 4 + (msg[option + 2] << 8 | msg[option + 3])
    if option != end:
        raise FormErr("opt")
    do_bit = (flags >> 8) & 0x80
    if version != 0:
        raise BadVersion(name_end, do_bit)
    return max(CLASSIC_UDP_PAYLOAD, payload), do_bit


def error_from_header(msg: bytes, rcode: int) -> bytes:
    """A question-less response carrying `rcode`, the query's id, opcode and RD bit."""
    flags = msg[2] << 8 | msg[3]
    qid = msg[0] << 8 | msg[1]
    return _HEADER.pack(qid, QR | (flags & (OPCODE_MASK | RD)) | (rcode & 0xF), 0, 0, 0, 0)


def opt_record(do_bit: int, extended_rcode: int = 0) -> bytes:
    """Our OPT record: payload size MAX_UDP_PAYLOAD, version 0, the query's DO bit."""
    return _OPT.pack(0, OPT, MAX_UDP_PAYLOAD, extended_rcode >> 4, 0, do_bit << 8, 0)


def smallest_ttl(response: bytes) -> int | None:
    """The smallest TTL among a response's answer and authority records (None: it has
    none, or it is cut short), for an HTTP cache lifetime (RFC 8484 section 5.1).

    Walks our own responses: names may end in a compression pointer; OPT, in the
    additional section, is never reached.
    """
    n = len(response)
    if n < HEADER_BYTES:
        return None
    qdcount = response[4] << 8 | response[5]
    records = (response[6] << 8 | response[7]) + (response[8] << 8 | response[9])
    pos = HEADER_BYTES
    for _ in range(qdcount):
        pos = _skip_name(response, pos, n) + 4
    smallest: int | None = None
    for _ in range(records):
        pos = _skip_name(response, pos, n)
        if pos + 10 > n:
            return None
        ttl = int.from_bytes(response[pos + 4 : pos + 8], "big")
        smallest = ttl if smallest is None or ttl < smallest else smallest
        pos += 10 + (response[pos + 8] << 8 | response[pos + 9])
    return smallest if pos <= n else None


def _skip_name(msg: bytes, pos: int, n: int) -> int:
    """The offset just past a name at `pos`, which may end in a compression pointer."""
    while pos < n:
        length = msg[pos]
        if length >= 0xC0:
            return pos + 2
        pos += length + 1
        if not length:
            return pos
    return n + 1  # ran off the end: every later bounds check fails
