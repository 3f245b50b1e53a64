"""The checker service: wires config, schedule, probes, table and pushes. No decisions.

Owns: the table (a bytearray of two `capacity`-byte planes, urn.table: each slot's last
probe `Reason`, 0 until probed or when unassigned, and its last 8 outcomes as bits), the
probe loop that starts every due probe, and the push loop that sends the whole table
every push interval. A slot whose last finished probe started more than `stale_after`
ago goes out as STALE (no data), never as its old result, and a slot whose target
changed in the config starts again from no data.
Never: changes probe cadence with results, or reports its own lateness as a target
failure. Late probes are measured (`urn_probe_lateness_seconds`); probes more than one
interval late are skipped and counted (`urn_probes_skipped`), never failed; a loop stall
extends the deadlines of the probes in flight (see `ProbeEngine.sweep`).
Cost per probe: one schedule step, one `ProbeEngine.start`, one table write and a few
list appends; metrics are folded in once per push interval, not per probe. The probe
loop wakes on a fixed grid (`Admission.tick`, from the config's rate), so its own cost
per second is fixed too, and a wake starts at most `Admission.per_wake` probes: a late
wake never becomes a bigger batch.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import deque
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from checker.admission import TICK_MAX, Admission, admission
from checker.assign import assigned_checks, check_key, position
from checker.probers import ProbeEngine, Target, compile_target, tls_contexts
from checker.schedule import Schedule, phase, spread_phase
from checker.status import CheckerStatus
from urn.logs import get_logger
from urn.push import push_all, push_timeout
from urn.runtime import cancel_and_wait, current_fd_limit
from urn.signer import TableSigner
from urn.table import Reason
from urn.ticker import run_aligned
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from prometheus_client import Histogram

    from checker.settings import CheckerSettings
    from urn.config import Check, Document
    from urn.metrics import CheckerMetrics
    from urn.push import PushOutcome
    from urn.role import Wiring
    from urn.source import Loaded
    from urn.table import SlotArray

__all__ = ["CheckerPlan", "CheckerService", "observe_many"]

log = get_logger("checker")

# The probe loop wakes only on a fixed grid of the admission's tick (5 to 10 ms, about a
# hundred probes due per wake): due probes start in batches at the first grid point after
# they fall due, and that lateness (< tick) is measured like any other.
IDLE_WAKE = 0.05  # wake at least this often with nothing due (config passes may add work)
SWEEP_SLACK = 2 * TICK_MAX  # a probe may outlive its timeout by up to two sweeps
# Waking up to this much later than planned is timer noise; beyond it the loop stalled
# (CPU starved, or busy with its own work) and every probe in flight gets that much more
# time, so our own stall is never judged as a target timeout.
STALL_GRACE = 0.002
_LOCAL = int(Reason.LOCAL)
_HEALTHY = int(Reason.HEALTHY)
_STALE = np.uint8(Reason.STALE)
# A probe result vouches for its slot this long after the probe started: one interval
# to the next probe's start, plus that probe's own timeout (and sweep slack), plus a
# quarter interval of grace, so a target that times out every probe is never STALE.
STALE_GRACE = 0.25


def stale_after(interval: float, timeout: float) -> float:
    """How old a slot's last finished probe start may be before the slot is STALE."""
    return interval + max(interval, timeout + SWEEP_SLACK) + STALE_GRACE * interval


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """`histogram.observe(v)` for every value at once (one numpy pass, not one call each)."""
    if not values:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:  # pragma: no cover - other client
        for value in values:
            histogram.observe(value)
        return
    data = np.asarray(values, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, data, side="left"), minlength=len(bounds))
    for index, count in enumerate(counts.tolist()):
        if count:
            buckets[index].inc(count)
    total.inc(float(data.sum()))


@dataclass(frozen=True, slots=True)
class CheckerPlan:
    """One config pass, decided whole before any of it is installed."""

    loaded: Loaded
    checks: Mapping[int, Check]  # this checker's, by slot
    interval: float
    phases: tuple[tuple[int, float], ...]  # (slot, phase within the interval), by slot
    admission: Admission

    @property
    def document(self) -> Document:
        return self.loaded.document


class CheckerService:
    """One checker: applies the whole document each pass, probes, pushes."""

    def __init__(
        self, settings: CheckerSettings, first: Loaded, wiring: Wiring[CheckerMetrics]
    ) -> None:
        """The checker for its first good config; ConfigError if that config is unusable."""
        self.settings = settings
        clock = self.clock = wiring.clock
        self.metrics = wiring.metrics
        self.loader = wiring.loader
        self._wiring = wiring
        self.engine = ProbeEngine(clock.monotonic, self._record)
        self._lax, self._strict = tls_contexts(settings.probe_ca)
        self._epoch = clock.monotonic()
        capacity = self._capacity = first.document.capacity  # fixed for the process
        self._raw = bytearray(2 * capacity)
        self.table: SlotArray = np.frombuffer(self._raw, dtype=np.uint8)[:capacity]
        self._targets: list[Target | None] = [None] * capacity
        self._last_start = array("d", [-math.inf]) * capacity  # start of the newest finished
        self._started_view = np.frombuffer(self._last_start, dtype=np.float64)
        self._stale_after = np.zeros(capacity, dtype=np.float64)
        self._out = np.zeros(2 * capacity, dtype=np.uint8)
        self._phases: dict[tuple[str, tuple[int, int] | None], float] = {}
        self.stale_count = 0  # slots the last pushed table reported STALE
        self.schedule = Schedule(1.0, self._epoch, (), self._epoch)
        self._limit = 1
        self._per_wake = 1
        self._tick = TICK_MAX
        self._fd = current_fd_limit() if settings.fd_limit is None else settings.fd_limit
        self.signer = TableSigner(TableKind.CHECKER, settings.id, clock, az=settings.az)
        # Per-probe facts, folded into metrics once per push interval.
        self._counts = [0] * (max(Reason) + 1)
        # Arrays of C doubles, not lists: folding one is a single buffer, not 20,000 floats.
        self._durations = array("d")
        self._lateness = array("d")
        self._skipped = 0
        self.probes_started = 0
        self.cycle_log: deque[tuple[int, int, int]] = deque(maxlen=256)  # (cycle, started, skip)
        self._cycle_end = math.inf
        self._cycle_started = 0
        self._cycle_skipped = 0
        self.last_push: list[PushOutcome] = []
        self.pushes = 0
        self._cpu_mark = time.process_time()
        self._tasks: list[asyncio.Task[Any]] = []
        self._admission = Admission(0, 0, TICK_MAX, 0)
        self._installed = False
        self.metrics.ready.set_function(lambda: float(self.ready()[0]))
        self.status = CheckerStatus(self)  # /v1/status: rebuilt after every push
        self.plan = self._plan_for(first)  # raises ConfigError if unusable: no checker
        self._install(self.plan)

    # --- config --------------------------------------------------------------------

    @property
    def document(self) -> Document:
        return self.plan.document

    @property
    def loaded(self) -> Loaded:
        return self.plan.loaded

    def apply(self, loaded: Loaded) -> None:
        """Apply the whole document; raises ConfigError (keeping the old) if unusable."""
        plan = self._plan_for(loaded)  # may raise: nothing has changed yet
        self._install(plan)

    def _plan_for(self, loaded: Loaded) -> CheckerPlan:
        document = loaded.document
        checks = assigned_checks(document, self.settings)
        interval = document.intervals.probe
        soft, _ = self._fd
        return CheckerPlan(
            loaded=loaded,
            checks=MappingProxyType({c.slot: c for c in checks}),
            interval=interval,
            phases=tuple(sorted((c.slot, self._phase(document, c)) for c in checks)),
            admission=admission(
                [c.timeout + SWEEP_SLACK for c in checks],
                interval,
                soft,
                self.settings.fd_reserve,
                self.settings.max_concurrency,
            ),
        )

    def _install(self, plan: CheckerPlan) -> None:
        """Swap `plan` in: targets, staleness, the schedule (only if it moved), the limit."""
        document, interval, wanted = plan.document, plan.interval, plan.checks
        old = self.plan.checks if self._installed else {}
        for slot in [s for s in old if s not in wanted]:
            self._targets[slot] = None
            self._clear(slot)
        for slot, check in wanted.items():
            old_check = old.get(slot)
            if old_check != check:
                self._targets[slot] = compile_target(check, self._lax, self._strict)
                if old_check is not None and old_check.target != check.target:
                    self._clear(slot)  # the old target's health says nothing of the new
            self._stale_after[slot] = stale_after(interval, check.timeout)
        if not self._installed or (self.plan.interval, self.plan.phases) != (
            interval,
            plan.phases,
        ):
            now = self.clock.monotonic()
            # On the fleet's wall-clock grid, so checkers' phases line up with each other.
            self._epoch = now - (self.clock.time() % interval)
            self.schedule = Schedule(interval, self._epoch, plan.phases, now)
            self._cycle_end = self._epoch + (self.schedule.cycle + 1) * interval
            used = {
                (check_key(c), position(document, self.settings.id, c)) for c in wanted.values()
            }
            self._phases = {k: v for k, v in self._phases.items() if k in used}
        self.plan = plan
        self._installed = True
        self.engine.prune()
        self._admit(plan.admission)
        self.metrics.checks_assigned.set(len(wanted))
        self.metrics.peers(document.aggregators)
        self.status.configure(document)

    def _clear(self, slot: int) -> None:
        self._raw[slot] = 0
        self._raw[self._capacity + slot] = 0
        self._last_start[slot] = -math.inf

    def _phase(self, document: Document, check: Check) -> float:
        key = check_key(check)
        place = position(document, self.settings.id, check)
        value = self._phases.get((key, place))
        if value is None:
            value = phase(self.settings.id, key) if place is None else spread_phase(key, *place)
            self._phases[(key, place)] = value
        return value

    def _admit(self, sizing: Admission) -> None:
        soft, hard = self._fd
        self._limit = sizing.limit
        self._per_wake = sizing.per_wake
        self._tick = sizing.tick
        self.metrics.concurrency_needed.set(sizing.needed)
        self.metrics.concurrency_limit.set(sizing.limit)
        self.metrics.fd_limit.set(soft)
        if self._admission != sizing:
            self._admission = sizing
            fields = {
                "needed": sizing.needed,
                "limit": sizing.limit,
                "fd_soft": soft,
                "fd_hard": hard,
            }
            if sizing.short:
                log.error(
                    "probe_concurrency_short",
                    **fields,
                    effect="when targets hang, probes wait for a free slot and start late"
                    " (see urn_probe_lateness_seconds); raise the fd limit or lengthen the"
                    " probe interval or shorten timeouts",
                )
            else:
                log.info("probe_concurrency", **fields)

    # --- probing -------------------------------------------------------------------

    def _record(self, target: Target, verdict: int, started: float, finished: float) -> None:
        self._counts[verdict] += 1
        self._durations.append(finished - started)
        slot = target.slot
        if self._targets[slot] is not target or started < self._last_start[slot]:
            return  # check removed or changed meanwhile, or a newer probe already reported
        self._last_start[slot] = started
        raw = self._raw
        raw[slot] = verdict
        if verdict != _LOCAL:  # our own trouble is no outcome of the target's
            at = self._capacity + slot
            raw[at] = ((raw[at] << 1) & 0xFF) | (verdict != _HEALTHY)

    def launch(self, now: float) -> bool:
        """Start the probes due by `now`, as many as this wake's admission allows; True
        when it stopped at the per-wake cap (more may be due now).

        Due probes beyond that stay due in the schedule (its cursor lags), are started by
        the next wakes in due order, and are skipped and counted once an interval late.
        """
        engine = self.engine
        room = self._limit - engine.in_flight
        cap = self._per_wake
        limit = room if room < cap else cap
        slots, dues, skipped = self.schedule.take(now, limit if limit > 0 else 0)
        started = 0
        if slots:
            # Each probe's clock (and lateness) starts when its own connect is issued.
            monotonic = self.clock.monotonic
            targets = self._targets
            lateness = self._lateness
            start = engine.start
            steady = dues[-1] < self._cycle_end  # the whole batch in the current cycle
            for slot, due in zip(slots, dues, strict=True):
                target = targets[slot]
                if target is not None:  # defensive: apply rebuilds the schedule
                    if not steady:
                        self._count_cycle(due)
                    at = monotonic()
                    start(target, at)
                    lateness.append(at - due)
                    started += 1
        self.probes_started += started
        self._cycle_started += started
        self._skipped += skipped
        self._cycle_skipped += skipped
        return limit == cap and len(slots) == cap

    def _count_cycle(self, due: float) -> None:
        if due >= self._cycle_end:
            interval = self.schedule.interval
            cycle = math.floor((self._cycle_end - self._epoch) / interval + 0.5) - 1
            self.cycle_log.append((cycle, self._cycle_started, self._cycle_skipped))
            self._cycle_started = self._cycle_skipped = 0
            self._cycle_end = self._epoch + (math.floor((due - self._epoch) / interval) + 1) * (
                interval
            )

    def _next_wake(self, now: float) -> float:
        """The first grid point at or after the next thing to do, at least ~tick/10 ahead."""
        epoch = self._epoch
        tick = self._tick
        grid = epoch + (math.floor((now - epoch) / tick) + 1) * tick
        if grid - now < 0.1 * tick:  # `now` is (a rounding error short of) a grid point
            grid += tick
        wake = now + IDLE_WAKE
        due = self.schedule.next_due()
        if due is not None and due < wake:
            wake = due
        deadline = self.engine.next_deadline()
        if deadline is not None and deadline < wake:
            wake = deadline
        if wake <= grid:
            return grid
        return epoch + math.ceil((wake - epoch) / tick) * tick

    async def _probe_loop(self) -> None:
        clock = self.clock
        engine = self.engine
        planned = clock.monotonic()
        while True:
            now = clock.monotonic()
            late = now - planned
            # A wake later than planned is time the loop could not read answers in: the
            # engine adds it to every in-flight probe's deadline.
            engine.sweep(now, late - STALL_GRACE if late > STALL_GRACE else 0.0)
            if self.launch(now):
                # Stopped at the per-wake cap with more due: start the next batch once the
                # loop has read the answers ready now, so a backlog drains as fast as the
                # core allows, in batches that never grow. A yield that takes longer than
                # timer noise is credited as a stall, as a late wake is.
                planned = clock.monotonic()
                await asyncio.sleep(0)
                continue
            # Plan from the end of this wake's work: a grid point it overran would not
            # sleep at all, and a loop that never yields reads no answers and pushes no
            # tables. And from the grid point we meant to wake at when a timer fired a
            # little early (the loop's clock has a coarse grain), or we would wake twice.
            done = clock.monotonic()
            planned = self._next_wake(done if done > planned else planned)
            await clock.sleep_until(planned)

    # --- pushing -------------------------------------------------------------------

    def encode_table(self) -> bytes:
        """The signed envelope of the whole table as it is now."""
        return self.signer.sign(self.loaded, self.table_bytes())

    def table_bytes(self) -> bytes:
        """Both planes as they go out: a slot nobody has vouched for lately is STALE."""
        out = self._out
        capacity = self._capacity
        np.copyto(out, np.frombuffer(self._raw, dtype=np.uint8))
        last = out[:capacity]
        stale = np.less(self._started_view, self.clock.monotonic() - self._stale_after)
        np.logical_and(stale, last, out=stale)
        np.copyto(last, _STALE, where=stale)
        self.stale_count = int(np.count_nonzero(stale))
        return out.tobytes()

    async def push_once(self) -> list[PushOutcome]:
        """Push the whole table to every aggregator at once, each with its own timeout."""
        document = self.document
        body = self.encode_table()
        self.metrics.tables_pushed_bytes.set(len(body))
        self.metrics.stale_slots.set(self.stale_count)
        timeout = push_timeout(document.intervals.push)
        outcomes = await push_all(
            self._wiring.transport, document.aggregators, body, timeout, self.metrics
        )
        for outcome in outcomes:
            if outcome.result != "ok":
                log.warning(
                    "push_failed", peer=outcome.peer, result=outcome.result, detail=outcome.detail
                )
        self.last_push = outcomes
        self.pushes += 1
        return outcomes

    def flush_metrics(self) -> None:
        """Fold the per-probe facts gathered since the last flush into the registry."""
        metrics = self.metrics
        counts = self._counts
        if counts[_LOCAL]:
            metrics.local_errors.inc(counts[_LOCAL])
        for reason in Reason:
            if counts[reason]:
                metrics.probes.labels(reason.label).inc(counts[reason])
                counts[reason] = 0
        durations, self._durations = self._durations, array("d")
        lateness, self._lateness = self._lateness, array("d")
        observe_many(metrics.probe_duration, durations)
        observe_many(metrics.probe_lateness, lateness)  # >= 0: a probe starts once due
        if self._skipped:
            metrics.probes_skipped.inc(self._skipped)
            self._skipped = 0
        metrics.probes_in_flight.set(self.engine.in_flight)
        cpu = time.process_time()
        metrics.tick_cpu.observe(cpu - self._cpu_mark)
        self._cpu_mark = cpu

    @property
    def table_out(self) -> SlotArray:
        """Both planes of the table the last push sent (zeros before the first)."""
        return self._out

    async def _push_tick(self) -> None:
        self.flush_metrics()
        await self.push_once()
        self.status.refresh()

    async def _push_loop(self) -> None:
        # On the fleet's wall-clock instants, so aggregators can tick just after them.
        await run_aligned(
            self.clock,
            lambda: self.document.intervals.push,
            self._push_tick,
            on_late=lambda _: self.metrics.ticks_late.inc(),
        )

    async def reload(self) -> bool:
        """One config pass now, as the config loop makes them; False if it kept the old."""
        return await self.loader.poll_once(self.apply)

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the probe, push and config loops."""
        log.info(
            "checker_started",
            id=self.settings.id,
            az=self.settings.az,
            checks=len(self.plan.checks),
            aggregators=len(self.document.aggregators),
            select=[str(s) for s in self.settings.select],
        )
        self._tasks = [
            asyncio.create_task(self._probe_loop(), name="probe-loop"),
            asyncio.create_task(self._push_loop(), name="push-loop"),
            asyncio.create_task(self.loader.run(self.apply), name="config-loop"),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        self.engine.abort_all()
        await self._wiring.close()

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """`ready()`, for /readyz."""
        return self.ready()

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready while the config in force is good: its last pass was not rejected.

        A checker without a good first config never starts; one whose later passes are
        rejected keeps probing under the last good one and says so here.
        """
        facts: dict[str, Any] = {"id": self.settings.id, "checks": len(self.plan.checks)}
        error = self.loader.last_error
        if error is not None:
            return False, {**facts, "reason": f"config rejected, last good kept: {error}"}
        return True, facts

    async def health(self) -> tuple[bool, dict[str, Any]]:
        alive = bool(self._tasks) and not any(t.done() for t in self._tasks)
        return alive, {
            "id": self.settings.id,
            "az": self.settings.az,
            "checks": len(self.plan.checks),
            "in_flight": self.engine.in_flight,
            "concurrency_limit": self._limit,
            "pushes": self.pushes,
            "last_push": {o.peer: o.result for o in self.last_push},
            "config_error": self.loader.last_error,
        }
