"""The edge resolver's answer core: record policies over a slot table, DNS A in and out.

Pure. Used by the edge resolver only where urn's resolver core is not importable; it
follows DESIGN §5 (every candidate's status read on every query; unknown counts as
healthy; fail-open; multivalue up to 8 in random order; weighted; failover).
Cost: O(answers of the name) per query, whatever their health.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from urn.config import Policy, RecordType, in_zone
from urn.table import Status

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from urn.config import Document

__all__ = ["Entry", "Index", "build_response", "parse_query", "pick"]

_UNHEALTHY = int(Status.UNHEALTHY)
QTYPES = {1: RecordType.A, 28: RecordType.AAAA, 5: RecordType.CNAME, 16: RecordType.TXT}
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, REFUSED = 0, 1, 2, 3, 5


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    ttl: int
    policy: Policy
    values: tuple[str, ...]
    packed: tuple[bytes, ...]  # A rdata
    slots: tuple[int, ...]  # -1: always healthy
    weights: tuple[int, ...]
    primary: int  # failover: index of the primary, else -1


@dataclass(frozen=True, slots=True)
class Index:
    entries: dict[tuple[str, RecordType], Entry]
    names: frozenset[str]
    zones: tuple[str, ...]
    fail_open: bool

    @classmethod
    def of(cls, document: Document) -> Index:
        entries: dict[tuple[str, RecordType], Entry] = {}
        for record in document.records:
            answers = record.answers
            packed = tuple(
                socket.inet_aton(a.value) if record.type is RecordType.A else b"" for a in answers
            )
            primary = next((i for i, a in enumerate(answers) if a.role == "primary"), -1)
            entries[(record.name, record.type)] = Entry(
                record.name,
                record.ttl,
                record.policy,
                tuple(a.value for a in answers),
                packed,
                tuple(-1 if a.check is None else a.check for a in answers),
                tuple(a.weight for a in answers),
                primary,
            )
        names = frozenset(name for name, _ in entries)
        return cls(entries, names, document.zones, document.fail_open)

    def rcode_for_missing(self, name: str) -> int:
        if name in self.names:
            return NOERROR  # NODATA
        if any(in_zone(name, zone) for zone in self.zones):
            return NXDOMAIN
        return REFUSED


def pick(entry: Entry, table: bytes | bytearray, rng: random.Random, fail_open: bool) -> list[int]:
    """Indexes of the answers to give, reading every candidate's status."""
    healthy = [
        i for i, slot in enumerate(entry.slots) if slot < 0 or table[slot] & 0b11 != _UNHEALTHY
    ]
    if not healthy and fail_open:
        healthy = list(range(len(entry.slots)))
    if not healthy:
        return []
    policy = entry.policy
    if policy is Policy.SIMPLE:
        return healthy
    if policy is Policy.MULTIVALUE:
        rng.shuffle(healthy)
        return healthy[:8]
    if policy is Policy.FAILOVER:
        if entry.primary in healthy:
            return [entry.primary]
        return [i for i in healthy if i != entry.primary][:1]
    weighted = [i for i in healthy if entry.weights[i] > 0]
    if weighted:
        return rng.choices(weighted, weights=[entry.weights[i] for i in weighted])
    return [rng.choice(healthy)]


def parse_query(data: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, name, qtype, end of question) or None when malformed."""
    if len(data) < 17:
        return None
    ident, flags, qdcount = struct.unpack_from(">HHH", data)
    if qdcount != 1 or flags & 0x8000:
        return None
    labels: list[str] = []
    pos = 12
    while True:
        if pos >= len(data):
            return None
        length = data[pos]
        pos += 1
        if length == 0:
            break
        if length > 63 or pos + length > len(data):
            return None
        labels.append(data[pos : pos + length].decode("ascii", "replace").lower())
        pos += length
    if pos + 4 > len(data):
        return None
    qtype = struct.unpack_from(">H", data, pos)[0]
    return ident, flags, ".".join(labels) + ".", qtype, pos + 4


def build_response(
    query: bytes, ident: int, flags: int, end: int, rcode: int, ttl: int, rdatas: Sequence[bytes]
) -> bytes:
    """A response echoing the question, with A answers pointing at the question name."""
    head = struct.pack(">HHHHHH", ident, 0x8400 | (flags & 0x0100) | rcode, 1, len(rdatas), 0, 0)
    parts = [head, query[12:end]]
    for rdata in rdatas:
        parts.append(struct.pack(">HHHIH", 0xC00C, 1, 1, ttl, len(rdata)))
        parts.append(rdata)
    return b"".join(parts)
