"""The resolver service: holds the newest aggregated table, the compiled records, the listeners.

Wiring only: config passes recompile the records whole (`records.compile_records`); pushed
tables arrive through `urn.http.TableReceiver` (kind AGGREGATE, same checks as the
aggregator's receiver) and the newest by generation time, from any aggregator, is kept.
Every `refresh_interval` the table's age is judged: older than `max_table_age`, or none
yet, and queries read an all-unknown view (unknown counts as healthy: fail open), while
/healthz and metrics say so. Decisions per query live in `answer.Responder`.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np

from resolver.answer import NO_QUESTION, Responder, down_view, explain, unknown_view
from resolver.dnsmsg import RCODES
from resolver.dnsserver import DnsServer
from resolver.health import FRESH, HealthView, freshness
from resolver.records import QTYPES, compile_records, qtype_label
from urn.clock import SystemClock
from urn.drift import DriftMap
from urn.errors import StartupError
from urn.http import TableReceiver, client_ssl_context
from urn.logs import get_logger
from urn.metrics import ResolverMetrics, TableCollector
from urn.runtime import cancel_and_wait
from urn.source import ConfigLoader
from urn.ticker import run_every
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from prometheus_client import CollectorRegistry

    from resolver.health import HealthSource
    from resolver.settings import ResolverSettings
    from urn.clock import Clock
    from urn.config import Document
    from urn.keys import Keyring
    from urn.source import Loaded
    from urn.table import SlotArray
    from urn.wire import Envelope

__all__ = ["TRANSPORTS", "ResolverService"]

EXPLAIN_TIMEOUT = 1.0  # seconds an explanation waits for an aggregator's per-checker view

log = get_logger("resolver")
TRANSPORTS = ("udp", "tcp", "doh", "json")
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


@dataclass(frozen=True, slots=True)
class HeldTable:
    """The aggregated table in force and where it came from."""

    sender: str
    az: str
    sequence: int
    generated_at: float
    digest: bytes
    slots: bytes
    array: SlotArray


class ResolverService:
    """Newest table + compiled records + Responder; starts and stops the DNS listeners."""

    def __init__(
        self,
        settings: ResolverSettings,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
        source: Callable[[ResolverService], HealthSource] | None = None,
    ) -> None:
        """`source` builds the health source answers read (default: the held table)."""
        from prometheus_client import CollectorRegistry

        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ResolverMetrics(self.registry)
        self.rng = rng or random.Random()
        self.loader = ConfigLoader(settings.config, self.clock, self.metrics, self.apply, environ)
        self.document: Document | None = None
        self.keys: Keyring | None = None
        self.responder: Responder | None = None
        self.table: HeldTable | None = None
        self.state = "no table yet"
        self.configured: SlotArray | None = None
        self.drift = DriftMap()
        self.table_as_read: SlotArray | None = None  # the held table, changed slots unknown
        self.receiver: TableReceiver | None = None
        self.dns: DnsServer | None = None
        self.tallies: dict[str, dict[tuple[int, int], int]] = {t: {} for t in TRANSPORTS}
        self._fail_open_flushed = 0
        self._malformed_flushed: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._cpu_mark = time.process_time()
        self.source: HealthSource = self if source is None else source(self)
        self._init_labels()
        self.registry.register(
            TableCollector(
                table=lambda: self.table_as_read,
                age=self.table_age,
                configured=lambda: self.configured,
            )
        )

    # --- config and tables ---------------------------------------------------------

    async def apply(self, loaded: Loaded) -> None:
        """One config pass: recompile every record and zone, whole, then swap it in
        (unless the bytes are the ones already compiled).

        Compiling 10,000 answers takes tens of ms of CPU; in a worker thread the loop
        keeps answering meanwhile (it gets the GIL back every switch interval), so a
        config pass costs queries a few ms of latency instead of a stall.
        """
        document = loaded.document
        if self.responder is not None and document is self.document:
            # Identical bytes: the loader hands back the very Document it validated last
            # pass, so the records in force are already its compilation, and compiling
            # again would spend, every pass, CPU that comes out of query latency.
            self.keys = loaded.keys
            self.refresh()
            return
        previous = self.responder.compiled if self.responder is not None else None
        rng = random.Random(self.rng.getrandbits(64))  # the thread draws from its own
        compiled = await asyncio.to_thread(compile_records, document, rng, previous)
        configured = np.zeros(document.capacity, dtype=np.uint8)
        for check in document.checks:
            configured[check.slot] = 1
        if self.responder is None:
            self.responder = Responder(compiled, self.rng, document.fail_open)
        else:
            self.responder.compiled = compiled
            self.responder.fail_open = document.fail_open
        self.drift.apply(document)
        self.document = document
        self.keys = loaded.keys
        self.configured = configured
        self.refresh()

    def deliver(self, envelope: Envelope) -> None:
        """An accepted table: keep it if it is the newest seen from any aggregator."""
        if self.table is not None and envelope.generated_at < self.table.generated_at:
            return
        array = np.frombuffer(envelope.slots, dtype=np.uint8)
        self.table = HeldTable(
            sender=envelope.sender,
            az=envelope.az,
            sequence=envelope.sequence,
            generated_at=envelope.generated_at,
            digest=envelope.config_digest,
            slots=envelope.slots,
            array=array,
        )
        self.refresh()

    def table_age(self) -> float | None:
        if self.table is None:
            return None
        return max(0.0, self.clock.time() - self.table.generated_at)

    def current(self, document: Document, now: float) -> HealthView:
        """The held table as a HealthSource: fresh, stale or none (resolver.health)."""
        table = self.table
        age = None if table is None else max(0.0, now - table.generated_at)
        state = freshness(age, document.max_table_age)
        detail = {
            "age": None if age is None else round(age, 3),
            "aggregator": None if table is None else table.sender,
        }
        if table is None or state != FRESH:
            return HealthView(state, unknown_view(document.capacity), detail)
        changed = self.drift.changed(table.digest)
        self.table_as_read = table.array if changed is None else np.where(changed, 0, table.array)
        return HealthView(state, down_view(table.array, changed), detail)

    def refresh(self) -> None:
        """Ask the health source for the view queries read, and install it."""
        document, responder = self.document, self.responder
        if document is None or responder is None:
            return
        view = self.source.current(document, self.clock.time())
        responder.down = view.down
        if view.state != self.state:
            log.info("table_state", state=view.state, was=self.state, **view.detail)
            self.state = view.state

    def table_facts(self) -> dict[str, Any]:
        age = self.table_age()
        table = self.table
        facts: dict[str, Any] = {
            "state": self.state,
            "age": None if age is None else round(age, 3),
            "max_age": None if self.document is None else self.document.max_table_age,
        }
        if table is not None:
            facts.update(
                aggregator=table.sender,
                az=table.az,
                sequence=table.sequence,
                generated_at=table.generated_at,
                digest_matches=self.document is not None and table.digest == self.document.digest,
            )
        return facts

    def explain(self, name: str, qtype: int | None) -> dict[str, Any]:
        assert self.responder is not None
        responder = self.responder
        return explain(
            responder.compiled,
            name,
            qtype,
            self.table.slots if self.table is not None else None,
            responder.down,
            responder.fail_open,
            self.rng,
            self.table_facts(),
            None if self.table is None else self.drift.changed(self.table.digest),
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
        if not slots or self.document is None or not self.document.aggregators:
            return result
        in_force = self.table.sender if self.table is not None else None
        tls = self.document.tls
        context = client_ssl_context(tls) if tls.ca is not None or tls.client_cert else None
        timeout = aiohttp.ClientTimeout(total=EXPLAIN_TIMEOUT)
        views: dict[int, dict[str, Any]] = {}
        unreachable: list[str] = []
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
                unreachable.append(base)
                continue
            if slot not in views or body.get("aggregator") == in_force:
                views[slot] = body
        for record in result.get("records", ()):
            for answer in record["answers"]:
                view = views.get(answer["slot"]) if answer["slot"] is not None else None
                if view is not None:
                    answer["aggregator"] = view.get("aggregator")
                    answer["checkers"] = view.get("checkers", [])
                    answer["quorum"] = view.get("quorum")
        if unreachable:
            result["aggregators_unreachable"] = sorted(set(unreachable))
        return result

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
                label = "none" if qtype == NO_QUESTION else qtype_label(qtype)
                queries.labels(transport, label, RCODES.get(rcode, "other")).inc(count)
        responder = self.responder
        if responder is None:
            return
        opened = responder.fail_open_answers
        if opened > self._fail_open_flushed:
            self.metrics.fail_open_answers.inc(opened - self._fail_open_flushed)
            self._fail_open_flushed = opened
        for reason, count in list(responder.malformed.items()):
            done = self._malformed_flushed.get(reason, 0)
            if count > done:
                self.metrics.malformed.labels(reason).inc(count - done)
                self._malformed_flushed[reason] = count

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Load the first config (or raise StartupError), then start loops and DNS."""
        await self.loader.load_first()
        document = self.document
        assert document is not None
        assert self.responder is not None
        self.receiver = TableReceiver(
            kind=TableKind.AGGREGATE,
            capacity=lambda: self._document().capacity,
            keys=lambda: self._keys().accepted,
            skew=lambda: self._document().skew,
            clock=self.clock,
            metrics=self.metrics,
            deliver=self.deliver,
        )
        self._tasks = [
            asyncio.create_task(self.loader.run(), name="resolver-config"),
            asyncio.create_task(
                run_every(self.clock, lambda: self.settings.refresh_interval, self._tick),
                name="resolver-refresh",
            ),
        ]
        settings = self.settings
        if settings.dns_host is not None:
            duration = self.metrics.query_duration
            self.dns = DnsServer(
                self.responder,
                udp_tally=self.tallies["udp"],
                tcp_tally=self.tallies["tcp"],
                observe_udp=duration.labels("udp").observe,
                observe_tcp=duration.labels("tcp").observe,
                latency_sample=settings.latency_sample,
                tcp_idle_timeout=settings.tcp_idle_timeout,
                max_tcp_connections=settings.max_tcp_connections,
            )
            try:
                await self.dns.start(settings.dns_host, settings.dns_port)
            except OSError as exc:
                await self.stop()
                raise StartupError(
                    f"cannot listen for DNS on {settings.dns_host}:{settings.dns_port}: {exc}"
                ) from None
        log.info(
            "resolver_started",
            id=settings.id,
            records=self.responder.compiled.record_count,
            zones=list(document.zones),
            dns=None if self.dns is None else f"{settings.dns_host}:{self.dns.port}",
        )

    async def _tick(self) -> None:
        self.refresh()
        self.flush_metrics()
        cpu = time.process_time()
        self.metrics.tick_cpu.observe(cpu - self._cpu_mark)
        self._cpu_mark = cpu

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self.dns is not None:
            await self.dns.stop()
        self.flush_metrics()

    def _document(self) -> Document:
        assert self.document is not None
        return self.document

    def _keys(self) -> Keyring:
        assert self.keys is not None
        return self.keys

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Serving once configured; a stale or missing table is reported, not fatal."""
        responder = self.responder
        return responder is not None, {
            "id": self.settings.id,
            "table": self.table_facts(),
            "fail_open": None if responder is None else responder.fail_open,
            "records": None if responder is None else responder.compiled.record_count,
            "dns_port": None if self.dns is None else self.dns.port,
            "config_error": self.loader.last_error,
        }
