"""The configuration document: parsed and validated whole, into frozen dataclasses.

Owns: every rule about what a valid document is, and the field path of every error
(`checks[3].slot: 12000 is outside capacity 10000`).
Never: reads files, URLs, environment variables or clocks; `urn.source` does the
fetching, and key material is resolved by the services.
Cost: O(size of document); runs once per config pass, never on a hot path.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml

from urn.errors import BadName, ConfigError
from urn.names import canonical_name
from urn.table import HISTORY_BITS

__all__ = [
    "Answer",
    "Assignment",
    "Check",
    "CheckType",
    "Defaults",
    "Document",
    "Intervals",
    "KeySource",
    "Policy",
    "Quorum",
    "Record",
    "RecordType",
    "Tls",
    "normalize_name",
    "parse_document",
    "parse_text",
]

T = TypeVar("T")


class CheckType(StrEnum):
    HTTP = "http"
    HTTPS = "https"
    TCP = "tcp"
    CALCULATED = "calculated"


class Policy(StrEnum):
    SIMPLE = "simple"
    MULTIVALUE = "multivalue"
    WEIGHTED = "weighted"
    FAILOVER = "failover"


class RecordType(StrEnum):
    A = "A"
    AAAA = "AAAA"
    CNAME = "CNAME"
    TXT = "TXT"


Role = Literal["primary", "secondary"]


@dataclass(frozen=True, slots=True)
class Intervals:
    probe: float = 1.0
    push: float = 1.0
    config: float = 5.0
    # Checkers push on the wall-clock instants k * push; aggregators tick this long
    # after each, once that round's tables have arrived.
    aggregate_lag: float = 0.1


@dataclass(frozen=True, slots=True)
class Quorum:
    """How the fresh checkers' verdicts on a slot become the fleet's (docs/verdicts.md).

    Unhealthy when at least `unhealthy_at` of the checkers with a verdict judge it
    unhealthy, with at least `min_checkers` verdicts (fewer: unknown) and, with
    `cross_az`, never on one AZ's word while another AZ's checkers judge it healthy.
    Route 53's "healthy while more than 18 % of checkers say healthy" is 0.82.
    """

    unhealthy_at: float = 0.51  # a strict majority
    min_checkers: int = 1
    cross_az: bool = True


@dataclass(frozen=True, slots=True)
class Defaults:
    """Fleet-wide values a check inherits unless it sets its own.

    One failed probe is enough for a checker's own verdict: the quorum across checkers,
    whose probes of a check are spread evenly over the interval, is what rides out a
    single bad probe, and it detects within a fraction of the interval (docs/verdicts.md).
    """

    failures: int = 1
    of_last: int = 1
    timeout: float = 1.0
    quorum: Quorum = Quorum()


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a push key comes from: an environment variable or a file."""

    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True, slots=True)
class Tls:
    """Certificate paths for HTTPS listeners and for pushing over HTTPS."""

    cert: str | None = None  # serve HTTPS with this chain ...
    key: str | None = None  # ... and this key
    ca: str | None = None  # verify peers (pushed-to servers, or client certs) against this
    client_cert: str | None = None  # present this when pushing (mTLS)
    client_key: str | None = None
    require_client_cert: bool = False  # listeners demand a client certificate signed by `ca`

    @property
    def serves_https(self) -> bool:
        return self.cert is not None


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which checkers probe which checks: all of them, or k by shuffle sharding."""

    shuffle_shard: int | None = None
    checkers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    slot: int
    name: str
    type: CheckType
    failures: int
    of_last: int
    timeout: float
    quorum: Quorum = Quorum()
    host: str = ""
    port: int = 0
    path: str = "/"
    search: str | None = None
    verify_tls: bool = False
    az: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    children: tuple[int, ...] = ()
    healthy_if_at_least: int = 1

    @property
    def is_probed(self) -> bool:
        return self.type is not CheckType.CALCULATED

    @property
    def target(self) -> tuple[object, ...]:
        """What is probed: when this changes, the slot's old health means nothing."""
        return (
            self.type,
            self.host,
            self.port,
            self.path,
            self.search,
            self.verify_tls,
            self.children,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    value: str
    check: int | None = None  # slot of the check guarding this answer; None: always healthy
    weight: int = 1
    role: Role | None = None


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # lower case, absolute (trailing dot)
    type: RecordType
    ttl: int
    policy: Policy
    answers: tuple[Answer, ...]


@dataclass(frozen=True, slots=True)
class Document:
    capacity: int
    intervals: Intervals
    staleness: float
    skew: float
    fail_open: bool
    max_table_age: float
    zones: tuple[str, ...]
    aggregators: tuple[str, ...]
    resolvers: tuple[str, ...]
    defaults: Defaults
    assignment: Assignment
    push_key: KeySource
    previous_push_keys: tuple[KeySource, ...]
    tls: Tls
    checks: tuple[Check, ...]
    records: tuple[Record, ...]
    digest: bytes  # SHA-256 of the canonical document; travels in every table

    @property
    def checks_by_slot(self) -> Mapping[int, Check]:
        return {check.slot: check for check in self.checks}


def parse_text(text: str | bytes, origin: str = "config") -> Document:
    """Parse a YAML or JSON document and validate it.

    A JSON document takes the C JSON parser (a 10,000-check document in tens of ms);
    anything else takes libyaml when present. A key repeated in one mapping is an error
    in both, never a silent last-wins.
    """
    try:
        raw = _load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            "", origin, f"{origin} is not valid YAML/JSON{where}: {problem}"
        ) from None
    except _JsonDuplicateKey as exc:
        raise ConfigError("", origin, f"{origin} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError("", origin, f"{origin} is nested too deeply") from None
    if not isinstance(raw, Mapping):
        raise ConfigError("", origin, f"{origin} must hold a mapping at the top level")
    return parse_document(raw)


class _JsonDuplicateKey(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonDuplicateKey(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


_YamlBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_YamlBase):  # type: ignore[valid-type,misc]
    """Safe YAML loading (libyaml when built in) that refuses a key repeated in a mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable: the base class reports it with its mark
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _load(text: str | bytes) -> Any:
    stripped = text.lstrip()
    if stripped[:1] in ("{", b"{"):
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except _JsonDuplicateKey:
            raise
        except ValueError:
            pass  # not JSON after all (YAML flow style starts with "{" too): YAML judges it
    return yaml.load(text, Loader=_UniqueKeyLoader)


def parse_document(raw: Mapping[str, Any]) -> Document:
    """Validate a parsed document; raise ConfigError naming the first bad field."""
    top = _Fields(raw, "")
    capacity = top.integer("capacity", 10_000, low=1, high=1_000_000)
    intervals = _intervals(top.mapping("intervals"))
    defaults = _defaults(top.mapping("defaults"), top.mapping("quorum"))
    staleness = top.number("staleness", max(5.0, 3 * intervals.push), low=0.001)
    skew = top.number("skew", 30.0, low=0.0)
    fail_open = top.boolean("fail_open", True)
    max_table_age = top.number("max_table_age", max(30.0, 10 * intervals.push), low=0.001)
    zones = tuple(normalize_name(z, f"zones[{i}]") for i, z in enumerate(top.strings("zones", ())))
    _unique(zones, "zones")
    aggregators = tuple(
        _url(u, f"aggregators[{i}]") for i, u in enumerate(top.strings("aggregators", ()))
    )
    resolvers = tuple(
        _url(u, f"resolvers[{i}]") for i, u in enumerate(top.strings("resolvers", ()))
    )
    assignment = _assignment(top.mapping("assignment"))
    push_key = _key_source(top.mapping("push_key", {"env": "URN_PUSH_KEY"}), "push_key")
    previous = tuple(
        _key_source(
            _Fields(_as_mapping(item, f"previous_push_keys[{i}]"), f"previous_push_keys[{i}]"),
            f"previous_push_keys[{i}]",
        )
        for i, item in enumerate(top.sequence("previous_push_keys"))
    )
    tls = _tls(top.mapping("tls"))
    checks = _checks(top.sequence("checks"), capacity, defaults)
    by_name = {c.name: c.slot for c in checks}
    slots = {c.slot for c in checks}
    records = _records(top.sequence("records"), zones, slots, by_name)
    top.done()
    return Document(
        capacity=capacity,
        intervals=intervals,
        staleness=staleness,
        skew=skew,
        fail_open=fail_open,
        max_table_age=max_table_age,
        zones=zones,
        aggregators=aggregators,
        resolvers=resolvers,
        defaults=defaults,
        assignment=assignment,
        push_key=push_key,
        previous_push_keys=previous,
        tls=tls,
        checks=checks,
        records=records,
        digest=_digest(raw),
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


def in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


# --- sections ------------------------------------------------------------------------


def _intervals(fields: _Fields) -> Intervals:
    probe = fields.number("probe", 1.0, low=0.01)
    push = fields.number("push", 1.0, low=0.01)
    config = fields.number("config", 5.0, low=0.05)
    lag = fields.number("aggregate_lag", round(0.1 * push, 6), low=0.0)
    if lag >= push:
        raise ConfigError(fields.path("aggregate_lag"), lag, f"must be shorter than push {push:g}")
    fields.done()
    return Intervals(probe=probe, push=push, config=config, aggregate_lag=lag)


def _defaults(fields: _Fields, quorum: _Fields) -> Defaults:
    base = Defaults()
    failures = fields.integer("failures", base.failures, low=1, high=HISTORY_BITS)
    of_last = fields.integer("of_last", max(base.of_last, failures), low=1, high=HISTORY_BITS)
    if failures > of_last:
        raise ConfigError(fields.path("failures"), failures, f"exceeds of_last {of_last}")
    timeout = fields.number("timeout", base.timeout, low=0.001)
    fields.done()
    return Defaults(
        failures=failures, of_last=of_last, timeout=timeout, quorum=_quorum(quorum, base.quorum)
    )


def _quorum(fields: _Fields, base: Quorum) -> Quorum:
    unhealthy_at = fields.number("unhealthy_at", base.unhealthy_at, low=0.0, high=1.0)
    if unhealthy_at <= 0:
        raise ConfigError(
            fields.path("unhealthy_at"), unhealthy_at, "must be above 0 (0 would call all down)"
        )
    min_checkers = fields.integer("min_checkers", base.min_checkers, low=1, high=0xFFFF)
    cross_az = fields.boolean("cross_az", base.cross_az)
    fields.done()
    return Quorum(unhealthy_at=unhealthy_at, min_checkers=min_checkers, cross_az=cross_az)


def _assignment(fields: _Fields) -> Assignment:
    shard = fields.optional_integer("shuffle_shard", low=1)
    checkers = tuple(fields.strings("checkers", ()))
    _unique(checkers, fields.path("checkers"))
    if shard is not None and shard > len(checkers):
        raise ConfigError(
            fields.path("shuffle_shard"),
            shard,
            f"needs at least that many checkers listed in assignment.checkers ({len(checkers)})",
        )
    fields.done()
    return Assignment(shuffle_shard=shard, checkers=checkers)


def _key_source(fields: _Fields, path: str) -> KeySource:
    env = fields.optional_string("env")
    file = fields.optional_string("file")
    if (env is None) == (file is None):
        raise ConfigError(path, dict(fields.raw), "needs exactly one of env or file")
    fields.done()
    return KeySource(env=env, file=file)


def _tls(fields: _Fields) -> Tls:
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


def _checks(items: Sequence[Any], capacity: int, defaults: Defaults) -> tuple[Check, ...]:
    checks: list[Check] = []
    seen_slots: dict[int, int] = {}
    seen_names: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"checks[{i}]"
        fields = _Fields(_as_mapping(item, path), path)
        check = _check(fields, capacity, defaults)
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


def _check(fields: _Fields, capacity: int, defaults: Defaults) -> Check:
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
    }
    if kind is CheckType.CALCULATED:
        children = tuple(fields.integers("children"))
        if not children:
            raise ConfigError(fields.path("children"), [], "must name at least one child slot")
        _unique(children, fields.path("children"))
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
    items: Sequence[Any], zones: tuple[str, ...], slots: set[int], by_name: Mapping[str, int]
) -> tuple[Record, ...]:
    records: list[Record] = []
    seen: dict[tuple[str, RecordType], int] = {}
    types_at: dict[str, set[RecordType]] = {}
    for i, item in enumerate(items):
        path = f"records[{i}]"
        fields = _Fields(_as_mapping(item, path), path)
        record = _record(fields, zones, slots, by_name)
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
    fields: _Fields, zones: tuple[str, ...], slots: set[int], by_name: Mapping[str, int]
) -> Record:
    name = normalize_name(fields.string("name", None), fields.path("name"))
    if not any(in_zone(name, zone) for zone in zones):
        raise ConfigError(fields.path("name"), name, f"is outside every zone {list(zones)}")
    rtype = fields.choice("type", RecordType, RecordType.A)
    ttl = fields.integer("ttl", 60, low=0, high=2**31 - 1)
    policy = fields.choice("policy", Policy, Policy.SIMPLE)
    answer_items = fields.sequence("answers")
    if not answer_items:
        raise ConfigError(fields.path("answers"), [], "must hold at least one answer")
    answers = tuple(
        _answer(
            _Fields(_as_mapping(a, fields.path(f"answers[{j}]")), fields.path(f"answers[{j}]")),
            rtype,
            policy,
            slots,
            by_name,
        )
        for j, a in enumerate(answer_items)
    )
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
    return Record(name=name, type=rtype, ttl=ttl, policy=policy, answers=answers)


def _answer(
    fields: _Fields,
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


def _unique(values: Sequence[object], path: str) -> None:
    seen: set[object] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ConfigError(f"{path}[{i}]", value, "is a duplicate")
        seen.add(value)


def _digest(raw: Mapping[str, Any]) -> bytes:
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()


def _as_mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, value, "must be a mapping")
    return value


# --- field reader --------------------------------------------------------------------

_MISSING = object()


class _Fields:
    """Typed reads from one mapping, each error carrying its full field path.

    `done()` rejects fields nobody read, so a misspelt key is an error, not a silent default.
    """

    def __init__(self, raw: Mapping[str, Any], prefix: str) -> None:
        self.raw = raw
        self.prefix = prefix
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        if key.startswith("["):
            return f"{self.prefix}{key}"
        return f"{self.prefix}.{key}" if self.prefix else key

    def _get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        value = self.raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is None:
                raise ConfigError(self.path(key), None, "is required")
            return default
        return value

    def integer(
        self, key: str, default: int | None, low: int | None = None, high: int | None = None
    ) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.path(key), value, "must be an integer")
        _bounds(self.path(key), value, low, high)
        return value

    def optional_integer(self, key: str, low: int | None = None) -> int | None:
        if self.raw.get(key) is None:
            self.seen.add(key)
            return None
        return self.integer(key, 0, low=low)

    def number(
        self, key: str, default: float | None, low: float | None = None, high: float | None = None
    ) -> float:
        value = self._get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(self.path(key), value, "must be a number")
        _bounds(self.path(key), value, low, high)
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        self.seen.add(key)
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(self.path(key), value, "must be true or false")
        return value

    def string(self, key: str, default: str | None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise ConfigError(self.path(key), value, "must be a string")
        return value

    def optional_string(self, key: str) -> str | None:
        self.seen.add(key)
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(self.path(key), value, "must be a string")
        return value

    def choice(self, key: str, enum: Callable[[str], T], default: T | None) -> T:
        value = self._get(key, default)
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(str(m) for m in enum)  # type: ignore[attr-defined]
            raise ConfigError(self.path(key), value, f"must be one of {allowed}") from None

    def mapping(self, key: str, default: Mapping[str, Any] | None = None) -> _Fields:
        self.seen.add(key)
        value = self.raw.get(key)
        if value is None:
            value = default if default is not None else {}
        return _Fields(_as_mapping(value, self.path(key)), self.path(key))

    def sequence(self, key: str) -> Sequence[Any]:
        self.seen.add(key)
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ConfigError(self.path(key), value, "must be a list")
        return value

    def strings(self, key: str, default: Sequence[str]) -> Iterator[str]:
        items = self.sequence(key) or default
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ConfigError(self.path(f"{key}[{i}]"), item, "must be a string")
            yield item

    def integers(self, key: str) -> Iterator[int]:
        for i, item in enumerate(self.sequence(key)):
            if isinstance(item, bool) or not isinstance(item, int):
                raise ConfigError(self.path(f"{key}[{i}]"), item, "must be an integer")
            yield item

    def consume_all(self) -> None:
        self.seen.update(self.raw)

    def done(self) -> None:
        for key in self.raw:
            if key not in self.seen:
                raise ConfigError(self.path(str(key)), self.raw[key], "is not a known field")


def _bounds(path: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise ConfigError(path, value, f"must be at least {low}")
    if high is not None and value > high:
        raise ConfigError(path, value, f"must be at most {high}")
