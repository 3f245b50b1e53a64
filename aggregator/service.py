"""The aggregator process: receive checker tables, tick, push the whole health table.

Wires `urn.http.TableReceiver` (verification, counting, rejection) into the window,
runs `TickCore` every push interval on the tables fresh at that moment, and pushes
the encoded aggregated table to every resolver with `urn.push.push_all`, changed or
not. Decisions live in the pure modules (window, condition, calculated, explain).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from aggregator.autoshift import AutoshiftState
from aggregator.explain import explain_slot
from aggregator.status import AggregatorStatus
from aggregator.tick import Plan, TickCore, TickResult
from aggregator.warmup import is_blind, warm_up_seconds, warming_up
from aggregator.window import Entry, Window
from urn.drift import DriftMap
from urn.http import TableReceiver
from urn.logs import get_logger
from urn.metrics import AutoshiftCollector, SlotAzs, TableCollector
from urn.push import push_all, push_timeout
from urn.runtime import cancel_and_wait
from urn.signer import TableSigner
from urn.table import CheckerPlanes, empty_table
from urn.ticker import run_aligned
from urn.trust import receive_policy
from urn.wire import Envelope, TableKind

if TYPE_CHECKING:
    from aggregator.settings import AggregatorSettings
    from urn.config import Check, Document
    from urn.metrics import AggregatorMetrics
    from urn.push import PushOutcome
    from urn.role import Wiring
    from urn.source import Loaded
    from urn.table import SlotArray

__all__ = ["Aggregator"]

log = get_logger("aggregator")


class Aggregator:
    """One aggregator replica's state and its I/O shell, built from its first good config."""

    def __init__(
        self, settings: AggregatorSettings, first: Loaded, wiring: Wiring[AggregatorMetrics]
    ) -> None:
        self.settings = settings
        self.clock = wiring.clock
        self.metrics = wiring.metrics
        self.registry = wiring.metrics.registry
        self.loader = wiring.loader
        self._wiring = wiring
        self.window = Window(settings.window)
        self._drift = DriftMap()
        self.loaded = first
        self.plan = Plan.from_document(first.document, self._drift)
        self._checks: dict[int, Check] = dict(first.document.checks_by_slot)
        self._azs = SlotAzs.of(first.document)
        self._core = TickCore(first.document.capacity)
        self.receiver = TableReceiver(
            policy=receive_policy(first.document, first.keys, TableKind.CHECKER),
            clock=self.clock,
            metrics=self.metrics,
            deliver=self.deliver,
        )
        self.table: SlotArray = empty_table(first.document.capacity)  # the last one computed
        self._built_by = (0, 0)  # fresh checkers and AZs behind `table`
        self.autoshift = AutoshiftState()  # judged on every table computed
        self._entries: list[Entry] = []  # the fresh tables the last tick read
        self._ticks = 0
        self._started_at = self.clock.monotonic()  # the first good config
        self._tick_at = self._started_at  # monotonic; the start until the first tick
        self._blind_at = self._started_at  # the last tick with an untrustworthy window
        self.signer = TableSigner(TableKind.AGGREGATE, settings.id, self.clock)
        self.last_push: list[PushOutcome] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.metrics.peers(first.document.resolvers)
        self.status = AggregatorStatus(self)  # /v1/status: rebuilt every tick
        self.status.configure(first.document)
        self.metrics.ready.set_function(lambda: float(self.ready()[0]))
        self.registry.register(
            TableCollector(
                table=lambda: self.table if self._ticks else None,
                age=self._table_age,
                configured=lambda: self.plan.configured,
                azs=lambda: self._azs,
            )
        )
        self.registry.register(AutoshiftCollector(self._autoshift_gauges))

    # --- config ------------------------------------------------------------------

    @property
    def document(self) -> Document:
        return self.loaded.document

    def apply(self, loaded: Loaded) -> None:
        """Apply a whole document: rebuild every per-config array (never per tick)."""
        document = loaded.document
        self.receiver.apply(receive_policy(document, loaded.keys, TableKind.CHECKER))
        self.plan = Plan.from_document(document, self._drift)
        self._checks = dict(document.checks_by_slot)
        self._azs = SlotAzs.of(document)
        self.loaded = loaded
        self.metrics.peers(document.resolvers)
        self.status.configure(document)

    async def reload(self) -> bool:
        """One config pass now, as the config loop makes them; False if it kept the old."""
        return await self.loader.poll_once(self.apply)

    async def start(self) -> None:
        """Run the config loop and the ticker."""
        log.info(
            "aggregator_config",
            id=self.settings.id,
            capacity=self.document.capacity,
            checks=len(self.document.checks),
            resolvers=list(self.document.resolvers),
        )
        self._tasks = [
            asyncio.create_task(self.loader.run(self.apply), name="config"),
            asyncio.create_task(self.run_ticks(), name="ticks"),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self._wiring.close()

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
        # This thread's CPU only: the tick runs on the loop without yielding, and a config
        # read in a worker thread meanwhile is not the tick's work.
        started = time.thread_time()
        now = self.clock.monotonic()
        staleness = self.document.staleness
        self.window.prune(now, staleness)
        entries = self.window.newest_fresh(now, staleness)
        if is_blind(len(entries), now, self._tick_at if self._ticks else None, staleness):
            self._blind_at = now  # warm up again (aggregator/warmup.py)
        result: TickResult = self._core.compute(
            entries, self.plan, np.empty(self.plan.capacity, np.uint8)
        )
        table = result.table
        self.metrics.tick_cpu.observe(time.thread_time() - started)
        self.metrics.fresh_checkers.set(result.checkers)
        self.metrics.fresh_azs.set(result.azs)
        self._step_autoshift(table, now)
        self.table = table
        self._built_by = (result.checkers, result.azs)
        self._entries = entries
        self._tick_at = now
        self._ticks += 1
        return table

    def _step_autoshift(self, table: SlotArray, now: float) -> None:
        was = self.autoshift.az
        self.autoshift = self.autoshift.step(table, self.plan.autoshift, now)
        if self.autoshift.az != was:
            if self.autoshift.az is not None:
                self.metrics.autoshifts.labels(self.autoshift.az).inc()
            log.warning(
                "autoshift",
                az=self.autoshift.az,
                was=was,
                reason=self.autoshift.reason,
                shares=None if self.autoshift.shares is None else self.autoshift.shares.shares,
            )

    def autoshift_facts(self) -> dict[str, Any]:
        """The autoshift as the last tick judged it, for /healthz and /v1/status."""
        state = self.autoshift
        return {
            "enabled": self.document.autoshift.enabled,
            "az": state.az,
            "reason": state.reason,
            "since_s": None if state.since is None else round(self._tick_at - state.since, 3),
            "unhealthy_share": {} if state.shares is None else state.shares.shares,
        }

    def _autoshift_gauges(self) -> tuple[str | None, dict[str, float]]:
        shares = self.autoshift.shares
        return self.autoshift.az, {} if shares is None else shares.shares

    def encode_table(self, table: SlotArray) -> bytes:
        """The signed envelope of `table`, with the fresh checkers and AZs behind it and
        the AZ autoshifted away."""
        checkers, azs = self._built_by
        return self.signer.sign(
            self.loaded,
            table.tobytes(),
            checkers=checkers,
            azs=azs,
            autoshift=self.autoshift.az or "",
        )

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
                self.status.refresh()
                return
            body = self.encode_table(table)
            document = self.document
            timeout = push_timeout(document.intervals.push)
            self.last_push = await push_all(
                self._wiring.transport, document.resolvers, body, timeout, self.metrics
            )
            self.status.refresh()  # after the push: the page's snapshot never delays a table
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

    @property
    def last_entries(self) -> list[Entry]:
        """The fresh checker tables the last tick read."""
        return self._entries

    @property
    def built_by(self) -> tuple[int, int]:
        """Fresh checkers and AZs behind the last table computed."""
        return self._built_by

    def _table_age(self) -> float | None:
        return self.clock.monotonic() - self._tick_at if self._ticks else None

    def explain(self, slot: int) -> dict[str, Any]:
        """The observations behind `slot`'s status in the last tick."""
        return explain_slot(
            slot,
            check=self._checks.get(slot),
            checks=self._checks,
            table=self.table,
            entries=self._entries,
            plan=self.plan,
            tick_at=self._tick_at,
            now=self.clock.monotonic(),
            staleness=self.document.staleness,
            autoshift=self.autoshift,
        )

    async def handle_slot(self, request: web.Request) -> web.Response:
        raw = request.match_info["slot"]
        try:
            slot = int(raw)
        except ValueError:
            return _error(400, "bad_slot", f"slot {raw!r} is not an integer")
        if not self._ticks:
            return _error(503, "no_tick", "no aggregated table computed yet")
        capacity = self.document.capacity
        if not 0 <= slot < capacity:
            return _error(404, "no_such_slot", f"slot {slot} is outside 0..{capacity - 1}")
        return web.json_response({"aggregator": self.settings.id, **self.explain(slot)})

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Alive while its loops run: the facts of the last tick and pushes."""
        alive = bool(self._tasks) and not any(t.done() for t in self._tasks)
        now = self.clock.monotonic()
        age = self._table_age()
        return alive, {
            "id": self.settings.id,
            "config": True,
            "fresh_checkers": self.window.fresh_senders(now, self.document.staleness),
            "ticks": self._ticks,
            "warming_up": self.warming_up,
            "last_tick_age": None if age is None else round(age, 3),
            "config_error": self.loader.last_error,
            "pushes": {o.peer: o.result for o in self.last_push},
            "autoshift": self.autoshift_facts(),
        }

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """`ready()`, for /readyz."""
        return self.ready()

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready to push tables resolvers may trust: warmed up, with enough fresh checkers."""
        now = self.clock.monotonic()
        fresh = len(self.window.fresh_senders(now, self.document.staleness))
        needed = self.document.defaults.quorum.min_checkers
        facts: dict[str, Any] = {"id": self.settings.id, "fresh_checkers": fresh}
        if self.warming_up:
            return False, {**facts, "reason": "warming up", "warm_up": self.warm_up}
        if fresh < needed:
            reason = f"{fresh} fresh checkers, fewer than quorum.min_checkers ({needed})"
            return False, {**facts, "reason": reason}
        return True, facts


def _error(status: int, error: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)
