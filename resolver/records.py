"""Compiled records: (name, type) -> candidate answers with their slots and their bytes.

Owns: turning the document's records and zones into an index the hot path can use as is:
lower-case wire-form name and text name -> `Node`; per type an `Entry` with a C-level
reader of every candidate's table byte, the chooser of its policy, and each answer
pre-encoded once as a DNS resource record (owner = compression pointer 0xC00C to the
question name, so the bytes fit any query's case) and as a DoH-JSON fragment, at its TTL
and at its `ttl_when_degraded`, indexed by lever mode (`resolver.levers`); and every
entry's candidates as flat arrays (`EntryLevers`), for the levers' refresh. Each zone's
SOA, and for a delegable zone its apex NS answer with the glue that follows it, are
pre-rendered whole (`Tail`), as are the address records of its in-zone nameservers.
Never: looks at health, levers in force, clocks or sockets. Rebuilt whole on every
config pass.
Cost: O(records x answers) with dnspython, once per config pass; nothing per query.
"""

# urn: pure

from __future__ import annotations

import ipaddress
import json
import struct
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from resolver.levers import ANSWERED, DEGRADED, EntryLevers
from resolver.policy import CHOOSERS, balanced_permutations
from urn.config import Answer, MinHealthy, Policy, Record, RecordType, WhenAllDown, in_zone

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping

    import dns.rdata

    from resolver.policy import Chooser
    from urn.config import Document
    from urn.config import Zone as ZoneConfig

__all__ = [
    "ANY",
    "HINFO_ANY",
    "NS",
    "QTYPES",
    "SOA",
    "Apex",
    "Candidate",
    "Compiled",
    "Entry",
    "Node",
    "Tail",
    "Zone",
    "compile_records",
    "name_to_wire",
    "qtype_label",
    "wire_to_text",
]

QTYPES: dict[str, int] = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "TXT": 16,
    "AAAA": 28,
    "ANY": 255,
}
NS = 2
SOA = 6
ANY = 255
_A = 1
_AAAA = 28
_LABELS = {value: name for name, value in QTYPES.items()}
_RR = struct.Struct(">HHHIH")  # owner pointer, type, class, ttl, rdlength
_RR_TAIL = struct.Struct(">HHIH")  # type, class, ttl, rdlength: after an owner name
_TTL = struct.Struct(">I")
_TTL_AT = 6  # where the TTL sits in an RR with a pointer owner (`_RR`)
_POINTER_TO_QUESTION = 0xC00C
_HEADER = 12
_IN = 1
ANY_TTL = 3600

T = TypeVar("T")

# The records a response carries after its answers, rendered whole: their bytes, and how
# many of them go in authority (NSCOUNT) and in additional (ARCOUNT, OPT aside).
Tail: TypeAlias = tuple[bytes, int, int]


def qtype_label(qtype: int) -> str:
    """A bounded metric label for a query type: the types we serve, else 'other'."""
    return _LABELS.get(qtype, "other")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One potential answer: its value, the check guarding it, and its encodings."""

    value: str
    slot: int | None  # None: no check, always healthy
    weight: int
    role: str | None
    wire: bytes  # DNS resource record with owner 0xC00C
    json: str  # {"name":..,"type":..,"TTL":..,"data":..}


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """Everything a query for one (name, type) needs, precomputed."""

    index: int  # the entry's place in `Compiled.entries`: its byte of the lever modes
    name: str
    rtype: str
    qtype: int
    ttl: int
    policy: Policy
    candidates: tuple[Candidate, ...]
    read: Callable[[bytes], tuple[int, ...]]  # every candidate's byte of a down view
    wires: tuple[bytes, ...]
    jsons: tuple[str, ...]
    # By lever mode below levers.ANSWERED: `wires`/`jsons`, or at `ttl_when_degraded`.
    wires_by_mode: tuple[tuple[bytes, ...], ...]
    jsons_by_mode: tuple[tuple[str, ...], ...]
    order: tuple[int, ...]
    perms: tuple[tuple[int, ...], ...]
    weights: tuple[int, ...]
    primary: int
    secondary: int
    choose: Chooser
    min_healthy: MinHealthy = field(default_factory=MinHealthy)
    when_all_down: WhenAllDown = WhenAllDown.OPEN
    ttl_when_degraded: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Zone:
    name: str
    wire: bytes
    soa_wire: bytes  # the SOA as an authority-section RR, owner written in full
    soa_json: str
    negative_wire: Tail  # what NXDOMAIN and NODATA carry: the SOA alone, in authority
    negative_json: str  # the same as a DoH-JSON `,"Authority":[...]`


@dataclass(frozen=True, slots=True, eq=False)
class Apex:
    """What a delegable zone's apex answers to NS: every nameserver, then in-zone glue.

    The NS records and the glue are encoded as one message body after the question (the
    apex name, whose length every such query shares), so their names compress: an NS
    target against the question, a glue owner against its NS target. So they are always
    answered whole and in order, never through a policy (no check guards an NS); `ns` is
    an Entry for `explain`. The glue is None when no nameserver is inside the zone.
    """

    ns: Entry
    glue_wire: Tail | None  # the A/AAAA of in-zone nameservers, in additional
    glue_json: str | None  # the same as a DoH-JSON `,"Additional":[...]`


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """A name that exists in a zone (with records, or as the apex or an empty non-terminal)."""

    name: str
    name_json: str
    zone: Zone
    by_type: Mapping[int, Entry]
    cname: Entry | None
    apex: Apex | None = None  # the NS answer, at the apex of a zone with `ns` only


@dataclass(frozen=True, slots=True, eq=False)
class Compiled:
    capacity: int
    zones: tuple[Zone, ...]
    by_wire: Mapping[bytes, Node]
    by_text: Mapping[str, Node]
    zones_by_wire: Mapping[bytes, Zone]
    record_count: int
    # (owner, type, ttl, value) -> (RR bytes, JSON fragment): what the next pass may reuse.
    encodings: Mapping[tuple[str, str, int, str], tuple[bytes, str]] = field(default_factory=dict)
    entries: tuple[Entry, ...] = ()  # every entry, by `Entry.index`
    levers: EntryLevers = field(default_factory=lambda: EntryLevers.of((), 0))
    record_entries: tuple[int, ...] = ()  # the entry of each of the document's records

    def zone_for_wire(self, wire: bytes) -> Zone | None:
        """The most specific zone holding a wire-form (lower-case) name, if any."""
        pos = 0
        while pos < len(wire):
            zone = self.zones_by_wire.get(wire[pos:])
            if zone is not None:
                return zone
            pos += wire[pos] + 1
        return None

    def zone_for_text(self, name: str) -> Zone | None:
        best: Zone | None = None
        for zone in self.zones:
            if in_zone(name, zone.name) and (best is None or len(zone.name) > len(best.name)):
                best = zone
        return best


def name_to_wire(name: str) -> bytes:
    """Absolute lower-case text name -> uncompressed wire form."""
    if name == ".":
        return b"\0"
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode()
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


def wire_to_text(wire: bytes) -> str:
    """Wire-form name (no pointers) -> text, as dnspython prints it."""
    import dns.name

    return dns.name.from_wire(wire, 0)[0].to_text()


def _rdata(rtype: RecordType | int, value: str) -> dns.rdata.Rdata:
    # dnspython loads `socket` (for address parsing) when imported: import it only here, at
    # compile time, so the per-query modules (answer, dnsmsg) never load it.
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.CNAME
    import dns.rdtypes.ANY.TXT
    import dns.rdtypes.IN.A
    import dns.rdtypes.IN.AAAA

    rdclass = dns.rdataclass.IN
    if rtype == RecordType.A:
        return dns.rdtypes.IN.A.A(rdclass, dns.rdatatype.A, value)  # type: ignore[no-untyped-call]
    if rtype == RecordType.AAAA:
        return dns.rdtypes.IN.AAAA.AAAA(rdclass, dns.rdatatype.AAAA, value)  # type: ignore[no-untyped-call]
    if rtype == RecordType.CNAME:
        target = dns.name.from_text(value)
        return dns.rdtypes.ANY.CNAME.CNAME(rdclass, dns.rdatatype.CNAME, target)  # type: ignore[no-untyped-call]
    return dns.rdtypes.ANY.TXT.TXT(rdclass, dns.rdatatype.TXT, [value.encode()])


def _wire(rdata: dns.rdata.Rdata) -> bytes:
    body = rdata.to_wire()
    assert body is not None  # to_wire returns bytes when given no file
    return body


def _rr(qtype: int, ttl: int, rdata: dns.rdata.Rdata) -> bytes:
    body = _wire(rdata)
    return _RR.pack(_POINTER_TO_QUESTION, qtype, _IN, ttl, len(body)) + body


def _fragment(name: str, qtype: int, ttl: int, data: str) -> str:
    return json.dumps(
        {"name": name, "type": qtype, "TTL": ttl, "data": data}, separators=(",", ":")
    )


def _reader(slots: list[int]) -> Callable[[bytes], tuple[int, ...]]:
    # itemgetter with one index returns a bare int; read it twice to always get a tuple.
    if len(slots) == 1:
        return itemgetter(slots[0], slots[0])
    return itemgetter(*slots)


def _by_mode(normal: tuple[T, ...], degraded: tuple[T, ...]) -> tuple[tuple[T, ...], ...]:
    return tuple(degraded if mode & DEGRADED else normal for mode in range(ANSWERED))


def _make_entry(
    entries: list[Entry],
    name: str,
    qtype: int,
    ttl: int,
    policy: Policy,
    candidates: tuple[Candidate, ...],
    capacity: int,
    rng: random.Random,
    perm_cache: dict[int, tuple[tuple[int, ...], ...]],
    rtype: str,
    record: Record | None = None,
    degraded: tuple[tuple[bytes, ...], tuple[str, ...]] | None = None,
) -> Entry:
    """A new entry, appended to `entries`; `record` gives its thresholds, `degraded` its
    answers' encodings at `ttl_when_degraded` (else its one TTL is used always)."""
    n = len(candidates)
    read = _reader([capacity if c.slot is None else c.slot for c in candidates])
    if policy is Policy.MULTIVALUE:
        if n not in perm_cache:
            perm_cache[n] = balanced_permutations(n, rng)
        perms = perm_cache[n]
    else:
        perms = (tuple(range(n)),)
    roles = [c.role for c in candidates]
    wires = tuple(c.wire for c in candidates)
    jsons = tuple(c.json for c in candidates)
    degraded_wires, degraded_jsons = (wires, jsons) if degraded is None else degraded
    entry = Entry(
        index=len(entries),
        name=name,
        rtype=rtype,
        qtype=qtype,
        ttl=ttl,
        policy=policy,
        candidates=candidates,
        read=read,
        wires=wires,
        jsons=jsons,
        wires_by_mode=_by_mode(wires, degraded_wires),
        jsons_by_mode=_by_mode(jsons, degraded_jsons),
        order=tuple(range(n)),
        perms=perms,
        weights=tuple(c.weight for c in candidates),
        primary=roles.index("primary") if "primary" in roles else 0,
        secondary=roles.index("secondary") if "secondary" in roles else 0,
        choose=CHOOSERS[policy],
        min_healthy=MinHealthy() if record is None else record.min_healthy,
        when_all_down=WhenAllDown.OPEN if record is None else record.when_all_down,
        ttl_when_degraded=None if record is None else record.ttl_when_degraded,
    )
    entries.append(entry)
    return entry


def _at_ttl(encoded: tuple[bytes, str], ttl: int) -> tuple[bytes, str]:
    """An answer's encodings with another TTL: the RR's TTL field, the fragment's "TTL"."""
    wire, fragment = encoded
    member = json.loads(fragment)
    member["TTL"] = ttl
    return (
        wire[:_TTL_AT] + _TTL.pack(ttl) + wire[_TTL_AT + _TTL.size :],
        json.dumps(member, separators=(",", ":")),
    )


def _record_entry(
    entries: list[Entry],
    record: Record,
    capacity: int,
    rng: random.Random,
    perm_cache: dict[int, tuple[tuple[int, ...], ...]],
    previous: Mapping[tuple[str, str, int, str], tuple[bytes, str]],
    encodings: dict[tuple[str, str, int, str], tuple[bytes, str]],
) -> Entry:
    qtype = QTYPES[record.type.value]
    candidates = []
    degraded_ttl = record.ttl_when_degraded
    shorter = degraded_ttl is not None and degraded_ttl != record.ttl
    degraded: list[tuple[bytes, str]] = []
    for answer in record.answers:
        key = (record.name, record.type.value, record.ttl, answer.value)
        encoded = previous.get(key)
        if encoded is None:
            rdata = _rdata(record.type, answer.value)
            encoded = (
                _rr(qtype, record.ttl, rdata),
                _fragment(record.name, qtype, record.ttl, rdata.to_text()),
            )
        encodings[key] = encoded
        if shorter:
            assert degraded_ttl is not None
            short_key = (record.name, record.type.value, degraded_ttl, answer.value)
            short = previous.get(short_key) or _at_ttl(encoded, degraded_ttl)
            encodings[short_key] = short
            degraded.append(short)
        candidates.append(
            Candidate(
                value=answer.value,
                slot=answer.check,
                weight=answer.weight,
                role=answer.role,
                wire=encoded[0],
                json=encoded[1],
            )
        )
    return _make_entry(
        entries,
        record.name,
        qtype,
        record.ttl,
        record.policy,
        tuple(candidates),
        capacity,
        rng,
        perm_cache,
        record.type.value,
        record,
        (tuple(w for w, _ in degraded), tuple(j for _, j in degraded)) if shorter else None,
    )


def _zone(spec: ZoneConfig) -> tuple[Zone, Candidate]:
    """The compiled zone (its SOA as authority) and the SOA answer at its apex."""
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.SOA

    name, config = spec.name, spec.soa
    soa = dns.rdtypes.ANY.SOA.SOA(  # type: ignore[no-untyped-call]
        dns.rdataclass.IN,
        dns.rdatatype.SOA,
        dns.name.from_text(config.mname),
        dns.name.from_text(config.rname),
        config.serial,
        config.refresh,
        config.retry,
        config.expire,
        config.minimum,
    )
    negative_ttl = min(config.ttl, config.minimum)  # RFC 2308 section 3
    wire = name_to_wire(name)
    body = _wire(soa)
    soa_wire = wire + _RR_TAIL.pack(SOA, _IN, negative_ttl, len(body)) + body
    soa_json = _fragment(name, SOA, negative_ttl, soa.to_text())
    zone = Zone(
        name=name,
        wire=wire,
        soa_wire=soa_wire,
        soa_json=soa_json,
        negative_wire=(soa_wire, 1, 0),
        negative_json=f',"Authority":[{soa_json}]',
    )
    answer = Candidate(
        value=soa.to_text(),
        slot=None,
        weight=1,
        role=None,
        wire=_rr(SOA, config.ttl, soa),
        json=_fragment(name, SOA, config.ttl, soa.to_text()),
    )
    return zone, answer


def _apex(
    entries: list[Entry],
    spec: ZoneConfig,
    capacity: int,
    rng: random.Random,
    perm_cache: dict[int, tuple[tuple[int, ...], ...]],
) -> Apex:
    """The apex NS answer of a zone with nameservers, and its glue, encoded once."""
    import io

    import dns.name

    body = io.BytesIO()
    body.write(bytes(_HEADER))
    compress: dict[dns.name.Name, int] = {}
    dns.name.from_text(spec.name).to_wire(body, compress)  # the question's name
    body.write(bytes(4))  # its type and class

    def record(owner: dns.name.Name | None, rtype: int, rdata: dns.name.Name | bytes) -> bytes:
        start = body.tell()
        if owner is None:
            body.write(_POINTER_TO_QUESTION.to_bytes(2, "big"))
        else:
            owner.to_wire(body, compress)
        length_at = body.tell() + 8
        body.write(_RR_TAIL.pack(rtype, _IN, spec.ttl, 0))
        if isinstance(rdata, bytes):
            body.write(rdata)
        else:
            rdata.to_wire(body, compress)
        end = body.tell()
        body.seek(length_at)
        body.write((end - length_at - 2).to_bytes(2, "big"))
        body.seek(end)
        return body.getvalue()[start:end]

    candidates = tuple(
        Candidate(
            value=server,
            slot=None,
            weight=1,
            role=None,
            wire=record(None, NS, dns.name.from_text(server)),
            json=_fragment(spec.name, NS, spec.ttl, server),
        )
        for server in spec.ns
    )
    glue: list[bytes] = []
    glue_json: list[str] = []
    for server in spec.ns:
        for address in spec.addresses.get(server, ()):
            packed = ipaddress.ip_address(address).packed
            rtype = _A if len(packed) == 4 else _AAAA
            glue.append(record(dns.name.from_text(server), rtype, packed))
            glue_json.append(_fragment(server, rtype, spec.ttl, address))
    entry = _make_entry(
        entries, spec.name, NS, spec.ttl, Policy.SIMPLE, candidates, capacity, rng, perm_cache, "NS"
    )
    if not glue:
        return Apex(ns=entry, glue_wire=None, glue_json=None)
    return Apex(
        ns=entry,
        glue_wire=(b"".join(glue), 0, len(glue)),
        glue_json=f',"Additional":[{",".join(glue_json)}]',
    )


def _address_records(zones: tuple[ZoneConfig, ...]) -> list[Record]:
    """The in-zone nameservers' own A and AAAA records, from their glue (validation keeps
    `records` from defining them too, and a name in two zones has one set)."""
    records: dict[tuple[str, RecordType], Record] = {}
    for spec in zones:
        for server, addresses in spec.addresses.items():
            for rtype, version in ((RecordType.A, 4), (RecordType.AAAA, 6)):
                values = [a for a in addresses if ipaddress.ip_address(a).version == version]
                if values and (server, rtype) not in records:
                    records[server, rtype] = Record(
                        name=server,
                        type=rtype,
                        ttl=spec.ttl,
                        policy=Policy.SIMPLE,
                        answers=tuple(Answer(value=value) for value in values),
                    )
    return list(records.values())


def compile_records(
    document: Document, rng: random.Random, previous: Compiled | None = None
) -> Compiled:
    """The whole index for `document`; `rng` draws the multivalue answer orders.

    Every record, answer, zone and name is walked and the index built anew on every pass;
    only the bytes of answers that `previous` already encoded identically are reused
    (dnspython costs ~40 µs an answer: 0.4 s a pass for 10,000 answers, on the loop).
    """
    capacity = document.capacity
    entries: list[Entry] = []
    reusable = previous.encodings if previous is not None else {}
    encodings: dict[tuple[str, str, int, str], tuple[bytes, str]] = {}
    perm_cache: dict[int, tuple[tuple[int, ...], ...]] = {}
    zones: dict[str, Zone] = {}
    types_at: dict[str, dict[int, Entry]] = {}
    zone_of: dict[str, Zone] = {}
    apexes: dict[str, Apex] = {}
    for spec in document.zones:
        zone, soa = _zone(spec)
        zones[spec.name] = zone
        types_at.setdefault(spec.name, {})[SOA] = _make_entry(
            entries,
            spec.name,
            SOA,
            spec.soa.ttl,
            Policy.SIMPLE,
            (soa,),
            capacity,
            rng,
            perm_cache,
            "SOA",
        )
        zone_of[spec.name] = zone
        if spec.ns:
            apexes[spec.name] = _apex(entries, spec, capacity, rng, perm_cache)
    compiled_zones = tuple(zones.values())
    lookup = Compiled(capacity, compiled_zones, {}, {}, {z.wire: z for z in compiled_zones}, 0)
    record_entries: list[int] = []
    for record in (*document.records, *_address_records(document.zones)):
        entry = _record_entry(entries, record, capacity, rng, perm_cache, reusable, encodings)
        if len(record_entries) < len(document.records):
            record_entries.append(entry.index)
        record_zone = lookup.zone_for_text(record.name)
        if record_zone is None:  # the config validator rejects this; keep the index consistent
            continue
        types_at.setdefault(record.name, {})[entry.qtype] = entry
        # The name and every name between it and its zone's apex exist (empty non-terminals).
        name = record.name
        while True:
            zone_of[name] = record_zone
            if name == record_zone.name:
                break
            name = name.split(".", 1)[1]
            types_at.setdefault(name, {})
    by_text = {
        name: Node(
            name=name,
            name_json=json.dumps(name),
            zone=zone_of[name],
            by_type=by_type,
            cname=by_type.get(QTYPES["CNAME"]),
            apex=apexes.get(name),
        )
        for name, by_type in types_at.items()
    }
    return Compiled(
        capacity=capacity,
        zones=compiled_zones,
        by_wire={name_to_wire(name): node for name, node in by_text.items()},
        by_text=by_text,
        zones_by_wire=lookup.zones_by_wire,
        record_count=len(document.records),
        encodings=encodings,
        entries=tuple(entries),
        levers=EntryLevers.of(
            [([c.slot for c in e.candidates], e.min_healthy, e.when_all_down) for e in entries],
            capacity,
        ),
        record_entries=tuple(record_entries),
    )


# RFC 8482: a minimal answer to ANY for a name that exists, HINFO "RFC8482" "".
HINFO = 13
_HINFO_RDATA = b"\x07RFC8482\x00"
HINFO_ANY = _RR.pack(_POINTER_TO_QUESTION, HINFO, _IN, ANY_TTL, len(_HINFO_RDATA)) + _HINFO_RDATA
HINFO_ANY_TEXT = '"RFC8482" ""'
