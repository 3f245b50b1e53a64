"""Answering: compiled records + the health table in force -> DNS, DoH-JSON and explain answers.

Owns: the per-query path. `lookup` makes every decision of a query, for every transport:
which node, NXDOMAIN or REFUSED by zone, the entry for the type or the CNAME, RFC 8482 for
ANY, zone transfers refused, a delegable apex's NS with its glue in additional, the SOA in
authority for NXDOMAIN and NODATA; `Responder` only renders its result as wire bytes or a
DoH-JSON body, and counts. Every query reads its entry's lever mode (one byte, decided per
refresh by `resolver.levers`: shifts, overrides, min_healthy, when_all_down), then the
table byte of EVERY candidate of the name from the down view that mode names (one C-level
itemgetter), even when the first is healthy, and hands the policy's chooser that vector
and the answers at the TTL the mode names; or gives the all-down answer the mode names
(NODATA, NXDOMAIN, SERVFAIL). Unknown status and answers without a check count as healthy.
Never: caches a health decision between queries, touches sockets or clocks, or uses
dnspython per query (answer bytes are pre-encoded by `records`).
Cost: O(question name + candidates) per query, the same whatever the health of the world
and whatever levers are in force.

A down view is `capacity + 1` bytes: 1 where the slot counts as unhealthy, else 0; the
extra last byte (always 0) is the slot of answers without a check.
"""

# urn: pure

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, overload

import numpy as np
import numpy.typing as npt

from resolver import levers
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
from resolver.levers import (
    ANSWERED,
    DEGRADED,
    FORCED_LABELS,
    MODE_LABELS,
    MODES,
    NORMAL,
    OPEN,
    PANIC,
    SHIFT_IGNORED,
    plain,
)
from resolver.records import ANY, HINFO_ANY, HINFO_ANY_TEXT, NS, QTYPES, qtype_label
from urn.config.levers import format_time
from urn.table import REASON_SHIFT, STATUS_MASK, Reason, Status, statuses_of

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping, Sequence

    from resolver.levers import Decision
    from resolver.records import Compiled, Entry, Node, Tail
    from urn.config import Check, Document
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
    "up_view",
]

T = TypeVar("T")
U = TypeVar("U")
if TYPE_CHECKING:
    # What `lookup` decides, and the records in the form of the name asked; a plain tuple,
    # not a class, because the hot path builds one per query: (rcode, authoritative, node
    # or None, answers, tail or None, lever mode). The tail is what follows the answers,
    # pre-rendered: the SOA in authority (NXDOMAIN, NODATA) or an apex NS answer's glue.
    # The mode is the entry's (resolver.levers), NORMAL when no entry answered.
    Lookup: TypeAlias = tuple[int, bool, Node | None, Sequence[T], U | None, int]

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
_REFUSED: Lookup[Any, Any] = (REFUSED, False, None, (), None, NORMAL)  # no zone, or not IN
# What a JSON answer adds in each lever mode: what the answer is not plainly.
_MODE_NOTES = (
    *("", ""),
    *(',"shift_ignored":true',) * 2,
    *(',"panic":true',) * 2,
    *(',"panic":true,"shift_ignored":true',) * 2,
    *(',"fail_open":true',) * 2,
    ',"all_down":"closed"',
    ',"all_down":"nxdomain"',
    ',"all_down":"servfail"',
)


def resolve(
    entry: Entry, views: Sequence[bytes], mode: int, rng: random.Random, items: Sequence[T]
) -> tuple[list[T], int]:
    """The chosen items (parallel to the entry's candidates) in lever mode `mode` (the
    entry's byte of a decision's modes), and the mode; none in an all-down mode that
    answers without records (closed, nxdomain, servfail)."""
    if mode < ANSWERED:
        return entry.choose(entry, entry.read(views[mode]), rng, items), mode
    return [], mode


@overload
def lookup(
    compiled: Compiled,
    name: bytes,
    qtype: int,
    views: Sequence[bytes],
    modes: bytes,
    rng: random.Random,
) -> Lookup[bytes, Tail]: ...
@overload
def lookup(
    compiled: Compiled,
    name: str,
    qtype: int,
    views: Sequence[bytes],
    modes: bytes,
    rng: random.Random,
) -> Lookup[str, str]: ...
def lookup(
    compiled: Compiled,
    name: bytes | str,
    qtype: int,
    views: Sequence[bytes],
    modes: bytes,
    rng: random.Random,
) -> Lookup[Any, Any]:
    """Everything a class-IN query decides: `(rcode, authoritative, node, answers, tail,
    mode)`, the one ladder behind every transport.

    `name` is lower-case wire form (bytes) or canonical text (str); the answer records and
    the tail come back in the same form: wire RRs and a `Tail`, or DoH-JSON fragments and
    a `,"Authority":[...]` or `,"Additional":[...]` member. The tail is the zone's SOA for
    NXDOMAIN and NODATA (which have no answers), the glue of an NS answer at a delegable
    apex, else None. `node` is the name's node, None when the name does not exist. `views`
    and `modes` are a `levers.Decision`'s: the down view of each mode, the mode of each
    entry. Pure but for the draws from `rng`: callers count and render.
    """
    if isinstance(name, bytes):
        node = compiled.by_wire.get(name)
        if node is None:
            zone = compiled.zone_for_wire(name)
            return (
                _REFUSED if zone is None else (NXDOMAIN, True, None, (), zone.negative_wire, NORMAL)
            )
        wire = True
    else:
        node = compiled.by_text.get(name)
        if node is None:
            zone = compiled.zone_for_text(name)
            return (
                _REFUSED if zone is None else (NXDOMAIN, True, None, (), zone.negative_json, NORMAL)
            )
        wire = False
    entry = node.by_type.get(qtype) or node.cname
    if entry is not None:
        # `resolve`, inlined (one Python call less per query); test_lookup holds them equal.
        mode = modes[entry.index]
        if mode < ANSWERED:
            items: Sequence[Any] = (entry.wires_by_mode if wire else entry.jsons_by_mode)[mode]
            status = entry.read(views[mode])
            return NOERROR, True, node, entry.choose(entry, status, rng, items), None, mode
        return _all_down(node, mode, wire)
    if qtype == ANY:
        hinfo = HINFO_ANY if wire else _hinfo_json(node)
        return NOERROR, True, node, (hinfo,), None, NORMAL
    if qtype in _ZONE_TRANSFERS:
        return REFUSED, False, node, (), None, NORMAL
    if qtype == NS and node.apex is not None:  # no check guards an NS: nothing to read
        apex = node.apex
        if wire:
            return NOERROR, True, node, apex.ns.wires, apex.glue_wire, NORMAL
        return NOERROR, True, node, apex.ns.jsons, apex.glue_json, NORMAL
    tail = node.zone.negative_wire if wire else node.zone.negative_json
    return NOERROR, True, node, (), tail, NORMAL  # NODATA


def _all_down(node: Node, mode: int, wire: bool) -> Lookup[Any, Any]:
    """A record with no healthy answer whose `when_all_down` is closed, nxdomain or
    servfail: NODATA or NXDOMAIN with the zone's SOA, or a SERVFAIL (not authoritative)."""
    if mode == levers.SERVFAIL:
        return SERVFAIL, False, node, (), None, mode
    tail = node.zone.negative_wire if wire else node.zone.negative_json
    return (NXDOMAIN if mode == levers.NXDOMAIN else NOERROR), True, node, (), tail, mode


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


def up_view(table: SlotArray, changed: npt.NDArray[np.bool_] | None = None) -> bytes:
    """1 per slot the table says is healthy (what `invert` turns down), plus a 0 slot;
    `changed` slots are unknown, as in `down_view`."""
    up = statuses_of(table) == Status.HEALTHY
    if changed is not None:
        up &= ~changed
    view: bytes = up.astype(np.uint8).tobytes()
    return view + b"\0"


def unknown_view(capacity: int) -> bytes:
    """The view with no table, or a table too old to believe: every slot unknown."""
    return bytes(capacity + 1)


class Responder:
    """Answers queries from the compiled records and the lever decision in force.

    The service installs `compiled` and its `decision` whole (`install`); each query reads
    the decision's views and modes once. `note` is what JSON answers add while no fresh
    table answers them (the service's). `tallies` counts answers by (qtype, rcode) per
    transport; `answers_by_mode` counts the answers a lever shaped (shift ignored, panic,
    all down), by mode, and `malformed` what its name says. The service flushes them
    into metrics.
    """

    __slots__ = (
        "answers_by_mode",
        "compiled",
        "decision",
        "malformed",
        "modes",
        "note",
        "rng",
        "views",
    )

    def __init__(self, compiled: Compiled, rng: random.Random) -> None:
        self.note = ""
        self.rng = rng
        self.answers_by_mode = [0] * MODES
        self.malformed: dict[str, int] = {}
        self.install(compiled, plain(compiled.levers, unknown_view(compiled.capacity)))

    def install(self, compiled: Compiled, decision: Decision) -> None:
        """Answer from `compiled` as `decision` (made for these very entries) says."""
        self.compiled = compiled
        self.decision = decision
        self.views = decision.views
        self.modes = decision.modes

    @property
    def fail_open_answers(self) -> int:
        """Answers given as if healthy because none of their record's answers was."""
        return self.answers_by_mode[OPEN] + self.answers_by_mode[OPEN | DEGRADED]

    # --- classic DNS and DoH (wire format) -----------------------------------------

    def dns(self, msg: bytes, udp: bool, tally: dict[tuple[int, int], int]) -> bytes | None:
        """The response to one wire-format message, or None when it must be dropped."""
        try:
            name_end, qtype, qclass, edns, do_bit = parse_query(msg)
        except MessageError as exc:
            return self._refuse(msg, exc, tally)
        if qclass == _IN:  # another class is refused before any lookup
            rcode, authoritative, _, chosen, tail, mode = lookup(
                self.compiled, msg[12:name_end].lower(), qtype, self.views, self.modes, self.rng
            )
            if mode >= SHIFT_IGNORED:  # a lever shaped this answer: count it, as fail-open was
                self.answers_by_mode[mode] += 1
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
        rcode, _, node, chosen, tail, mode = lookup(
            self.compiled, name, qtype, self.views, self.modes, self.rng
        )
        if mode >= SHIFT_IGNORED:
            self.answers_by_mode[mode] += 1
        name_json = json.dumps(name) if node is None else node.name_json
        answers = ",".join(chosen)
        # The SOA in authority, or an apex NS answer's glue; then what the levers did.
        extra = _MODE_NOTES[mode] if tail is None else tail + _MODE_NOTES[mode]
        key = (qtype, rcode)
        tally[key] = tally.get(key, 0) + 1
        return (
            f'{{"Status":{rcode},"TC":false,"RD":false,"RA":false,"AD":false,"CD":false,'
            f'"Question":[{{"name":{name_json},"type":{qtype}}}],"Answer":[{answers}]{extra}'
            f"{self.note}}}"
        )


def explain(
    compiled: Compiled,
    document: Document,
    name: str,
    qtype: int | None,
    raw: bytes | None,
    decision: Decision,
    rng: random.Random,
    table: dict[str, Any],
    changed: npt.NDArray[np.bool_] | None = None,
) -> dict[str, Any]:
    """Why `name` answers what it does: every candidate's slot, status, reason, the levers
    on it, how it counted, and the record's mode and one sample pick.

    `raw` is the aggregated table in force (None before any); `decision` what queries read
    (made from the table, or from all unknown when it is missing or too old, and the
    levers of `document` at `decision.now`); `table` facts about the table; `changed` the
    slots the table cannot speak for (their check changed since its config).
    """
    node = compiled.by_text.get(name)
    result: dict[str, Any] = {
        "name": name,
        "table": table,
        "fail_open_config": document.fail_open,
        "shifts": [
            {
                "az": shift.az,
                "until": format_time(shift.until),
                "reason": shift.reason,
                "active": shift.az in decision.shifted_azs,
            }
            for shift in document.shifts
        ],
        "autoshift": {
            "azs": list(decision.autoshifted_azs),
            "active": bool(decision.autoshifted_azs) and not decision.autoshift_overruled,
            "overruled_by_shift": decision.autoshift_overruled,
        },
    }
    if node is None:  # NXDOMAIN or REFUSED as a query decides it; it draws nothing from rng
        result["rcode"] = _RCODE_LABELS[
            lookup(compiled, name, qtype or 0, decision.views, decision.modes, rng)[0]
        ]
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
    checks = document.checks_by_slot
    result["records"] = [
        _explain_entry(entry, raw, decision, rng, changed, checks) for entry in entries
    ]
    return result


# The modes whose shifts stand (the others ignore a shift, or have no answer up anyway).
_SHIFT_HOLDS = frozenset((NORMAL, NORMAL | DEGRADED, PANIC, PANIC | DEGRADED))


def _explain_entry(
    entry: Entry,
    raw: bytes | None,
    decision: Decision,
    rng: random.Random,
    changed: npt.NDArray[np.bool_] | None,
    checks: Mapping[int, Check],
) -> dict[str, Any]:
    mode = decision.modes[entry.index]
    answers = []
    for candidate in entry.candidates:
        slot = candidate.slot
        counted = slot is not None and bool(
            decision.health[slot] or (decision.shifted[slot] and mode in _SHIFT_HOLDS)
        )
        item: dict[str, Any] = {
            "value": candidate.value,
            "slot": slot,
            "weight": candidate.weight,
            "role": candidate.role,
            "counted_as": "unhealthy" if counted else "healthy",
        }
        if slot is None:
            item["status"] = "no_check"
            item["reason"] = None
        elif raw is None:
            item["status"] = Status.UNKNOWN.label
            item["reason"] = None
        elif changed is not None and changed[slot]:
            item["status"] = Status.UNKNOWN.label
            item["reason"] = "config_changed: the table predates this slot's current target"
        else:
            byte = raw[slot]
            status = byte & STATUS_MASK
            item["status"] = _label(Status, status)
            item["reason"] = (
                _label(Reason, byte >> REASON_SHIFT) if status == Status.UNHEALTHY else None
            )
        if slot is not None:
            item.update(_slot_levers(slot, decision, checks.get(slot)))
        answers.append(item)
    chosen, _ = resolve(entry, decision.views, mode, rng, entry.candidates)
    degraded = bool(mode & DEGRADED) and mode < ANSWERED
    return {
        "type": entry.rtype,
        "qtype": entry.qtype,
        "policy": str(entry.policy),
        "ttl": entry.ttl,
        "answers": answers,
        "would_answer": [c.value for c in chosen],
        "fail_open_applied": mode in (OPEN, OPEN | DEGRADED),
        "mode": MODE_LABELS[mode],
        "ttl_now": (
            entry.ttl_when_degraded
            if degraded and entry.ttl_when_degraded is not None
            else entry.ttl
        ),
        "min_healthy": (
            {"count": entry.min_healthy.count, "percent": entry.min_healthy.percent}
            if entry.min_healthy.enabled
            else None
        ),
        "when_all_down": str(entry.when_all_down),
        "ttl_when_degraded": entry.ttl_when_degraded,
    }


def _slot_levers(slot: int, decision: Decision, check: Check | None) -> dict[str, Any]:
    """What the levers did to one slot: inverted, overridden (in force or lapsed), shifted."""
    override = None if check is None else check.override
    return {
        "inverted": bool(decision.inverted[slot]),
        "override": (
            None
            if override is None
            else {
                "status": str(override.status),
                "until": format_time(override.until),
                "reason": override.reason,
                "active": FORCED_LABELS[decision.forced[slot]] == str(override.status),
            }
        ),
        "shifted": None if check is None or not decision.shifted[slot] else check.az,
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
