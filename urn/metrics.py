"""Every `urn_*` metric, declared once per component from a registry factory.

Owns: metric names, help texts and label sets; label values are pre-initialised at
construction so a dashboard shows zeros, not gaps.
Never: a per-slot label. Slot counts by status come from `TableCollector`, which reads
the current table when scraped, so hot paths do no per-slot metric work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from urn import __version__
from urn.errors import WIRE_ERRORS
from urn.table import FAILURE_REASONS, Reason, SlotArray, Status, reasons_of, statuses_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from urn.config import Document

__all__ = [
    "LEVER_ANSWERS",
    "LEVER_RECORD_STATES",
    "AggregatorMetrics",
    "AutoshiftCollector",
    "CheckerMetrics",
    "CommonMetrics",
    "LeverCollector",
    "LeverState",
    "ResolverMetrics",
    "TableCollector",
]

TICK_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
PROBE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
QUERY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
TABLE_RESULTS = ("accepted", *(e.reason for e in WIRE_ERRORS))
PUSH_RESULTS = ("ok", "timeout", "error", "rejected")
# What the operator levers did to answers (resolver.levers modes), and to records now.
LEVER_ANSWERS = (
    "shift_ignored",
    "panic",
    "all_down_closed",
    "all_down_nxdomain",
    "all_down_servfail",
)
LEVER_RECORD_STATES = (*LEVER_ANSWERS, "all_down_open", "degraded")


class _Declare:
    """Metric constructors bound to one registry: a declaration names only what it owns."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, labels, registry=self._registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, documentation, labels, registry=self._registry)

    def histogram(
        self, name: str, documentation: str, labels: Sequence[str] = (), *, buckets: Sequence[float]
    ) -> Histogram:
        return Histogram(name, documentation, labels, buckets=buckets, registry=self._registry)


class CommonMetrics:
    """What every process exports: config loads, pushes, tick cost, build."""

    component = "urn"

    def config_in_force(self, digest: bytes) -> None:
        """Label `urn_config_digest_info` with the digest now in force, and only it."""
        self.config_digest.clear()
        self.config_digest.labels(digest.hex()[:16]).set(1)

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        declare = _Declare(registry)
        info = declare.gauge(
            "urn_build_info", "Constant 1, labelled by version and role", ["version", "role"]
        )
        info.labels(__version__, self.component).set(1)
        self.config_loads = declare.counter(
            "urn_config_loads", "Config passes by result (ok, error)", ["result"]
        )
        for result in ("ok", "error"):
            self.config_loads.labels(result)
        self.config_last_ok = declare.gauge(
            "urn_config_last_success_timestamp_seconds",
            "Wall time of the last config pass that applied a good document",
        )
        self.config_digest = declare.gauge(
            "urn_config_digest_info",
            "Constant 1, labelled by the first 16 hex digits of the SHA-256 of the config"
            " document in force (the digest every table carries)",
            ["digest"],
        )
        self.pushes = declare.counter(
            "urn_pushes", "Table pushes by peer and result", ["peer", "result"]
        )
        self.push_bytes = declare.counter(
            "urn_push_bytes", "Bytes of tables pushed, by peer", ["peer"]
        )
        self.push_duration = declare.histogram(
            "urn_push_duration_seconds",
            "Time to push one table to one peer",
            ["peer"],
            buckets=PROBE_BUCKETS,
        )
        self.tick_cpu = declare.histogram(
            "urn_tick_cpu_seconds",
            "CPU seconds spent by one tick (checker: the process over a push interval;"
            " aggregator: the loop thread computing the table)",
            buckets=TICK_BUCKETS,
        )
        self.ticks_late = declare.counter(
            "urn_ticks_late", "Ticks that started after their deadline had passed"
        )
        self.ready = declare.gauge(
            "urn_ready", "1 while the process can do its job (/readyz answers 200), else 0"
        )
        self.certificate_reloads = declare.counter(
            "urn_tls_certificate_reloads",
            "Changed certificate and key files a TLS listener loaded (ok) or refused, by"
            " listener (https, dot)",
            ["listener", "result"],
        )

    def peers(self, urls: Iterable[str]) -> None:
        """Pre-initialise push labels for the configured peers."""
        for url in urls:
            self.push_bytes.labels(url)
            for result in PUSH_RESULTS:
                self.pushes.labels(url, result)


class _ReceivesTables(CommonMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        declare = _Declare(registry)
        self.tables_received = declare.counter(
            "urn_tables_received",
            "Tables received by sender and result (accepted or reason)",
            ["sender", "result"],
        )
        self.tables_rejected = declare.counter(
            "urn_tables_rejected", "Tables rejected, by reason", ["reason"]
        )
        for result in TABLE_RESULTS[1:]:
            self.tables_rejected.labels(result)

    def received(self, sender: str, result: str) -> None:
        self.tables_received.labels(sender, result).inc()
        if result != "accepted":
            self.tables_rejected.labels(result).inc()

    def forget_sender(self, sender: str) -> None:
        """Drop `sender`'s `urn_tables_received` series (it fell silent; see
        urn.http.TableReceiver), so series stay bounded while pods restart under new ids."""
        for result in TABLE_RESULTS:
            self.tables_received.remove(sender, result)  # a series never made: a no-op


class CheckerMetrics(CommonMetrics):
    component = "checker"

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        declare = _Declare(registry)
        self.probes = declare.counter(
            "urn_probes", "Probes by result (healthy or failure reason)", ["result"]
        )
        for reason in (Reason.HEALTHY, *FAILURE_REASONS, Reason.LOCAL):
            self.probes.labels(reason.label)
        self.local_errors = declare.counter(
            "urn_probe_local_errors",
            "Probes that failed on this checker's own side (EMFILE, ENOBUFS, its resolver):"
            " reported as no data, never as a target failure",
        )
        self.stale_slots = declare.gauge(
            "urn_stale_slots",
            "Assigned slots pushed as no data at the last push because no probe of theirs"
            " finished recently enough (skipped or stalled probes)",
        )
        self.probe_duration = declare.histogram(
            "urn_probe_duration_seconds", "Probe start to verdict", buckets=PROBE_BUCKETS
        )
        self.probe_lateness = declare.histogram(
            "urn_probe_lateness_seconds",
            "How late a probe started against its schedule",
            buckets=PROBE_BUCKETS,
        )
        self.checks_assigned = declare.gauge("urn_checks_assigned", "Checks this checker probes")
        self.concurrency_limit = declare.gauge(
            "urn_probe_concurrency_limit", "Most probes allowed in flight at once"
        )
        self.concurrency_needed = declare.gauge(
            "urn_probe_concurrency_needed",
            "In-flight probes the config can need (probes/s x timeout) when every target hangs",
        )
        self.fd_limit = declare.gauge(
            "urn_fd_limit", "Soft file-descriptor limit after raising it to the hard limit"
        )
        self.tables_pushed_bytes = declare.gauge(
            "urn_table_bytes", "Encoded size of one pushed table"
        )
        self.probes_skipped = declare.counter(
            "urn_probes_skipped",
            "Probes not started because this checker fell over one interval behind (never"
            " reported as target failures)",
        )
        self.probes_in_flight = declare.gauge(
            "urn_probes_in_flight", "Probes open at the last push tick"
        )


class AggregatorMetrics(_ReceivesTables):
    component = "aggregator"

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        declare = _Declare(registry)
        self.fresh_checkers = declare.gauge(
            "urn_fresh_checkers", "Checkers with at least one table within staleness"
        )
        self.fresh_azs = declare.gauge("urn_fresh_azs", "Distinct AZs among the fresh checkers")
        self.autoshifts = declare.counter(
            "urn_autoshifts", "Autoshifts this aggregator started, by AZ", ["az"]
        )


class ResolverMetrics(_ReceivesTables):
    component = "resolver"

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        declare = _Declare(registry)
        self.queries = declare.counter(
            "urn_queries", "Queries by transport, type and rcode", ["transport", "qtype", "rcode"]
        )
        self.query_duration = declare.histogram(
            "urn_query_duration_seconds",
            "Time to answer one query, by transport",
            ["transport"],
            buckets=QUERY_BUCKETS,
        )
        self.fail_open_answers = declare.counter(
            "urn_fail_open_answers", "Answers given as if healthy because every answer was down"
        )
        self.malformed = declare.counter(
            "urn_dns_malformed", "DNS messages refused before answering, by reason", ["reason"]
        )
        self.dns_tcp_closed = declare.counter(  # labels touched by resolver.dnsserver
            "urn_dns_tcp_closed", "DNS/TCP connections the resolver closed, by reason", ["reason"]
        )
        self.table_held = declare.gauge(
            "urn_table_held",
            "1 while no aggregator's table is fresh and the last good one still answers",
        )
        self.lever_answers = declare.counter(
            "urn_lever_answers",
            "Answers an operator lever shaped: a shift ignored so as not to empty a name, "
            "min_healthy panic, or an all-down answer other than open",
            ["lever"],
        )
        for lever in LEVER_ANSWERS:
            self.lever_answers.labels(lever)


@dataclass(frozen=True, slots=True)
class SlotAzs:
    """Each slot's AZ, for counting a table by AZ: names, and per slot an index into them
    (NO_AZ for slots without a check or a check without an AZ). Built once per config."""

    names: tuple[str, ...]
    index: SlotArray

    NO_AZ = 255

    @classmethod
    def of(cls, document: Document) -> SlotAzs:
        names = tuple(sorted({c.az for c in document.checks if c.az is not None}))[: cls.NO_AZ]
        position = {name: i for i, name in enumerate(names)}
        index = np.full(document.capacity, cls.NO_AZ, dtype=np.uint8)
        for check in document.checks:
            if check.az in position:
                index[check.slot] = position[check.az]
        return cls(names, index)


class TableCollector(Collector):
    """Slot counts by status, by reason and by AZ, and table age, computed when scraped."""

    def __init__(
        self,
        table: Callable[[], SlotArray | None],
        age: Callable[[], float | None],
        configured: Callable[[], SlotArray | None] = lambda: None,
        azs: Callable[[], SlotAzs | None] = lambda: None,
    ) -> None:
        self._table = table
        self._age = age
        self._configured = configured
        self._azs = azs

    def collect(self) -> Iterator[Metric]:
        table = self._table()
        by_status = GaugeMetricFamily(
            "urn_slots", "Configured slots by aggregated status", labels=["status"]
        )
        by_reason = GaugeMetricFamily(
            "urn_unhealthy_slots", "Unhealthy slots by dominant reason", labels=["reason"]
        )
        if table is not None:
            mask = self._configured()
            statuses = statuses_of(table)
            reasons = reasons_of(table)
            if mask is not None:
                statuses = statuses[mask.astype(bool)]
                reasons = reasons[mask.astype(bool)]
            counts = np.bincount(statuses, minlength=4)
            for status in Status:
                by_status.add_metric([status.label], float(counts[status]))
            unhealthy = reasons[statuses == Status.UNHEALTHY]
            reason_counts = np.bincount(unhealthy, minlength=64)
            for reason in FAILURE_REASONS:
                by_reason.add_metric([reason.label], float(reason_counts[reason]))
        yield by_status
        yield by_reason
        by_az = GaugeMetricFamily(
            "urn_az_slots",
            "Slots of checks in each AZ by aggregated status",
            labels=["az", "status"],
        )
        azs = self._azs()
        if table is not None and azs is not None and azs.names:
            width = len(azs.names) + 1  # the last row: slots outside every AZ
            index = np.minimum(azs.index, len(azs.names)).astype(np.intp)
            cells = np.bincount(index * 4 + statuses_of(table), minlength=width * 4)
            for i, name in enumerate(azs.names):
                for status in Status:
                    by_az.add_metric([name, status.label], float(cells[i * 4 + status]))
        yield by_az
        age = self._age()
        age_family = GaugeMetricFamily(
            "urn_table_age_seconds", "Age of the newest table in use (NaN before the first)"
        )
        age_family.add_metric([], float("nan") if age is None else age)
        yield age_family


class AutoshiftCollector(Collector):
    """An aggregator's autoshift, when scraped: the AZ shifted, every AZ's unhealthy share.

    `facts` gives the AZ autoshifted now (None: none) and the unhealthy share of each AZ's
    known checks at the last tick (empty with autoshift off)."""

    def __init__(self, facts: Callable[[], tuple[str | None, Mapping[str, float]]]) -> None:
        self._facts = facts

    def collect(self) -> Iterator[Metric]:
        active, shares = self._facts()
        on = GaugeMetricFamily(
            "urn_autoshift_active", "1 while the AZ is autoshifted away", labels=["az"]
        )
        share = GaugeMetricFamily(
            "urn_autoshift_unhealthy_share",
            "Share of the AZ's checks with a known status that are unhealthy, last tick",
            labels=["az"],
        )
        for az, value in sorted(shares.items()):
            on.add_metric([az], 1.0 if az == active else 0.0)
            share.add_metric([az], value)
        yield on
        yield share


@dataclass(frozen=True, slots=True)
class LeverState:
    """The operator levers in force at a resolver's last refresh, for `LeverCollector`."""

    records: Mapping[str, int]  # by LEVER_RECORD_STATES
    shifted: Mapping[str, bool]  # every AZ of a check: shifted now or not
    autoshifted: Mapping[str, bool]  # every AZ of a check: autoshifted and applied, or not
    overrides: Mapping[str, int]  # active overrides by status (healthy, unhealthy)
    inverted: int  # checks with invert: true


class LeverCollector(Collector):
    """Records by lever state, AZs shifted, checks overridden or inverted, when scraped."""

    def __init__(self, state: Callable[[], LeverState | None]) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        records = GaugeMetricFamily(
            "urn_lever_records",
            "Records (and zone entries) in each lever state at the last refresh",
            labels=["state"],
        )
        shifted = GaugeMetricFamily(
            "urn_zonal_shift_active", "1 while the AZ is shifted away", labels=["az"]
        )
        autoshifted = GaugeMetricFamily(
            "urn_autoshift_active",
            "1 while the AZ is autoshifted away (set aside while an operator's shift is in force)",
            labels=["az"],
        )
        overrides = GaugeMetricFamily(
            "urn_check_overrides", "Checks whose override is in force, by status", labels=["status"]
        )
        inverted = GaugeMetricFamily("urn_checks_inverted", "Checks with invert: true")
        if state is not None:
            for name in LEVER_RECORD_STATES:
                records.add_metric([name], float(state.records.get(name, 0)))
            for az, on in sorted(state.shifted.items()):
                shifted.add_metric([az], 1.0 if on else 0.0)
            for az, on in sorted(state.autoshifted.items()):
                autoshifted.add_metric([az], 1.0 if on else 0.0)
            for status in ("healthy", "unhealthy"):
                overrides.add_metric([status], float(state.overrides.get(status, 0)))
            inverted.add_metric([], float(state.inverted))
        yield records
        yield shifted
        yield autoshifted
        yield overrides
        yield inverted
