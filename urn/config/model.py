"""The configuration document's shape: frozen dataclasses and enums, nothing else.

Owns: what a validated document holds (checks, records, answers, zones with their SOA,
NS and glue, intervals, quorum, TLS, key sources, sender allow-lists, and the operator
levers: zonal shifts, per-check overrides and inversion, per-record thresholds) and its
defaults, plus `in_zone`, the one name-in-zone relation.
Never: validates, parses or reads anything; every instance here is already valid
because `urn.config.validate` is the only code that builds one from a document.
Cost: nothing at run time beyond the objects themselves (slotted, immutable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "Answer",
    "Assignment",
    "Autoshift",
    "Check",
    "CheckType",
    "Defaults",
    "Document",
    "Forced",
    "Intervals",
    "KeySource",
    "MinHealthy",
    "OnStale",
    "Override",
    "Policy",
    "Quorum",
    "Record",
    "RecordType",
    "Role",
    "Senders",
    "Shift",
    "Soa",
    "Tls",
    "WhenAllDown",
    "Zone",
    "in_zone",
]


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


class OnStale(StrEnum):
    """What resolvers do once every aggregator has been silent past `max_table_age`."""

    HOLD = "hold"  # keep answering from the last good table, and say so
    OPEN = "open"  # treat every slot as unknown (healthy), as before static stability


class WhenAllDown(StrEnum):
    """What a record answers once none of its answers counts as healthy (docs/resolver.md)."""

    OPEN = "open"  # the policy runs as if every answer were healthy (Route 53's fail-open)
    CLOSED = "closed"  # NODATA: NOERROR, no answer, the zone's SOA in authority
    NXDOMAIN = "nxdomain"  # as if the name did not exist, with the zone's SOA
    SERVFAIL = "servfail"  # the resolver admits it cannot answer; clients try elsewhere


class Forced(StrEnum):
    """The status an override gives its check while it lasts."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


Role = Literal["primary", "secondary"]


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's word on one check (maintenance), always with an expiry.

    While `until` (Unix seconds, UTC) lies ahead of a resolver's wall clock the check
    counts as `status`, whatever the table says; after it, the override drops out by itself.
    """

    status: Forced
    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class Shift:
    """A zonal shift: answers guarded by checks in `az` count as unhealthy until `until`."""

    az: str
    until: float  # Unix seconds, UTC; judged by each resolver's clock at every refresh
    reason: str


@dataclass(frozen=True, slots=True)
class Autoshift:
    """The fleet shifts an AZ away by itself when most of its checks fail at once.

    Aggregators judge it every tick on their aggregated table (aggregator.autoshift): an
    AZ starts being shifted when at least `unhealthy_share` of its checks with a known
    status, and at least `min_checks` of them, are unhealthy while every other AZ is below
    `clear_share`; it stops once its own share has stayed below `clear_share` for
    `clear_after` seconds. Off unless the document has an `autoshift` section.
    """

    enabled: bool = False
    unhealthy_share: float = 0.5
    min_checks: int = 10
    clear_share: float = 0.25
    clear_after: float = 60.0


@dataclass(frozen=True, slots=True)
class MinHealthy:
    """Below `count` healthy answers, or below `percent` of them, a record answers all of
    them (ELB's unhealthy-state routing, Envoy's panic). Zero and zero: no threshold."""

    count: int = 0
    percent: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.count > 0 or self.percent > 0


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
    """Fleet-wide values a check or a record inherits unless it sets its own.

    One failed probe is enough for a checker's own verdict: the quorum across checkers,
    whose probes of a check are spread evenly over the interval, is what rides out a
    single bad probe, and it detects within a fraction of the interval (docs/verdicts.md).
    The record thresholds (`min_healthy`, `when_all_down`, `ttl_when_degraded`) default to
    today's behaviour: no panic threshold, fail open, one TTL.
    """

    failures: int = 1
    of_last: int = 1
    timeout: float = 1.0
    quorum: Quorum = Quorum()
    min_healthy: MinHealthy = MinHealthy()
    when_all_down: WhenAllDown = WhenAllDown.OPEN
    ttl_when_degraded: int | None = None


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a key (push or table tier) comes from: an environment variable or a file."""

    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True, slots=True)
class Senders:
    """Allow-lists of sender ids, each entry an id or an fnmatch pattern (`chk-*`).

    None: any id is accepted (resolvers log a warning for `aggregators`). Matched against
    the id inside the envelope, only once its MAC has been verified (urn.trust).
    """

    aggregators: tuple[str, ...] | None = None  # ids resolvers accept aggregated tables from
    checkers: tuple[str, ...] | None = None  # ids aggregators accept checker tables from


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
    # Resolver-side levers on the status answers read; not part of `target`, so setting
    # one never makes a table's health of this slot count as from another target.
    override: Override | None = None
    invert: bool = False  # Route 53: healthy counts as unhealthy and back; unknown stays

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
    # The fleet defaults are already applied: what this record does, not what it said.
    min_healthy: MinHealthy = MinHealthy()
    when_all_down: WhenAllDown = WhenAllDown.OPEN
    ttl_when_degraded: int | None = None  # at most `ttl`; None: the one TTL always


@dataclass(frozen=True, slots=True)
class Soa:
    """A zone's SOA record (RFC 1035 3.3.13); the defaults are what a bare zone name gets.

    NXDOMAIN and NODATA answers carry it in authority with TTL min(ttl, minimum) (RFC 2308).
    """

    mname: str  # primary nameserver: the first of `ns`, else ns.<zone>
    rname: str  # the mailbox, hostmaster.<zone> by default
    serial: int = 1  # the same on every pass and every replica (docs/resolver.md)
    refresh: int = 3600
    retry: int = 600
    expire: int = 86400
    minimum: int = 60
    ttl: int = 60


@dataclass(frozen=True, slots=True)
class Zone:
    """A zone urn answers for: a bare name, or a delegable zone with apex NS and glue.

    Without `ns` the apex has no NS records (a parent cannot delegate to it). `addresses`
    are the A/AAAA of the in-zone nameservers: glue for NS answers and their own records.
    """

    name: str  # lower case, absolute
    soa: Soa
    ns: tuple[str, ...] = ()
    addresses: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    ttl: int = 3600  # of the NS records and the nameservers' address records


@dataclass(frozen=True, slots=True)
class Document:
    capacity: int
    intervals: Intervals
    staleness: float
    skew: float
    max_table_age: float
    on_stale: OnStale
    zones: tuple[Zone, ...]
    aggregators: tuple[str, ...]
    resolvers: tuple[str, ...]
    defaults: Defaults
    assignment: Assignment
    push_key: KeySource  # signs checker tables (checker -> aggregator)
    previous_push_keys: tuple[KeySource, ...]
    table_key: KeySource | None  # signs aggregated tables; None: push_key does (urn.keys)
    previous_table_keys: tuple[KeySource, ...]
    senders: Senders
    tls: Tls
    checks: tuple[Check, ...]
    records: tuple[Record, ...]
    digest: bytes  # SHA-256 of the canonical document; travels in every table
    shifts: tuple[Shift, ...] = ()  # at most one per AZ; expired ones are inactive
    autoshift: Autoshift = Autoshift()

    @property
    def fail_open(self) -> bool:
        """The fleet default fails open (`fail_open: true`, the old spelling of
        `defaults.when_all_down: open`)."""
        return self.defaults.when_all_down is WhenAllDown.OPEN

    @property
    def zone_names(self) -> tuple[str, ...]:
        return tuple(zone.name for zone in self.zones)

    @property
    def checks_by_slot(self) -> Mapping[int, Check]:
        return {check.slot: check for check in self.checks}


def in_zone(name: str, zone: str) -> bool:
    """Whether the absolute name `name` is `zone` itself or lies under it."""
    return name == zone or name.endswith("." + zone)
