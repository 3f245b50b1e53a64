"""The resolver service: the compiled records, each aggregator's newest table, the listeners.

Wiring only: each config pass compiles the records whole into a `ResolverPlan`; pushed
tables arrive through `urn.http.TableReceiver` (kind AGGREGATE, the same checks as the
aggregator's receiver) and each aggregator's newest is kept, stamped with when it
arrived. Every `refresh_interval`, and on every delivery, `resolver.health.choose`
picks the table queries answer from and `judge` says how it stands (fresh, held past
`max_table_age`, stale, none yet); /readyz, /healthz, metrics, explain and JSON
answers say so. Every refresh also judges the operator levers (shifts, overrides,
thresholds) against the wall clock, so an expired one drops out with no config pass
(`resolver.levers.decide`). Decisions per query live in `answer.Responder`.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np

from resolver.answer import NO_QUESTION, Responder, down_view, explain, unknown_view, up_view
from resolver.dnsmsg import RCODES
from resolver.dnsserver import DnsServer
from resolver.health import FRESH, HELD, NO_TABLE, HealthView, ReceivedTable, choose, judge
from resolver.levers import MODE_LEVERS, SlotLevers, census, decide
from resolver.records import QTYPES, compile_records, qtype_label
from resolver.status import ResolverStatus
from urn.drift import DriftMap
from urn.errors import StartupError
from urn.http import TableReceiver, client_ssl_context
from urn.logs import get_logger
from urn.metrics import LeverCollector, LeverState, SlotAzs, TableCollector
from urn.runtime import cancel_and_wait
from urn.ticker import run_every
from urn.tlsfiles import REFRESH_RESULTS, RotatingContext
from urn.trust import receive_policy
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from resolver.health import HealthSource, State
    from resolver.records import Compiled
    from resolver.settings import ResolverSettings
    from urn.config import Document
    from urn.metrics import ResolverMetrics
    from urn.role import Wiring
    from urn.source import Loaded
    from urn.table import SlotArray
    from urn.wire import Envelope

__all__ = ["TRANSPORTS", "ResolverPlan", "ResolverService", "compile_plan"]

EXPLAIN_TIMEOUT = 1.0  # seconds an explanation waits for an aggregator's per-checker view

log = get_logger("resolver")
TRANSPORTS = ("udp", "tcp", "dot", "doh", "json")
MALFORMED_REASONS = (
    "short_header",
    "response",
    "opcode",
    "qdcount",
    "sections",
    "additional",
    "overrun",
    "label",
    "pointer",
    "name_length",
    "trailing",
    "opt",
    "edns_version",
    "internal_error",
)
# What a JSON answer adds while no fresh table answers it (resolver.health states).
JSON_NOTES: dict[State, str] = {
    FRESH: "",
    HELD: ',"table":"held"',
    "stale": ',"table":"stale"',
    NO_TABLE: ',"table":"none"',
}


@dataclass(frozen=True, slots=True)
class ResolverPlan:
    """One config pass, compiled whole: what queries answer from until the next pass."""

    loaded: Loaded
    compiled: Compiled
    configured: SlotArray  # 1 where a check owns the slot, for the slot-count metric
    azs: SlotAzs  # each slot's AZ, for the per-AZ slot metric
    levers: SlotLevers  # the document's shifts, overrides and inversions, per slot

    @property
    def document(self) -> Document:
        return self.loaded.document


async def compile_plan(
    loaded: Loaded, rng: random.Random, previous: Compiled | None
) -> ResolverPlan:
    """The plan for `loaded`, its records compiled in a worker thread.

    Compiling 10,000 answers takes tens of ms of CPU; in a worker thread the loop keeps
    answering meanwhile (it gets the GIL back every switch interval), so a config pass
    costs queries a few ms of latency instead of a stall.
    """
    document = loaded.document
    own = random.Random(rng.getrandbits(64))  # the thread draws from its own

    def build() -> tuple[Compiled, SlotLevers]:
        return compile_records(document, own, previous), SlotLevers.of(document)

    compiled, levers = await asyncio.to_thread(build)
    configured = np.zeros(document.capacity, dtype=np.uint8)
    configured[[check.slot for check in document.checks]] = 1
    return ResolverPlan(loaded, compiled, configured, SlotAzs.of(document), levers)


class ResolverService:
    """The plan in force, every aggregator's newest table and the Responder; runs the
    DNS listeners. Built from the first good config's plan (`build`)."""

    def __init__(
        self,
        settings: ResolverSettings,
        plan: ResolverPlan,
        wiring: Wiring[ResolverMetrics],
        *,
        rng: random.Random,
        source: Callable[[ResolverService], HealthSource] | None = None,
    ) -> None:
        """`source` builds the health source answers read (default: the held tables)."""
        self.settings = settings
        self.clock = wiring.clock
        self.metrics = wiring.metrics
        self.registry = wiring.metrics.registry
        self.loader = wiring.loader
        self.rng = rng
        self.plan = plan
        document = plan.document
        self.responder = Responder(plan.compiled, rng)
        self.drift = DriftMap()
        self.drift.apply(document)
        self.tables: dict[str, ReceivedTable] = {}  # each aggregator's newest, while fresh
        self.answering: ReceivedTable | None = None  # the table queries read, once one came
        self.view = HealthView(NO_TABLE, unknown_view(document.capacity))
        self.table_as_read: SlotArray | None = None  # `answering`, changed slots unknown
        self.receiver = TableReceiver(
            policy=receive_policy(document, plan.loaded.keys, TableKind.AGGREGATE),
            clock=self.clock,
            metrics=self.metrics,
            deliver=self.deliver,
        )
        self.tallies: dict[str, dict[tuple[int, int], int]] = {t: {} for t in TRANSPORTS}
        duration = self.metrics.query_duration
        self.dns = DnsServer(
            self.responder,
            udp_tally=self.tallies["udp"],
            tcp_tally=self.tallies["tcp"],
            observe_udp=duration.labels("udp").observe,
            observe_tcp=duration.labels("tcp").observe,
            dot_tally=self.tallies["dot"],
            observe_dot=duration.labels("dot").observe,
            latency_sample=settings.latency_sample,
            limits=settings.tcp_limits,
            tcp_closed=self.metrics.dns_tcp_closed,
        )
        self.dot_tls: RotatingContext | None = None  # while DNS over TLS is served
        self._fail_open_flushed = 0
        self._modes_flushed = [0] * len(MODE_LEVERS)
        self.queries_total = 0  # every query the tallies counted, once flushed
        self.status = ResolverStatus(self)  # /v1/status: rebuilt once per push interval
        self._malformed_flushed: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._cpu_mark = time.process_time()
        self.source: HealthSource = self if source is None else source(self)
        self._init_labels()
        self.metrics.ready.set_function(lambda: float(self.ready()[0]))
        self.registry.register(
            TableCollector(
                table=lambda: self.table_as_read,
                age=self.table_age,
                configured=lambda: self.plan.configured,
                azs=lambda: self.plan.azs,
            )
        )
        self.registry.register(LeverCollector(self.lever_state))
        self.refresh()

    @classmethod
    async def build(
        cls,
        settings: ResolverSettings,
        first: Loaded,
        wiring: Wiring[ResolverMetrics],
        *,
        rng: random.Random,
        source: Callable[[ResolverService], HealthSource] | None = None,
    ) -> ResolverService:
        """The service for the first good config: its records compiled off the loop."""
        plan = await compile_plan(first, rng, None)
        return cls(settings, plan, wiring, rng=rng, source=source)

    @property
    def document(self) -> Document:
        return self.plan.document

    @property
    def state(self) -> State:
        return self.view.state

    # --- config and tables ---------------------------------------------------------

    async def apply(self, loaded: Loaded) -> None:
        """One config pass: recompile every record and zone, whole, then swap it in
        (unless the bytes are the ones already compiled)."""
        self.receiver.apply(receive_policy(loaded.document, loaded.keys, TableKind.AGGREGATE))
        if loaded.document is self.plan.document:
            # Identical bytes: the loader hands back the very Document it validated last
            # pass, so the records in force are already its compilation, and compiling
            # again would spend, every pass, CPU that comes out of query latency.
            self.plan = replace(self.plan, loaded=loaded)
            self.refresh()
            return
        plan = await compile_plan(loaded, self.rng, self.plan.compiled)
        self.drift.apply(plan.document)
        self.plan = plan
        self.refresh()  # installs the new records with their own lever decision

    def deliver(self, envelope: Envelope) -> None:
        """An accepted table: its sender's newest (the receiver refuses older ones)."""
        self.tables[envelope.sender] = ReceivedTable(
            sender=envelope.sender,
            az=envelope.az,
            sequence=envelope.sequence,
            generated_at=envelope.generated_at,
            received_at=self.clock.monotonic(),
            checkers=envelope.checkers,
            azs=envelope.azs,
            autoshift=envelope.autoshift,
            digest=envelope.config_digest,
            slots=envelope.slots,
            array=np.frombuffer(envelope.slots, dtype=np.uint8),
        )
        self.refresh()

    def table_age(self) -> float | None:
        """Seconds since the table queries read arrived (None: none has)."""
        table = self.answering
        return None if table is None else self.clock.monotonic() - table.received_at

    def current(self, document: Document, now: float) -> HealthView:
        """The held tables as a HealthSource (resolver.health: choose, then judge)."""
        max_age = document.max_table_age
        for sender in [s for s, t in self.tables.items() if now - t.received_at > max_age]:
            del self.tables[sender]  # forgotten: only `answering` may outlive max_table_age
        incumbent = None if self.answering is None else self.answering.sender
        chosen = choose(self.tables.values(), now, max_age, document.intervals.push, incumbent)
        if chosen is not None:
            self.answering = chosen
        table = self.answering
        state = judge(chosen is not None, table is not None, document.on_stale)
        detail = {
            "age": None if table is None else round(now - table.received_at, 3),
            "aggregator": None if table is None else table.sender,
        }
        if table is None or state not in (FRESH, HELD):
            self.table_as_read = None
            return HealthView(state, unknown_view(document.capacity), detail)
        changed = self.drift.changed(table.digest)
        self.table_as_read = table.array if changed is None else np.where(changed, 0, table.array)
        return HealthView(
            state,
            down_view(table.array, changed),
            detail,
            up_view(table.array, changed),
            autoshifted=(table.autoshift,) if table.autoshift else (),
        )

    def refresh(self) -> None:
        """Ask the health source for the view queries read, judge the levers on it at the
        wall clock's now, and install the result with the records it was made for."""
        was = self.view.state
        was_shifted = self.responder.decision.shifted_azs
        view = self.source.current(self.document, self.clock.monotonic())
        plan = self.plan
        autoshifted = plan.levers.az_mask(view.autoshifted) if view.autoshifted else None
        decision = decide(
            plan.compiled.levers, plan.levers, view.down, view.up, self.clock.time(), autoshifted
        )
        self.responder.install(plan.compiled, decision)
        self.responder.note = JSON_NOTES[view.state]
        self.view = view
        self.metrics.table_held.set(1 if view.state == HELD else 0)
        if view.state != was:
            log.info("table_state", state=view.state, was=was, **view.detail)
        if decision.shifted_azs != was_shifted:
            log.info(
                "zonal_shift",
                shifted=list(decision.shifted_azs),
                was=list(was_shifted),
                autoshifted=list(decision.autoshifted_azs),
                autoshift_overruled=decision.autoshift_overruled,
            )

    def lever_state(self) -> LeverState:
        """The levers in force at the last refresh, for /metrics (urn.metrics)."""
        decision = self.responder.decision
        counts = census(decision)
        return LeverState(
            records=counts,
            shifted={az: az in decision.shifted_azs for az in self.plan.levers.azs},
            autoshifted={
                az: az in decision.autoshifted_azs and not decision.autoshift_overruled
                for az in self.plan.levers.azs
            },
            overrides={
                "healthy": counts["override_healthy"],
                "unhealthy": counts["override_unhealthy"],
            },
            inverted=counts["inverted"],
        )

    def table_facts(self) -> dict[str, Any]:
        age = self.table_age()
        table = self.answering
        now = self.clock.monotonic()
        facts: dict[str, Any] = {
            "state": self.state,
            "age": None if age is None else round(age, 3),
            "max_age": self.document.max_table_age,
            "on_stale": self.document.on_stale,
            "replicas": {
                sender: {
                    "age": round(now - t.received_at, 3),
                    "checkers": t.checkers,
                    "azs": t.azs,
                }
                for sender, t in sorted(self.tables.items())
            },
        }
        if table is not None:
            facts.update(
                aggregator=table.sender,
                az=table.az,
                sequence=table.sequence,
                generated_at=table.generated_at,
                checkers=table.checkers,
                azs=table.azs,
                digest_matches=table.digest == self.document.digest,
            )
        return facts

    def explain(self, name: str, qtype: int | None) -> dict[str, Any]:
        responder = self.responder
        table = self.answering
        return explain(
            responder.compiled,
            self.document,
            name,
            qtype,
            None if table is None else table.slots,
            responder.decision,
            self.rng,
            self.table_facts(),
            None if table is None else self.drift.changed(table.digest),
        )

    async def explain_with_checkers(self, name: str, qtype: int | None) -> dict[str, Any]:
        """`explain`, plus each answer's per-checker verdicts from the aggregators' /v1/slots.

        Asks every aggregator at once, each bounded by EXPLAIN_TIMEOUT, and shows the view
        of the one whose table is in force (else the first that answers): "why is this
        down" names the checkers. An aggregator that cannot answer is named, not fatal.
        """
        result = self.explain(name, qtype)
        slots = sorted(
            {
                answer["slot"]
                for record in result.get("records", ())
                for answer in record["answers"]
                if answer["slot"] is not None
            }
        )
        if not slots:
            return result
        views, unreachable = await self.slot_views(slots)
        for record in result.get("records", ()):
            for answer in record["answers"]:
                view = views.get(answer["slot"]) if answer["slot"] is not None else None
                if view is not None:
                    answer["aggregator"] = view.get("aggregator")
                    answer["checkers"] = view.get("checkers", [])
                    answer["quorum"] = view.get("quorum")
        if unreachable:
            result["aggregators_unreachable"] = unreachable
        return result

    async def slot_views(self, slots: list[int]) -> tuple[dict[int, dict[str, Any]], list[str]]:
        """Each slot's per-checker view (the aggregators' /v1/slots/N), and the aggregators
        that could not give one.

        Asks every aggregator at once, each bounded by EXPLAIN_TIMEOUT, and keeps the view
        of the one whose table is in force (else the first that answers).
        """
        views: dict[int, dict[str, Any]] = {}
        if not slots or not self.document.aggregators:
            return views, []
        in_force = None if self.answering is None else self.answering.sender
        tls = self.document.tls
        context = client_ssl_context(tls) if tls.ca is not None or tls.client_cert else None
        timeout = aiohttp.ClientTimeout(total=EXPLAIN_TIMEOUT)
        unreachable: set[str] = set()
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(ssl=context or True)
        ) as session:

            async def ask(base: str, slot: int) -> tuple[str, int, dict[str, Any] | None]:
                try:
                    async with session.get(f"{base}/v1/slots/{slot}") as response:
                        body: dict[str, Any] = await response.json()
                        return base, slot, body if response.status == 200 else None
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    return base, slot, None

            answers = await asyncio.gather(
                *(ask(base, slot) for base in self.document.aggregators for slot in slots)
            )
        for base, slot, body in answers:
            if body is None:
                unreachable.add(base)
            elif slot not in views or body.get("aggregator") == in_force:
                views[slot] = body
        return views, sorted(unreachable)

    # --- metrics -------------------------------------------------------------------

    def _init_labels(self) -> None:
        queries = self.metrics.queries
        qtypes = [*QTYPES, "other"]
        for transport in TRANSPORTS:
            self.metrics.query_duration.labels(transport)
            for qtype in qtypes:
                for rcode in ("noerror", "nxdomain", "refused"):
                    queries.labels(transport, qtype, rcode)
            if transport != "json":
                for rcode in ("formerr", "notimp", "servfail", "badvers"):
                    queries.labels(transport, "none", rcode)
        for reason in MALFORMED_REASONS:
            self.metrics.malformed.labels(reason)

    def flush_metrics(self) -> None:
        """Fold the hot path's plain-int tallies into the Prometheus counters."""
        queries = self.metrics.queries
        for transport, tally in self.tallies.items():
            if not tally:
                continue
            counts = list(tally.items())
            tally.clear()
            for (qtype, rcode), count in counts:
                self.queries_total += count
                label = "none" if qtype == NO_QUESTION else qtype_label(qtype)
                queries.labels(transport, label, RCODES.get(rcode, "other")).inc(count)
        responder = self.responder
        opened = responder.fail_open_answers
        if opened > self._fail_open_flushed:
            self.metrics.fail_open_answers.inc(opened - self._fail_open_flushed)
            self._fail_open_flushed = opened
        for mode, labels in enumerate(MODE_LEVERS):
            count = responder.answers_by_mode[mode]
            if labels and count > self._modes_flushed[mode]:
                for label in labels:
                    self.metrics.lever_answers.labels(label).inc(count - self._modes_flushed[mode])
                self._modes_flushed[mode] = count
        for reason, count in list(responder.malformed.items()):
            done = self._malformed_flushed.get(reason, 0)
            if count > done:
                self.metrics.malformed.labels(reason).inc(count - done)
                self._malformed_flushed[reason] = count

    async def reload(self) -> bool:
        """One config pass now, as the config loop makes them; False if it kept the old."""
        return await self.loader.poll_once(self.apply)

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the config and refresh loops, and the DNS listeners when asked for."""
        self._tasks = [
            asyncio.create_task(self.loader.run(self.apply), name="resolver-config"),
            asyncio.create_task(
                run_every(self.clock, lambda: self.settings.refresh_interval, self._tick),
                name="resolver-refresh",
            ),
            asyncio.create_task(
                run_every(self.clock, lambda: self.document.intervals.push, self._status_tick),
                name="resolver-status",
            ),
        ]
        settings = self.settings
        if settings.dns_host is not None:
            try:
                await self.dns.start(settings.dns_host, settings.dns_port)
            except OSError as exc:
                await self.stop()
                raise StartupError(
                    f"cannot listen for DNS on {settings.dns_host}:{settings.dns_port}: {exc}"
                ) from None
        if settings.dot_host is not None:
            await self._start_dot(settings.dot_host, settings.dot_port)
        log.info(
            "resolver_started",
            id=settings.id,
            records=self.responder.compiled.record_count,
            zones=list(self.document.zone_names),
            dns=f"{settings.dns_host}:{self.dns.port}" if self.dns.port else None,
            dot=f"{settings.dot_host}:{self.dns.tls_port}" if self.dns.tls_port else None,
        )

    async def _start_dot(self, host: str, port: int) -> None:
        """DNS over TLS with the config's certificate (ALPN `dot`, RFC 7858 section 3.2)."""
        try:
            self.dot_tls = RotatingContext(self.document.tls, alpn=("dot",))
            await self.dns.start_tls(host, port, self.dot_tls.context)
        except (ValueError, OSError) as exc:
            await self.stop()
            raise StartupError(f"cannot serve DNS over TLS on {host}:{port}: {exc}") from None
        for result in REFRESH_RESULTS:
            self.metrics.certificate_reloads.labels("dot", result)

    async def _tick(self) -> None:
        self.refresh()
        self.flush_metrics()
        if self.dot_tls is not None:
            result = self.dot_tls.refresh(self.document.tls)
            if result != "unchanged":
                self.metrics.certificate_reloads.labels("dot", result).inc()
        cpu = time.process_time()
        self.metrics.tick_cpu.observe(cpu - self._cpu_mark)
        self._cpu_mark = cpu

    async def _status_tick(self) -> None:
        self.status.refresh()

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self.dns.stop()
        self.flush_metrics()

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Alive while its loops run; a stale or missing table is for /readyz to judge."""
        alive = bool(self._tasks) and not any(t.done() for t in self._tasks)
        return alive, {
            "id": self.settings.id,
            "table": self.table_facts(),
            "fail_open": self.document.fail_open,
            "records": self.responder.compiled.record_count,
            "dns_port": self.dns.port or None,
            "dot_port": self.dns.tls_port or None,
            "config_error": self.loader.last_error,
        }

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """`ready()`, for /readyz."""
        return self.ready()

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready while a fresh table answers: not before the first, nor past max_table_age."""
        facts = self.table_facts()
        state = self.state
        if state == FRESH:
            return True, {"id": self.settings.id, "table": facts}
        if state == NO_TABLE:
            reason = "no aggregated table received yet"
        else:
            effect = "holding the last good table" if state == HELD else "every slot unknown"
            reason = (
                f"no aggregated table received for {facts['age']}s, over max_table_age"
                f" {self.document.max_table_age:g}s: {effect} (on_stale: {self.document.on_stale})"
            )
        return False, {"id": self.settings.id, "reason": reason, "table": facts}
