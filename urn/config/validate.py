"""Section validation: a loaded mapping becomes a Document, or the first bad field is named.

Owns: every rule about what a valid document is and between fields (slots inside
capacity, children without cycles, records inside a zone, failover roles, in-zone
nameservers with glue; the levers' own fields are read by `urn.config.levers`) and the
field path of every error (`checks[3].slot: 12000 is outside capacity 10000`).
Never: reads files, URLs, environment variables or clocks, or parses text (`urn.source`
fetches, `urn.config.load` parses); key material is resolved by the services.
Cost: O(size of document); runs once per config pass, never on a hot path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from urn.config import levers
from urn.config.fields import Fields, as_mapping, unique
from urn.config.load import digest
from urn.config.model import (
    Answer,
    Assignment,
    Check,
    CheckType,
    Defaults,
    Document,
    Intervals,
    KeySource,
    OnStale,
    Policy,
    Quorum,
    Record,
    RecordType,
    Role,
    Senders,
    Soa,
    Tls,
    WhenAllDown,
    Zone,
    in_zone,
)
from urn.errors import BadName, ConfigError
from urn.names import MAX_NAME, canonical_name
from urn.table import HISTORY_BITS
from urn.wire import SENDER_BYTES

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_SKEW", "normalize_name", "parse_document"]

# Tables stamped further than this from the receiver's wall clock are refused. Hosts keep
# NTP-grade clocks; a table 20 s in the future is a fault (or a forgery) to refuse, not
# news to believe, and the replay guard forgets senders silent for twice this.
DEFAULT_SKEW = 10.0


def parse_document(raw: Mapping[str, Any], now: float | None = None) -> Document:
    """Validate a parsed document; raise ConfigError naming the first bad field.

    `now` is the wall time (Unix seconds) the document is validated at: a shift or
    override expiring more than `levers.LEVER_HORIZON` after it is refused. None judges
    no horizon (tools reading a document for its shape, and tests).
    """
    top = Fields(raw, "")
    capacity = top.integer("capacity", 10_000, low=1, high=1_000_000)
    intervals = _intervals(top.mapping("intervals"))
    defaults_section = top.mapping("defaults")
    old_spelling = levers.old_fail_open(top, defaults_section.raw)
    defaults = _defaults(defaults_section, top.mapping("quorum"), old_spelling)
    staleness = top.number("staleness", max(5.0, 3 * intervals.push), low=0.001)
    skew = top.number("skew", DEFAULT_SKEW, low=0.0)
    max_table_age = top.number("max_table_age", max(30.0, 10 * intervals.push), low=0.001)
    on_stale = top.choice("on_stale", OnStale, OnStale.HOLD)
    zones = _zones(top.sequence("zones"))
    aggregators = tuple(
        _url(u, f"aggregators[{i}]") for i, u in enumerate(top.strings("aggregators", ()))
    )
    resolvers = tuple(
        _url(u, f"resolvers[{i}]") for i, u in enumerate(top.strings("resolvers", ()))
    )
    assignment = _assignment(top.mapping("assignment"))
    push_key = _key_source(top.mapping("push_key", {"env": "URN_PUSH_KEY"}), "push_key")
    previous = _key_sources(top, "previous_push_keys")
    table_key = (
        None
        if top.raw.get("table_key") is None
        else _key_source(top.mapping("table_key"), "table_key")
    )
    previous_table = _key_sources(top, "previous_table_keys")
    senders = _senders(top.mapping("senders"))
    tls = _tls(top.mapping("tls"))
    checks = _checks(top.sequence("checks"), capacity, defaults, now)
    by_name = {c.name: c.slot for c in checks}
    slots = {c.slot for c in checks}
    records = _records(
        top.sequence("records"), tuple(z.name for z in zones), slots, by_name, defaults
    )
    _records_leave_zones_alone(records, zones)
    shifts = levers.shifts(top.sequence("shifts"), {c.az for c in checks if c.az is not None}, now)
    autoshift = levers.autoshift(top)
    top.done()
    return Document(
        capacity=capacity,
        intervals=intervals,
        staleness=staleness,
        skew=skew,
        max_table_age=max_table_age,
        on_stale=on_stale,
        zones=zones,
        aggregators=aggregators,
        resolvers=resolvers,
        defaults=defaults,
        assignment=assignment,
        push_key=push_key,
        previous_push_keys=previous,
        table_key=table_key,
        previous_table_keys=previous_table,
        senders=senders,
        tls=tls,
        checks=checks,
        records=records,
        digest=digest(raw),
        shifts=shifts,
        autoshift=autoshift,
    )


def normalize_name(value: object, path: str) -> str:
    """A DNS name from the document (urn.names), or ConfigError naming the field."""
    if not isinstance(value, str):
        raise ConfigError(path, value, "is not a DNS name")
    try:
        name = canonical_name(value)
    except BadName as exc:
        raise ConfigError(path, value, f"is not a DNS name: {exc}") from None
    if name == ".":
        raise ConfigError(path, value, "is not a DNS name: the root holds no records here")
    return name


# --- sections ------------------------------------------------------------------------

UINT32 = 2**32 - 1
MAX_TTL = 2**31 - 1  # RFC 2181 section 8


def _zones(items: Sequence[Any]) -> tuple[Zone, ...]:
    """Each zone a bare name (no NS at its apex) or a mapping: name, ns, addresses, soa."""
    zones: list[Zone] = []
    for i, item in enumerate(items):
        path = f"zones[{i}]"
        if isinstance(item, str):
            name = normalize_name(item, path)
            zones.append(Zone(name=name, soa=_soa(Fields({}, f"{path}.soa"), name, ())))
        elif isinstance(item, Mapping):
            zones.append(_zone(Fields(item, path)))
        else:
            raise ConfigError(path, item, "must be a zone name or a mapping (name, ns, ...)")
    unique([zone.name for zone in zones], "zones")
    _glue_agrees(zones)
    return tuple(zones)


def _under(label: str, zone: str) -> str:
    """`label.zone`, or the zone itself where that would be longer than a name can be."""
    name = f"{label}.{zone}"
    return name if len(name) <= MAX_NAME + 1 else zone


def _zone(fields: Fields) -> Zone:
    name = normalize_name(fields.string("name", None), fields.path("name"))
    ns = tuple(
        normalize_name(server, fields.path(f"ns[{j}]"))
        for j, server in enumerate(fields.sequence("ns"))
    )
    unique(ns, fields.path("ns"))
    addresses = _addresses(fields.mapping("addresses"), name, ns)
    for j, server in enumerate(ns):
        if in_zone(server, name) and server not in addresses:
            raise ConfigError(
                fields.path(f"ns[{j}]"),
                server,
                f"is inside {name}, so it needs its addresses (glue) in {fields.path('addresses')}",
            )
    soa = _soa(fields.mapping("soa"), name, ns)
    ttl = fields.integer("ttl", Zone(name=name, soa=soa).ttl, low=0, high=MAX_TTL)
    fields.done()
    zone = Zone(name=name, soa=soa, ns=ns, addresses=addresses, ttl=ttl)
    _ns_answer_fits(fields.path("ns"), zone)
    return zone


def _addresses(fields: Fields, zone: str, ns: tuple[str, ...]) -> Mapping[str, tuple[str, ...]]:
    """Nameserver name -> its IPv4/IPv6 addresses, for the zone's in-zone nameservers only."""
    result: dict[str, tuple[str, ...]] = {}
    for key, value in fields.raw.items():
        path = fields.path(f"[{key}]")
        server = normalize_name(key, path)
        if server in result:
            raise ConfigError(path, key, f"is {server} again")
        if server not in ns:
            raise ConfigError(path, key, f"is not one of ns {list(ns)}")
        if not in_zone(server, zone):
            raise ConfigError(
                path, key, f"is outside {zone}: only a nameserver inside the zone has glue"
            )
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not items:
            raise ConfigError(path, value, "must be a list of IPv4 and IPv6 addresses")
        result[server] = tuple(_address(item, f"{path}[{k}]") for k, item in enumerate(items))
        unique(result[server], path)
    fields.consume_all()
    return MappingProxyType(result)


def _address(value: object, path: str) -> str:
    if isinstance(value, str):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            if not (isinstance(address, ipaddress.IPv6Address) and address.scope_id):
                return str(address)
    raise ConfigError(path, value, "is not an IPv4 or IPv6 address")


def _soa(fields: Fields, zone: str, ns: tuple[str, ...]) -> Soa:
    mname = normalize_name(
        fields.string("mname", ns[0] if ns else _under("ns", zone)), fields.path("mname")
    )
    rname_text = fields.string("rname", _under("hostmaster", zone))
    if "@" in rname_text:
        raise ConfigError(
            fields.path("rname"),
            rname_text,
            "is a mailbox written as a DNS name: hostmaster.example.com. for "
            "hostmaster@example.com",
        )
    rname = normalize_name(rname_text, fields.path("rname"))
    base = Soa(mname=mname, rname=rname)
    soa = Soa(
        mname=mname,
        rname=rname,
        serial=fields.integer("serial", base.serial, low=0, high=UINT32),
        refresh=fields.integer("refresh", base.refresh, low=0, high=UINT32),
        retry=fields.integer("retry", base.retry, low=0, high=UINT32),
        expire=fields.integer("expire", base.expire, low=0, high=UINT32),
        minimum=fields.integer("minimum", base.minimum, low=0, high=UINT32),
        ttl=fields.integer("ttl", base.ttl, low=0, high=MAX_TTL),
    )
    fields.done()
    return soa


def _glue_agrees(zones: Sequence[Zone]) -> None:
    """A nameserver inside two zones (one nested in the other) has one set of addresses."""
    first: dict[str, int] = {}
    for i, zone in enumerate(zones):
        for server, addresses in zone.addresses.items():
            j = first.setdefault(server, i)
            if set(zones[j].addresses[server]) != set(addresses):
                raise ConfigError(
                    f"zones[{i}].addresses[{server}]",
                    list(addresses),
                    f"differ from zones[{j}].addresses[{server}]: a name has one set of addresses",
                )


def _ns_answer_fits(path: str, zone: Zone) -> None:
    """Refuse an apex NS answer (with its glue) that cannot be one DNS message."""

    def wire(text: str) -> int:
        return len(text.encode()) + 1

    size = 12 + wire(zone.name) + 4 + 11  # header, question, OPT
    size += sum(12 + wire(server) for server in zone.ns)
    for server, addresses in zone.addresses.items():
        size += sum(wire(server) + 10 + (4 if ":" not in a else 16) for a in addresses)
    if size > 65535:
        raise ConfigError(
            path,
            f"{len(zone.ns)} nameservers",
            f"with their addresses make an NS answer of up to {size:,} bytes, over the "
            "65,535 a DNS message can hold",
        )


def _records_leave_zones_alone(records: Sequence[Record], zones: Sequence[Zone]) -> None:
    """No CNAME at an apex (it holds the SOA and NS); a nameserver's addresses in one place."""
    apexes = {zone.name for zone in zones}
    glue = {server: i for i, zone in enumerate(zones) for server in zone.addresses}
    for i, record in enumerate(records):
        if record.type is RecordType.CNAME and record.name in apexes:
            raise ConfigError(
                f"records[{i}].type", "CNAME", f"cannot be at the apex of zone {record.name}"
            )
        if record.name in glue and record.type in (
            RecordType.A,
            RecordType.AAAA,
            RecordType.CNAME,
        ):
            raise ConfigError(
                f"records[{i}].name",
                record.name,
                f"is a nameserver whose addresses zones[{glue[record.name]}].addresses "
                f"gives: give them in one place, not as {record.type} records too",
            )


def _intervals(fields: Fields) -> Intervals:
    probe = fields.number("probe", 1.0, low=0.01)
    push = fields.number("push", 1.0, low=0.01)
    config = fields.number("config", 5.0, low=0.05)
    lag = fields.number("aggregate_lag", round(0.1 * push, 6), low=0.0)
    if lag >= push:
        raise ConfigError(fields.path("aggregate_lag"), lag, f"must be shorter than push {push:g}")
    fields.done()
    return Intervals(probe=probe, push=push, config=config, aggregate_lag=lag)


def _defaults(fields: Fields, quorum: Fields, when_all_down: WhenAllDown | None) -> Defaults:
    """The fleet defaults; `when_all_down` is what the old `fail_open` said, if given."""
    base = Defaults()
    failures = fields.integer("failures", base.failures, low=1, high=HISTORY_BITS)
    of_last = fields.integer("of_last", max(base.of_last, failures), low=1, high=HISTORY_BITS)
    if failures > of_last:
        raise ConfigError(fields.path("failures"), failures, f"exceeds of_last {of_last}")
    timeout = fields.number("timeout", base.timeout, low=0.001)
    min_healthy = levers.min_healthy(fields, "min_healthy", base.min_healthy, None)
    all_down = levers.when_all_down(fields, when_all_down or base.when_all_down)
    degraded_ttl = levers.ttl_when_degraded(fields, None, None, MAX_TTL)
    fields.done()
    return Defaults(
        failures=failures,
        of_last=of_last,
        timeout=timeout,
        quorum=_quorum(quorum, base.quorum),
        min_healthy=min_healthy,
        when_all_down=all_down,
        ttl_when_degraded=degraded_ttl,
    )


def _quorum(fields: Fields, base: Quorum) -> Quorum:
    unhealthy_at = fields.number("unhealthy_at", base.unhealthy_at, low=0.0, high=1.0)
    if unhealthy_at <= 0:
        raise ConfigError(
            fields.path("unhealthy_at"), unhealthy_at, "must be above 0 (0 would call all down)"
        )
    min_checkers = fields.integer("min_checkers", base.min_checkers, low=1, high=0xFFFF)
    cross_az = fields.boolean("cross_az", base.cross_az)
    fields.done()
    return Quorum(unhealthy_at=unhealthy_at, min_checkers=min_checkers, cross_az=cross_az)


def _assignment(fields: Fields) -> Assignment:
    shard = fields.optional_integer("shuffle_shard", low=1)
    checkers = tuple(fields.strings("checkers", ()))
    unique(checkers, fields.path("checkers"))
    if shard is not None and shard > len(checkers):
        raise ConfigError(
            fields.path("shuffle_shard"),
            shard,
            f"needs at least that many checkers listed in assignment.checkers ({len(checkers)})",
        )
    fields.done()
    return Assignment(shuffle_shard=shard, checkers=checkers)


def _key_source(fields: Fields, path: str) -> KeySource:
    env = fields.optional_string("env")
    file = fields.optional_string("file")
    if (env is None) == (file is None):
        raise ConfigError(path, dict(fields.raw), "needs exactly one of env or file")
    fields.done()
    return KeySource(env=env, file=file)


def _key_sources(top: Fields, key: str) -> tuple[KeySource, ...]:
    return tuple(
        _key_source(Fields(as_mapping(item, f"{key}[{i}]"), f"{key}[{i}]"), f"{key}[{i}]")
        for i, item in enumerate(top.sequence(key))
    )


def _senders(fields: Fields) -> Senders:
    senders = Senders(
        aggregators=_sender_list(fields, "aggregators"),
        checkers=_sender_list(fields, "checkers"),
    )
    fields.done()
    return senders


def _sender_list(fields: Fields, key: str) -> tuple[str, ...] | None:
    """Ids or fnmatch patterns (urn.trust matches them); None when the list is left out."""
    if fields.raw.get(key) is None:
        fields.seen.add(key)
        return None
    entries = tuple(fields.strings(key, ()))
    if not entries:
        raise ConfigError(
            fields.path(key), [], "must list at least one id or pattern (leave it out for any)"
        )
    unique(entries, fields.path(key))
    for i, entry in enumerate(entries):
        path = fields.path(f"{key}[{i}]")
        if not entry or "\0" in entry or len(entry.encode()) > 255:
            raise ConfigError(path, entry, "must be 1-255 bytes without NUL")
        exact = not any(c in entry for c in "*?[")  # fnmatch's special characters
        if exact and len(entry.encode()) > SENDER_BYTES:
            raise ConfigError(
                path, entry, f"is longer than a sender id can be ({SENDER_BYTES} bytes)"
            )
    return entries


def _tls(fields: Fields) -> Tls:
    tls = Tls(
        cert=fields.optional_string("cert"),
        key=fields.optional_string("key"),
        ca=fields.optional_string("ca"),
        client_cert=fields.optional_string("client_cert"),
        client_key=fields.optional_string("client_key"),
        require_client_cert=fields.boolean("require_client_cert", False),
    )
    if (tls.cert is None) != (tls.key is None):
        raise ConfigError(fields.path("key"), tls.key, "cert and key must be given together")
    if (tls.client_cert is None) != (tls.client_key is None):
        raise ConfigError(
            fields.path("client_key"), tls.client_key, "client_cert and client_key go together"
        )
    if tls.require_client_cert and (tls.ca is None or tls.cert is None):
        raise ConfigError(
            fields.path("require_client_cert"), True, "needs ca and cert (an HTTPS listener)"
        )
    fields.done()
    return tls


def _checks(
    items: Sequence[Any], capacity: int, defaults: Defaults, now: float | None
) -> tuple[Check, ...]:
    checks: list[Check] = []
    seen_slots: dict[int, int] = {}
    seen_names: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"checks[{i}]"
        fields = Fields(as_mapping(item, path), path)
        check = _check(fields, capacity, defaults, now)
        if check.slot in seen_slots:
            raise ConfigError(
                fields.path("slot"),
                check.slot,
                f"is already used by checks[{seen_slots[check.slot]}]",
            )
        if check.name in seen_names:
            raise ConfigError(
                fields.path("name"),
                check.name,
                f"is already used by checks[{seen_names[check.name]}]",
            )
        seen_slots[check.slot] = i
        seen_names[check.name] = i
        checks.append(check)
    _check_children(checks, seen_slots)
    return tuple(checks)


def _check(fields: Fields, capacity: int, defaults: Defaults, now: float | None) -> Check:
    slot = fields.integer("slot", None, low=0)
    if slot >= capacity:
        raise ConfigError(fields.path("slot"), slot, f"is outside capacity {capacity}")
    name = fields.string("name", f"slot-{slot}")
    kind = fields.choice("type", CheckType, None)
    failures = fields.integer("failures", defaults.failures, low=1, high=HISTORY_BITS)
    of_last = fields.integer("of_last", max(defaults.of_last, failures), low=1, high=HISTORY_BITS)
    if failures > of_last:
        raise ConfigError(fields.path("failures"), failures, f"exceeds of_last {of_last}")
    labels = fields.mapping("labels")
    for key, value in labels.raw.items():
        if not isinstance(key, str):
            raise ConfigError(labels.path(str(key)), key, "label names must be strings")
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(labels.path(key), value, "label values must be scalars")
    label_map = MappingProxyType({k: str(v) for k, v in labels.raw.items()})
    labels.consume_all()
    common: dict[str, Any] = {
        "slot": slot,
        "name": name,
        "type": kind,
        "failures": failures,
        "of_last": of_last,
        "quorum": _quorum(fields.mapping("quorum"), defaults.quorum),
        "az": fields.optional_string("az"),
        "labels": label_map,
        "override": levers.override(fields, now),
        "invert": fields.boolean("invert", False),
    }
    if kind is CheckType.CALCULATED:
        children = tuple(fields.integers("children"))
        if not children:
            raise ConfigError(fields.path("children"), [], "must name at least one child slot")
        unique(children, fields.path("children"))
        at_least = fields.integer("healthy_if_at_least", 1, low=0, high=len(children))
        fields.done()
        return Check(
            **common,
            timeout=defaults.timeout,
            children=children,
            healthy_if_at_least=at_least,
        )
    host = fields.string("host", None)
    _host(host, fields.path("host"))
    default_port = {CheckType.HTTP: 80, CheckType.HTTPS: 443}.get(kind)
    port = fields.integer("port", default_port, low=1, high=65535)
    timeout = fields.number("timeout", defaults.timeout, low=0.001, high=60.0)
    path = "/"
    search: str | None = None
    verify_tls = False
    if kind in (CheckType.HTTP, CheckType.HTTPS):
        path = fields.string("path", "/")
        if not path.startswith("/") or any(c in path for c in " \r\n"):
            raise ConfigError(fields.path("path"), path, "must start with / and hold no spaces")
        search = fields.optional_string("search")
        if search is not None and not 0 < len(search.encode()) <= 255:
            raise ConfigError(fields.path("search"), search, "must be 1-255 bytes")
    if kind is CheckType.HTTPS:
        verify_tls = fields.boolean("verify_tls", False)
    fields.done()
    return Check(
        **common,
        timeout=timeout,
        host=host,
        port=port,
        path=path,
        search=search,
        verify_tls=verify_tls,
    )


def _check_children(checks: list[Check], index_by_slot: Mapping[int, int]) -> None:
    by_slot = {c.slot: c for c in checks}
    for check in checks:
        for j, child in enumerate(check.children):
            if child not in by_slot:
                path = f"checks[{index_by_slot[check.slot]}].children[{j}]"
                raise ConfigError(path, child, "is not the slot of any check")
    # Depth-first search with colours: a grey node met again closes a cycle.
    colour: dict[int, int] = {}

    def visit(slot: int, trail: list[int]) -> None:
        colour[slot] = 1
        for child in by_slot[slot].children:
            if colour.get(child) == 1:
                cycle = [*trail[trail.index(child) :], child]
                path = f"checks[{index_by_slot[child]}].children"
                raise ConfigError(
                    path,
                    list(by_slot[child].children),
                    f"form a cycle {' -> '.join(map(str, cycle))}",
                )
            if colour.get(child) is None:
                visit(child, [*trail, child])
        colour[slot] = 2

    for check in checks:
        if check.children and colour.get(check.slot) is None:
            visit(check.slot, [check.slot])


def _records(
    items: Sequence[Any],
    zones: tuple[str, ...],
    slots: set[int],
    by_name: Mapping[str, int],
    defaults: Defaults,
) -> tuple[Record, ...]:
    records: list[Record] = []
    seen: dict[tuple[str, RecordType], int] = {}
    types_at: dict[str, set[RecordType]] = {}
    for i, item in enumerate(items):
        path = f"records[{i}]"
        fields = Fields(as_mapping(item, path), path)
        record = _record(fields, zones, slots, by_name, defaults)
        key = (record.name, record.type)
        if key in seen:
            raise ConfigError(
                fields.path("name"),
                record.name,
                f"{record.type} already defined by records[{seen[key]}]",
            )
        present = types_at.setdefault(record.name, set())
        if RecordType.CNAME in present or (present and record.type is RecordType.CNAME):
            raise ConfigError(
                fields.path("type"),
                str(record.type),
                "CNAME cannot share a name with other records",
            )
        present.add(record.type)
        seen[key] = i
        records.append(record)
    return tuple(records)


def _record(
    fields: Fields,
    zones: tuple[str, ...],
    slots: set[int],
    by_name: Mapping[str, int],
    defaults: Defaults,
) -> Record:
    name = normalize_name(fields.string("name", None), fields.path("name"))
    if not any(in_zone(name, zone) for zone in zones):
        raise ConfigError(fields.path("name"), name, f"is outside every zone {list(zones)}")
    rtype = fields.choice("type", RecordType, RecordType.A)
    ttl = fields.integer("ttl", 60, low=0, high=MAX_TTL)
    policy = fields.choice("policy", Policy, Policy.SIMPLE)
    answer_items = fields.sequence("answers")
    if not answer_items:
        raise ConfigError(fields.path("answers"), [], "must hold at least one answer")
    answers = tuple(
        _answer(
            Fields(as_mapping(a, fields.path(f"answers[{j}]")), fields.path(f"answers[{j}]")),
            rtype,
            policy,
            slots,
            by_name,
        )
        for j, a in enumerate(answer_items)
    )
    min_healthy = levers.min_healthy(fields, "min_healthy", defaults.min_healthy, len(answers))
    when_all_down = levers.when_all_down(fields, defaults.when_all_down)
    degraded_ttl = levers.ttl_when_degraded(fields, defaults.ttl_when_degraded, ttl, MAX_TTL)
    fields.done()
    values = [a.value for a in answers]
    if len(set(values)) != len(values):
        raise ConfigError(fields.path("answers"), values, "repeat a value")
    if policy is Policy.FAILOVER:
        roles = [a.role for a in answers]
        if sorted(roles, key=str) != ["primary", "secondary"]:
            raise ConfigError(
                fields.path("answers"), roles, "failover needs one primary and one secondary"
            )
    if (
        rtype is RecordType.CNAME
        and policy in (Policy.SIMPLE, Policy.MULTIVALUE)
        and len(answers) > 1
    ):
        raise ConfigError(
            fields.path("answers"), values, "a CNAME answers one name: use weighted or failover"
        )
    _fits_one_message(fields.path("answers"), name, rtype, policy, answers)
    return Record(
        name=name,
        type=rtype,
        ttl=ttl,
        policy=policy,
        answers=answers,
        min_healthy=min_healthy,
        when_all_down=when_all_down,
        ttl_when_degraded=degraded_ttl,
    )


def _fits_one_message(
    path: str, name: str, rtype: RecordType, policy: Policy, answers: Sequence[Answer]
) -> None:
    """Refuse a record whose largest response cannot be one DNS message (65,535 bytes).

    Largest: header, the question (the name, type, class), the most answers its policy
    gives (simple: all; multivalue: the 8 largest, as `resolver.policy`; weighted and
    failover: one), each as `resolver.records` encodes it (owner 0xC00C, type, class,
    TTL, length: 12 bytes, then the data), and an OPT record.
    """

    def wire(text: str) -> int:  # wire form of an absolute name (text is never shorter)
        return 1 if text == "." else len(text.encode()) + 1

    sizes = sorted(
        (
            12
            + {RecordType.A: 4, RecordType.AAAA: 16}.get(rtype, 0)
            + (wire(a.value) if rtype is RecordType.CNAME else 0)
            + (1 + len(a.value.encode()) if rtype is RecordType.TXT else 0)
            for a in answers
        ),
        reverse=True,
    )
    given = {Policy.MULTIVALUE: 8, Policy.WEIGHTED: 1, Policy.FAILOVER: 1}.get(policy)
    size = 12 + wire(name) + 4 + sum(sizes[:given]) + 11
    if size > 65535:
        raise ConfigError(
            path,
            f"{len(answers)} {rtype} answers",
            f"make a response of up to {size:,} bytes, over the 65,535 a DNS message can "
            "hold: use fewer or shorter answers, or policy multivalue",
        )


def _answer(
    fields: Fields,
    rtype: RecordType,
    policy: Policy,
    slots: set[int],
    by_name: Mapping[str, int],
) -> Answer:
    value = fields.string("value", None)
    value = _record_value(value, rtype, fields.path("value"))
    check_ref = fields.raw.get("check")
    fields.seen.add("check")
    check: int | None = None
    if isinstance(check_ref, bool):
        raise ConfigError(fields.path("check"), check_ref, "must be a check slot or name")
    if isinstance(check_ref, int):
        if check_ref not in slots:
            raise ConfigError(fields.path("check"), check_ref, "is not the slot of any check")
        check = check_ref
    elif isinstance(check_ref, str):
        if check_ref not in by_name:
            raise ConfigError(fields.path("check"), check_ref, "is not the name of any check")
        check = by_name[check_ref]
    elif check_ref is not None:
        raise ConfigError(fields.path("check"), check_ref, "must be a check slot or name")
    weight = fields.integer("weight", 1, low=0, high=255)
    role: Role | None = None
    role_raw = fields.optional_string("role")
    if policy is Policy.FAILOVER:
        if role_raw not in ("primary", "secondary"):
            raise ConfigError(fields.path("role"), role_raw, "must be primary or secondary")
        role = "primary" if role_raw == "primary" else "secondary"
    elif role_raw is not None:
        raise ConfigError(fields.path("role"), role_raw, f"only applies to failover, not {policy}")
    fields.done()
    return Answer(value=value, check=check, weight=weight, role=role)


def _record_value(value: str, rtype: RecordType, path: str) -> str:
    if rtype is RecordType.A:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise ConfigError(path, value, "is not an IPv4 address") from None
    if rtype is RecordType.AAAA:
        try:
            return str(ipaddress.IPv6Address(value))
        except ValueError:
            raise ConfigError(path, value, "is not an IPv6 address") from None
    if rtype is RecordType.CNAME:
        return normalize_name(value, path)
    if len(value.encode()) > 255:
        raise ConfigError(path, value, "TXT strings are at most 255 bytes")
    return value


def _host(host: str, path: str) -> None:
    if not host or any(c in host for c in " /\r\n"):
        raise ConfigError(path, host, "is not a host name or address")


def _url(value: str, path: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(path, value, "is not an http(s) URL")
    try:
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ConfigError(path, value, "has an invalid port") from None
    return value.rstrip("/")
