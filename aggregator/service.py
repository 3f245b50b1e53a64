"""The aggregator process: receive checker tables, tick, push the whole health table.

Wires `urn.http.TableReceiver` (verification, counting, rejection) into the window,
runs `TickCore` every push interval on the tables fresh at that moment, and pushes
the encoded aggregated table to every resolver with `urn.push.push_all`, changed or
not. Decisions live in the pure modules (window, condition, calculated, explain).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web
from prometheus_client import CollectorRegistry

from aggregator.explain import explain_slot
from aggregator.tick import Plan, TickCore, TickResult
from aggregator.warmup import is_blind, warm_up_seconds, warming_up
from aggregator.window import Entry, Window
from urn.clock import SystemClock
from urn.drift import DriftMap
from urn.http import TableReceiver, client_ssl_context
from urn.logs import get_logger
from urn.metrics import AggregatorMetrics, TableCollector
from urn.push import AiohttpTransport, push_all, push_timeout
from urn.signer import TableSigner
from urn.source import ConfigLoader, Loaded
from urn.table import CheckerPlanes
from urn.ticker import run_aligned
from urn.wire import Envelope, TableKind

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aggregator.settings import AggregatorSettings
    from urn.clock import Clock
    from urn.config import Check, Document
    from urn.push import PushOutcome, Transport
    from urn.table import SlotArray

__all__ = ["Aggregator"]

log = get_logger("aggregator")


class Aggregator:
    """One aggregator replica's state and its I/O shell."""

    def __init__(
        self,
        settings: AggregatorSettings,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        transport: Transport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = AggregatorMetrics(self.registry)
        self._transport = transport
        self._own_transport: AiohttpTransport | None = None
        self.window = Window(settings.window)
        self.loader = ConfigLoader(settings.config, self.clock, self.metrics, self.apply, environ)
        self.receiver: TableReceiver | None = None
        self._loaded: Loaded | None = None
        self._plan: Plan | None = None
        self._checks: dict[int, Check] = {}
        self._core: TickCore | None = None
        self._drift = DriftMap()
        self.table: SlotArray | None = None  # the last aggregated table pushed
        self._built_by = (0, 0)  # fresh checkers and AZs behind `table`
        self._entries: list[Entry] = []  # the fresh tables the last tick read
        self._tick_at: float | None = None  # monotonic
        self._ticks = 0
        self._started_at: float | None = None  # monotonic, at the first good config
        self._blind_at: float | None = None  # monotonic, last tick with an untrustworthy window
        self.signer = TableSigner(TableKind.AGGREGATE, settings.id, self.clock)
        self.last_push: list[PushOutcome] = []
        self.registry.register(
            TableCollector(
                table=lambda: self.table,
                age=self._table_age,
                configured=lambda: None if self._plan is None else self._plan.configured,
            )
        )

    # --- config ------------------------------------------------------------------

    @property
    def document(self) -> Document:
        if self._loaded is None:
            raise RuntimeError("no config applied yet")
        return self._loaded.document

    def apply(self, loaded: Loaded) -> None:
        """Apply a whole document: rebuild every per-config array (never per tick)."""
        document = loaded.document
        plan = Plan.from_document(document, self._drift)
        if self._core is None:
            self._core = TickCore(document.capacity)
        self._plan = plan
        self._checks = dict(document.checks_by_slot)
        self._loaded = loaded
        self.metrics.peers(document.resolvers)

    async def start(self) -> None:
        """Load the first config (StartupError without one); idempotent."""
        if self._loaded is not None:
            return
        await self.loader.load_first()
        self._started_at = self.clock.monotonic()
        self.receiver = TableReceiver(
            kind=TableKind.CHECKER,
            capacity=lambda: self.document.capacity,
            keys=lambda: self._keys(),
            skew=lambda: self.document.skew,
            clock=self.clock,
            metrics=self.metrics,
            deliver=self.deliver,
        )
        if self._transport is None:
            tls = self.document.tls
            wants_context = tls.ca is not None or tls.client_cert is not None
            self._own_transport = AiohttpTransport(
                client_ssl_context(tls) if wants_context else None
            )
            self._transport = self._own_transport
        log.info(
            "aggregator_config",
            id=self.settings.id,
            capacity=self.document.capacity,
            checks=len(self.document.checks),
            resolvers=list(self.document.resolvers),
        )

    def _keys(self) -> tuple[bytes, ...]:
        assert self._loaded is not None
        return self._loaded.keys.accepted

    async def close(self) -> None:
        if self._own_transport is not None:
            await self._own_transport.close()

    # --- receive -----------------------------------------------------------------

    def deliver(self, envelope: Envelope) -> None:
        """An accepted checker table joins its sender's history."""
        planes = CheckerPlanes(envelope.slots, envelope.capacity)
        self.window.add(
            Entry(
                sender=envelope.sender,
                az=envelope.az,
                sequence=envelope.sequence,
                generated_at=envelope.generated_at,
                received_at=self.clock.monotonic(),
                last=planes.last,
                history=planes.history,
                config_digest=envelope.config_digest,
            )
        )

    # --- tick --------------------------------------------------------------------

    def compute(self) -> SlotArray:
        """The aggregated table from the tables fresh now; records tick CPU time."""
        assert self._core is not None
        assert self._plan is not None
        # This thread's CPU only: the tick runs on the loop without yielding, and a config
        # read in a worker thread meanwhile is not the tick's work.
        started = time.thread_time()
        now = self.clock.monotonic()
        staleness = self.document.staleness
        self.window.prune(now, staleness)
        entries = self.window.newest_fresh(now, staleness)
        if is_blind(len(entries), now, self._tick_at, staleness):
            self._blind_at = now  # warm up again (aggregator/warmup.py)
        result: TickResult = self._core.compute(
            entries, self._plan, np.empty(self._plan.capacity, np.uint8)
        )
        table = result.table
        self.metrics.tick_cpu.observe(time.thread_time() - started)
        self.metrics.fresh_checkers.set(result.checkers)
        self.metrics.fresh_azs.set(result.azs)
        self.table = table
        self._built_by = (result.checkers, result.azs)
        self._entries = entries
        self._tick_at = now
        self._ticks += 1
        return table

    def encode_table(self, table: SlotArray) -> bytes:
        """The signed envelope of `table`, with the fresh checkers and AZs behind it."""
        if self._loaded is None:
            raise RuntimeError("no config applied yet")
        checkers, azs = self._built_by
        return self.signer.sign(self._loaded, table.tobytes(), checkers=checkers, azs=azs)

    @property
    def warm_up(self) -> float:
        """Seconds after start, or after going blind, that ticks compute but do not push."""
        document = self.document
        return warm_up_seconds(
            self.settings.window,
            document.intervals.push,
            document.staleness,
            self.settings.warm_up,
        )

    @property
    def warming_up(self) -> bool:
        return warming_up(self.clock.monotonic(), self._started_at, self._blind_at, self.warm_up)

    async def tick(self) -> None:
        """Compute and push to every resolver, whatever changed; never raises."""
        try:
            table = self.compute()
            if self.warming_up:
                return
            body = self.encode_table(table)
            document = self.document
            assert self._transport is not None
            timeout = push_timeout(document.intervals.push)
            self.last_push = await push_all(
                self._transport, document.resolvers, body, timeout, self.metrics
            )
        except Exception as exc:
            log.error("tick_failed", error=f"{type(exc).__name__}: {exc}")
            return
        for outcome in self.last_push:
            if outcome.result != "ok":
                log.warning(
                    "push_failed", peer=outcome.peer, result=outcome.result, detail=outcome.detail
                )

    def _on_late(self, _seconds: float) -> None:
        self.metrics.ticks_late.inc()

    async def run_ticks(self) -> None:
        # `aggregate_lag` after the instants checkers push on: this round's tables are in.
        await run_aligned(
            self.clock,
            lambda: self.document.intervals.push,
            self.tick,
            lag=lambda: self.document.intervals.aggregate_lag,
            on_late=self._on_late,
        )

    # --- observability -----------------------------------------------------------

    def _table_age(self) -> float | None:
        return None if self._tick_at is None else self.clock.monotonic() - self._tick_at

    def explain(self, slot: int) -> dict[str, Any]:
        """The observations behind `slot`'s status in the last tick."""
        assert self.table is not None
        assert self._tick_at is not None
        assert self._plan is not None
        return explain_slot(
            slot,
            check=self._checks.get(slot),
            checks=self._checks,
            table=self.table,
            entries=self._entries,
            plan=self._plan,
            tick_at=self._tick_at,
            now=self.clock.monotonic(),
            staleness=self.document.staleness,
        )

    async def handle_slot(self, request: web.Request) -> web.Response:
        raw = request.match_info["slot"]
        try:
            slot = int(raw)
        except ValueError:
            return _error(400, "bad_slot", f"slot {raw!r} is not an integer")
        if self._loaded is None or self.table is None:
            return _error(503, "no_tick", "no aggregated table computed yet")
        capacity = self.document.capacity
        if not 0 <= slot < capacity:
            return _error(404, "no_such_slot", f"slot {slot} is outside 0..{capacity - 1}")
        return web.json_response({"aggregator": self.settings.id, **self.explain(slot)})

    async def health(self) -> tuple[bool, dict[str, Any]]:
        ok = self._loaded is not None
        facts: dict[str, Any] = {"id": self.settings.id, "config": ok}
        if ok:
            now = self.clock.monotonic()
            facts["fresh_checkers"] = self.window.fresh_senders(now, self.document.staleness)
            facts["ticks"] = self._ticks
            facts["warming_up"] = self.warming_up
            age = self._table_age()
            facts["last_tick_age"] = None if age is None else round(age, 3)
            facts["config_error"] = self.loader.last_error
            facts["pushes"] = {o.peer: o.result for o in self.last_push}
        return ok, facts


def _error(status: int, error: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)
