"""Answering: compiled records + the health table in force -> DNS, DoH-JSON and explain answers.

Owns: the per-query path. `lookup` makes every decision of a query, for every transport:
which node, NXDOMAIN or REFUSED by zone, the entry for the type or the CNAME, RFC 8482 for
ANY, zone transfers refused, a delegable apex's NS with its glue in additional, the SOA in
authority for NXDOMAIN and NODATA; `Responder` only renders its result as wire bytes or a
DoH-JSON body, and counts. Every query reads the table byte of EVERY candidate of the name
(one C-level itemgetter over the down view), even when the first is healthy, then hands
the policy's chooser that vector, or an all-healthy one when every candidate is down and
fail_open is on. Unknown status and answers without a check count as healthy.
Never: caches a health decision between queries, touches sockets or clocks, or uses
dnspython per query (answer bytes are pre-encoded by `records`).
Cost: O(question name + candidates) per query, the same whatever the health of the world.

The down view is `capacity + 1` bytes: 1 where the aggregated status is unhealthy, else 0;
the extra last byte (always 0) is the slot of answers without a check.
"""

# urn: pure

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, overload

import numpy as np
import numpy.typing as npt

from resolver.dnsmsg import (
    AA,
    BADVERS,
    CD,
    FORMERR,
    MAX_MESSAGE,
    MAX_UDP_PAYLOAD,
    NOERROR,
    NOTIMP,
    NXDOMAIN,
    QR,
    RD,
    REFUSED,
    SERVFAIL,
    TC,
    BadVersion,
    Dropped,
    MessageError,
    NotImplementedOpcode,
    error_from_header,
    opt_record,
    parse_query,
)
from resolver.records import ANY, HINFO_ANY, HINFO_ANY_TEXT, NS, QTYPES, qtype_label
from urn.table import REASON_SHIFT, STATUS_MASK, Reason, Status, statuses_of

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from resolver.records import Compiled, Entry, Node, Tail
    from urn.table import SlotArray

__all__ = [
    "NO_QUESTION",
    "Responder",
    "down_view",
    "explain",
    "lookup",
    "qtype_label",
    "qtype_of",
    "resolve",
    "unknown_view",
]

T = TypeVar("T")
U = TypeVar("U")
if TYPE_CHECKING:
    # What `lookup` decides, and the records in the form of the name asked; a plain tuple,
    # not a class, because the hot path builds one per query: (rcode, authoritative, node
    # or None, answers, tail or None, failed open). The tail is what follows the answers,
    # pre-rendered: the SOA in authority (NXDOMAIN, NODATA) or an apex NS answer's glue.
    Lookup: TypeAlias = tuple[int, bool, Node | None, Sequence[T], U | None, bool]

NO_QUESTION = -1  # tally key qtype for messages answered without a usable question
_IN = 1
_QR_AA = QR | AA
_RD_CD = RD | CD  # the query flags a response copies
_REST = struct.Struct(">HHHHH")  # flags, qd, an, ns, ar (after the id)
_OPT_PLAIN = opt_record(0)
_OPT_DO = opt_record(0x80)
_ZONE_TRANSFERS = frozenset((251, 252))  # IXFR, AXFR
_HINFO_JSON = json.dumps(HINFO_ANY_TEXT)
_RCODE_LABELS = {NOERROR: "noerror", NXDOMAIN: "nxdomain", REFUSED: "refused"}
_REFUSED: Lookup[Any, Any] = (REFUSED, False, None, (), None, False)  # no zone of ours, or not IN


def resolve(
    entry: Entry, down: bytes, rng: random.Random, fail_open: bool, items: Sequence[T]
) -> tuple[list[T], bool]:
    """The chosen items (parallel to the entry's candidates) and whether fail-open applied."""
    status = entry.read(down)
    if fail_open and status == entry.all_down:
        return entry.choose(entry, entry.zeros, rng, items), True
    return entry.choose(entry, status, rng, items), False


@overload
def lookup(
    compiled: Compiled,
    name: bytes,
    qtype: int,
    down: bytes,
    rng: random.Random,
    fail_open: bool,
) -> Lookup[bytes, Tail]: ...
@overload
def lookup(
    compiled: Compiled,
    name: str,
    qtype: int,
    down: bytes,
    rng: random.Random,
    fail_open: bool,
) -> Lookup[str, str]: ...
def lookup(
    compiled: Compiled,
    name: bytes | str,
    qtype: int,
    down: bytes,
    rng: random.Random,
    fail_open: bool,
) -> Lookup[Any, Any]:
    """Everything a class-IN query decides: `(rcode, authoritative, node, answers, tail,
    failed_open)`, the one ladder behind every transport.

    `name` is lower-case wire form (bytes) or canonical text (str); the answer records and
    the tail come back in the same form: wire RRs and a `Tail`, or DoH-JSON fragments and
    a `,"Authority":[...]` or `,"Additional":[...]` member. The tail is the zone's SOA for
    NXDOMAIN and NODATA (which have no answers), the glue of an NS answer at a delegable
    apex, else None. `node` is the name's node, None when the name does not exist. Pure but
    for the draws from `rng`: callers count and render.
    """
    if isinstance(name, bytes):
        node = compiled.by_wire.get(name)
        if node is None:
            zone = compiled.zone_for_wire(name)
            return (
                _REFUSED if zone is None else (NXDOMAIN, True, None, (), zone.negative_wire, False)
            )
        wire = True
    else:
        node = compiled.by_text.get(name)
        if node is None:
            zone = compiled.zone_for_text(name)
            return (
                _REFUSED if zone is None else (NXDOMAIN, True, None, (), zone.negative_json, False)
            )
        wire = False
    entry = node.by_type.get(qtype) or node.cname
    if entry is not None:
        # `resolve`, inlined (one Python call less per query); test_lookup holds them equal.
        items: Sequence[Any] = entry.wires if wire else entry.jsons
        status = entry.read(down)
        if fail_open and status == entry.all_down:
            return NOERROR, True, node, entry.choose(entry, entry.zeros, rng, items), None, True
        return NOERROR, True, node, entry.choose(entry, status, rng, items), None, False
    if qtype == ANY:
        hinfo = HINFO_ANY if wire else _hinfo_json(node)
        return NOERROR, True, node, (hinfo,), None, False
    if qtype in _ZONE_TRANSFERS:
        return REFUSED, False, node, (), None, False
    if qtype == NS and node.apex is not None:  # no check guards an NS: nothing to read
        apex = node.apex
        if wire:
            return NOERROR, True, node, apex.ns.wires, apex.glue_wire, False
        return NOERROR, True, node, apex.ns.jsons, apex.glue_json, False
    tail = node.zone.negative_wire if wire else node.zone.negative_json
    return NOERROR, True, node, (), tail, False  # NODATA


def _fit(records: Sequence[bytes], room: int) -> tuple[bytes, int]:
    """The leading whole records that fit in `room` bytes, and how many they are."""
    used = 0
    for count, record in enumerate(records):
        if used + len(record) > room:
            return b"".join(records[:count]), count
        used += len(record)
    return b"".join(records), len(records)


def _hinfo_json(node: Node) -> str:
    return f'{{"name":{node.name_json},"type":13,"TTL":3600,"data":{_HINFO_JSON}}}'


def down_view(table: SlotArray, changed: npt.NDArray[np.bool_] | None = None) -> bytes:
    """The hot path's view of an aggregated table: 1 per unhealthy slot, plus a 0 slot.

    `changed` marks slots whose check has another target under our config than under
    the table's: their status describes the old target, so they read as unknown.
    """
    down = statuses_of(table) == Status.UNHEALTHY
    if changed is not None:
        down &= ~changed
    view: bytes = down.astype(np.uint8).tobytes()
    return view + b"\0"


def unknown_view(capacity: int) -> bytes:
    """The view with no table, or a table too old to believe: every slot unknown."""
    return bytes(capacity + 1)


class Responder:
    """Answers queries from the compiled records and the down view in force.

    The service swaps `compiled`, `down` and `fail_open` whole; each query reads them once.
    `note` is what JSON answers add while no fresh table answers them (the service's).
    `tallies` counts answers by (qtype, rcode) per transport; `fail_open_answers` and
    `malformed` count what their names say. The service flushes them into metrics.
    """

    __slots__ = ("compiled", "down", "fail_open", "fail_open_answers", "malformed", "note", "rng")

    def __init__(self, compiled: Compiled, rng: random.Random, fail_open: bool = True) -> None:
        self.compiled = compiled
        self.down = unknown_view(compiled.capacity)
        self.fail_open = fail_open
        self.note = ""
        self.rng = rng
        self.fail_open_answers = 0
        self.malformed: dict[str, int] = {}

    # --- classic DNS and DoH (wire format) -----------------------------------------

    def dns(self, msg: bytes, udp: bool, tally: dict[tuple[int, int], int]) -> bytes | None:
        """The response to one wire-format message, or None when it must be dropped."""
        try:
            name_end, qtype, qclass, edns, do_bit = parse_query(msg)
        except MessageError as exc:
            return self._refuse(msg, exc, tally)
        if qclass == _IN:  # another class is refused before any lookup
            rcode, authoritative, _, chosen, tail, failed_open = lookup(
                self.compiled, msg[12:name_end].lower(), qtype, self.down, self.rng, self.fail_open
            )
            if failed_open:
                self.fail_open_answers += 1
        else:
            rcode, authoritative, _, chosen, tail, _ = _REFUSED
        flags = (_QR_AA if authoritative else QR) | ((msg[2] << 8 | msg[3]) & _RD_CD)
        if tail is None:
            answers = b"".join(chosen)
            ancount = len(chosen)
            nscount = arcount = 0
        else:
            rest, nscount, arcount = tail
            if chosen:  # an apex NS answer, then its glue
                answers = b"".join(chosen) + rest
                ancount = len(chosen)
            else:  # NXDOMAIN or NODATA: the zone's SOA alone, in authority
                answers = rest
                ancount = 0
        opt = (_OPT_DO if do_bit else _OPT_PLAIN) if edns else b""
        qend = name_end + 4
        if udp:  # all or nothing: a client that needs more retries over TCP
            if qend + len(answers) + len(opt) > (min(edns, MAX_UDP_PAYLOAD) if edns else 512):
                flags |= TC
                answers = b""
                ancount = nscount = arcount = 0
        elif qend + len(answers) + len(opt) > MAX_MESSAGE:  # validation refuses such records
            answers, ancount = _fit(chosen, MAX_MESSAGE - qend - len(opt))
            flags |= TC
            nscount = arcount = 0
        key = (qtype, rcode)
        tally[key] = tally.get(key, 0) + 1
        return b"".join(
            (
                msg[:2],
                _REST.pack(flags | rcode, 1, ancount, nscount, arcount + 1 if opt else arcount),
                msg[12:qend],
                answers,
                opt,
            )
        )

    def _refuse(
        self, msg: bytes, exc: MessageError, tally: dict[tuple[int, int], int]
    ) -> bytes | None:
        self.malformed[exc.reason] = self.malformed.get(exc.reason, 0) + 1
        if isinstance(exc, Dropped):
            return None
        if isinstance(exc, BadVersion):
            key = (NO_QUESTION, BADVERS)
            tally[key] = tally.get(key, 0) + 1
            qend = exc.name_end + 4
            flags = QR | ((msg[2] << 8 | msg[3]) & (RD | CD))
            return b"".join(
                (
                    msg[:2],
                    _REST.pack(flags, 1, 0, 0, 1),
                    msg[12:qend],
                    opt_record(exc.do_bit, BADVERS),
                )
            )
        rcode = NOTIMP if isinstance(exc, NotImplementedOpcode) else FORMERR
        key = (NO_QUESTION, rcode)
        tally[key] = tally.get(key, 0) + 1
        return error_from_header(msg, rcode)

    def servfail(self, msg: bytes, tally: dict[tuple[int, int], int]) -> bytes | None:
        """SERVFAIL from the header alone, after an internal error; None if no header."""
        if len(msg) < 12:
            return None
        key = (NO_QUESTION, SERVFAIL)
        tally[key] = tally.get(key, 0) + 1
        return error_from_header(msg, SERVFAIL)

    # --- DoH JSON --------------------------------------------------------------------

    def json(self, name: str, qtype: int, tally: dict[tuple[int, int], int]) -> str:
        """The DoH-JSON body for a canonical (lower-case, absolute) name and a type."""
        rcode, _, node, chosen, tail, failed_open = lookup(
            self.compiled, name, qtype, self.down, self.rng, self.fail_open
        )
        name_json = json.dumps(name) if node is None else node.name_json
        if tail is not None:  # the SOA in authority, or an apex NS answer's glue
            answers = ",".join(chosen)
            extra = tail
        elif failed_open:
            self.fail_open_answers += 1
            answers = ",".join(chosen)
            extra = ',"fail_open":true'
        else:
            answers = ",".join(chosen)
            extra = ""
        key = (qtype, rcode)
        tally[key] = tally.get(key, 0) + 1
        return (
            f'{{"Status":{rcode},"TC":false,"RD":false,"RA":false,"AD":false,"CD":false,'
            f'"Question":[{{"name":{name_json},"type":{qtype}}}],"Answer":[{answers}]{extra}'
            f"{self.note}}}"
        )


def explain(
    compiled: Compiled,
    name: str,
    qtype: int | None,
    raw: bytes | None,
    down: bytes,
    fail_open: bool,
    rng: random.Random,
    table: dict[str, Any],
    changed: npt.NDArray[np.bool_] | None = None,
) -> dict[str, Any]:
    """Why `name` answers what it does: every candidate's slot, status, reason, and the pick.

    `raw` is the aggregated table in force (None before any); `down` what queries read
    (all unknown when the table is missing or too old); `table` facts about the table;
    `changed` the slots the table cannot speak for (their check changed since its config).
    """
    node = compiled.by_text.get(name)
    result: dict[str, Any] = {"name": name, "table": table, "fail_open_config": fail_open}
    if node is None:  # NXDOMAIN or REFUSED as a query decides it; it draws nothing from rng
        result["rcode"] = _RCODE_LABELS[lookup(compiled, name, qtype or 0, down, rng, fail_open)[0]]
        result["records"] = []
        return result
    result["rcode"] = "noerror"
    result["zone"] = node.zone.name
    entries = [
        entry
        for entry in node.by_type.values()
        if qtype is None or entry.qtype == qtype or (node.cname is entry)
    ]
    if node.apex is not None and qtype in (None, NS):
        entries.append(node.apex.ns)
    result["records"] = [
        _explain_entry(entry, raw, down, fail_open, rng, changed) for entry in entries
    ]
    return result


def _explain_entry(
    entry: Entry,
    raw: bytes | None,
    down: bytes,
    fail_open: bool,
    rng: random.Random,
    changed: npt.NDArray[np.bool_] | None,
) -> dict[str, Any]:
    read = entry.read(down)
    answers = []
    for i, candidate in enumerate(entry.candidates):
        item: dict[str, Any] = {
            "value": candidate.value,
            "slot": candidate.slot,
            "weight": candidate.weight,
            "role": candidate.role,
            "counted_as": "unhealthy" if read[i] else "healthy",
        }
        if candidate.slot is None:
            item["status"] = "no_check"
            item["reason"] = None
        elif raw is None:
            item["status"] = Status.UNKNOWN.label
            item["reason"] = None
        elif changed is not None and changed[candidate.slot]:
            item["status"] = Status.UNKNOWN.label
            item["reason"] = "config_changed: the table predates this slot's current target"
        else:
            byte = raw[candidate.slot]
            status = byte & STATUS_MASK
            item["status"] = _label(Status, status)
            item["reason"] = (
                _label(Reason, byte >> REASON_SHIFT) if status == Status.UNHEALTHY else None
            )
        answers.append(item)
    chosen, failed_open = resolve(entry, down, rng, fail_open, entry.candidates)
    return {
        "type": entry.rtype,
        "qtype": entry.qtype,
        "policy": str(entry.policy),
        "ttl": entry.ttl,
        "answers": answers,
        "would_answer": [c.value for c in chosen],
        "fail_open_applied": failed_open,
    }


def _label(enum: type[Status] | type[Reason], value: int) -> str:
    try:
        return enum(value).label
    except ValueError:
        return f"unknown_{value}"


def qtype_of(text: str) -> int:
    """A query type from the HTTP API: a name we know, a number, or any type dnspython knows."""
    upper = text.strip().upper()
    if upper in QTYPES:
        return QTYPES[upper]
    if upper.isdigit():
        value = int(upper)
        if 0 < value < 65536:
            return value
        raise ValueError(f"type {text!r} is out of range 1-65535")
    import dns.rdatatype  # rare path: type names beyond the ones we serve

    try:
        return int(dns.rdatatype.from_text(upper))
    except dns.rdatatype.UnknownRdatatype:
        raise ValueError(f"type {text!r} is not a DNS record type") from None
