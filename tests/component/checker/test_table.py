"""The checker's table on a FakeClock: probe history, LOCAL and STALE slots, config changes.

Probes run against real loopback targets, but time moves only when a test steps the
FakeClock, so which probes start, time out, are skipped and go out in which push is
exact. Every probe the engine ends is logged (the engine's `record` callback), and every
table the service builds for a push is logged with the instant it was built, so a test
can recompute what each pushed table must say from the probes alone.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from checker import probers
from checker.admission import BURST_FLOOR, per_wake, tick_for
from checker.app import build_service
from checker.assign import check_key, position
from checker.schedule import spread_phase
from checker.service import SWEEP_SLACK, CheckerService, stale_after
from checker.settings import CheckerSettings
from sim.testing import TEST_PUSH_KEY, MemoryTransport, document_dict, free_port
from sim.testing.targets import loopback_farm
from urn.clock import FakeClock
from urn.config import parse_document
from urn.table import CheckerPlanes, Reason
from urn.wire import TableKind, decode, encoded_size

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from checker.probers import Target
    from sim.farm import TargetFarm

ENV = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}
CAPACITY = 64
AGGREGATOR = "http://agg-a.test"
WALL_OFFSET = 1_000_000.0  # small enough that wall time - offset is exact to ~1e-10 s
STEP = 0.01


def write_config(
    path: Path, checks: list[dict[str, Any]], probe: float = 1.0, push: float = 0.5, **top: Any
) -> str:
    intervals = {"probe": probe, "push": push, "config": 3600}
    document = document_dict(
        checks, capacity=CAPACITY, intervals=intervals, aggregators=[AGGREGATOR], **top
    )
    path.write_text(json.dumps(document))
    return str(path)


def check(slot: int, port: int, kind: str = "http", **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "slot": slot,
        "name": f"c{slot}",
        "type": kind,
        "host": "127.0.0.1",
        "port": port,
        "timeout": 0.3,
    }
    if kind == "http":
        fields["path"] = "/"
    return {**fields, **extra}


@dataclass
class Finish:
    slot: int
    verdict: int
    started: float


@dataclass
class Built:
    """A table built for a push: when (monotonic), and both planes as they went out."""

    at: float
    body: bytes
    planes: CheckerPlanes = field(init=False)

    def __post_init__(self) -> None:
        self.planes = CheckerPlanes(self.body, CAPACITY)


@dataclass
class Checker:
    service: CheckerService
    clock: FakeClock
    transport: MemoryTransport
    events: list[Finish | Built]
    table_bytes: Callable[[], bytes]

    @property
    def finishes(self) -> list[Finish]:
        return [e for e in self.events if isinstance(e, Finish)]

    @property
    def built(self) -> list[Built]:
        return [e for e in self.events if isinstance(e, Built)]

    def planes(self) -> CheckerPlanes:
        """The table as it would go out now (not logged as a push)."""
        return CheckerPlanes(self.table_bytes(), CAPACITY)

    async def step(self, seconds: float = STEP) -> None:
        await self.clock.advance(seconds)
        await asyncio.sleep(0.001)  # real time for loopback I/O; fake time stands still

    async def step_until(self, condition: Callable[[], bool], limit: float = 30.0) -> None:
        """Step fake time until `condition`; at most `limit` fake seconds."""
        end = self.clock.monotonic() + limit
        while not condition():
            assert self.clock.monotonic() < end, "condition not reached in fake time"
            await self.step()

    async def settle(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait in real time, fake time standing still (a probe's I/O completing)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "I/O did not complete"
            await asyncio.sleep(0.002)

    async def next_probe(self, slot: int, hangs: bool = False) -> Finish:
        """Step to the next probe of `slot` and let it finish: answered ones with fake
        time frozen (real loopback I/O), a hanging one by running out its clock."""
        done = len(self.finishes)
        started = self.service.probes_started
        await self.step_until(lambda: self.service.probes_started > started)
        if hangs:
            await self.step_until(lambda: len(self.finishes) > done)
        else:
            await self.settle(lambda: len(self.finishes) > done)
        finish = self.finishes[-1]
        assert finish.slot == slot
        return finish

    async def next_push(self) -> CheckerPlanes:
        sent = len(self.transport.sent)
        await self.step_until(lambda: len(self.transport.sent) > sent)
        envelope = decode(self.transport.sent[-1][1], [TEST_PUSH_KEY], CAPACITY, TableKind.CHECKER)
        return CheckerPlanes(envelope.slots, CAPACITY)


@pytest.fixture
async def checker() -> AsyncIterator[Callable[..., Any]]:
    services: list[CheckerService] = []

    async def start(config: str, checker_id: str = "chk-a1", **settings: Any) -> Checker:
        clock = FakeClock(start=1_000.0, wall_offset=WALL_OFFSET)
        transport = MemoryTransport()
        service = await build_service(
            CheckerSettings(id=checker_id, az="a", config=config, **settings),
            clock=clock,
            environ=ENV,
            transport=transport,
        )
        events: list[Finish | Built] = []
        record = service.engine._record

        def logged(target: Target, verdict: int, started: float, finished: float) -> None:
            events.append(Finish(target.slot, verdict, started))
            record(target, verdict, started, finished)

        service.engine._record = logged  # type: ignore[method-assign]
        table_bytes = service.table_bytes

        def built() -> bytes:
            body = table_bytes()
            events.append(Built(clock.monotonic(), body))
            return body

        service.table_bytes = built  # type: ignore[method-assign]
        await service.start()
        services.append(service)
        return Checker(service, clock, transport, events, table_bytes)

    yield start
    for service in services:
        await service.stop()


# Loopback addresses of this file's own (all of 127/8 is loopback on Linux): a port seen
# closed on 127.0.0.1 may be taken by any other test process a moment later.
TOGGLE_HOST = "127.0.99.4"
HEALTHY_HOST = "127.0.99.3"
EMPTY_HOST = "127.0.99.5"  # nothing ever listens here


class Toggle:
    """A TCP target on a fixed loopback port that can stop listening and come back."""

    def __init__(self, host: str = TOGGLE_HOST) -> None:
        self.host = host
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def up(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(asyncio.Protocol, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        self._server = None


@pytest.fixture
async def toggle() -> AsyncIterator[Toggle]:
    target = Toggle()
    await target.up()
    yield target
    if target._server is not None:
        await target.down()


@pytest.fixture
async def healthy_server() -> AsyncIterator[Toggle]:
    target = Toggle(HEALTHY_HOST)
    await target.up()
    yield target
    await target.down()


@pytest.fixture
async def farm() -> AsyncIterator[TargetFarm]:
    farm = await loopback_farm(2)
    yield farm
    await farm.close()


def sample(service: CheckerService, name: str, labels: dict[str, str] | None = None) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


# --- history and LOCAL -----------------------------------------------------------------


async def test_history_shifts_in_each_outcome_and_local_errors_leave_it_alone(
    tmp_path: Path, checker: Callable[..., Any], toggle: Toggle, monkeypatch: pytest.MonkeyPatch
) -> None:
    run: Checker = await checker(
        write_config(tmp_path / "c.json", [check(4, toggle.port, kind="tcp", host=toggle.host)])
    )
    assert (await run.next_probe(4)).verdict == Reason.HEALTHY
    await toggle.down()
    assert (await run.next_probe(4)).verdict == Reason.REFUSED
    await toggle.up()
    assert (await run.next_probe(4)).verdict == Reason.HEALTHY

    now = run.planes()
    assert (now.last[4], now.history[4]) == (Reason.HEALTHY, 0b010)
    assert run.service.table[4] == Reason.HEALTHY  # `table` is the last plane
    pushed = await run.next_push()
    assert (pushed.last[4], pushed.history[4]) == (Reason.HEALTHY, 0b010)

    # The checker runs out of descriptors: the probe fails on our side, not the target's.
    def out_of_descriptors(*_: Any) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(probers, "open_socket", out_of_descriptors)
    assert (await run.next_probe(4)).verdict == Reason.LOCAL
    now = run.planes()
    assert (now.last[4], now.history[4]) == (Reason.LOCAL, 0b010)  # history untouched
    pushed = await run.next_push()
    assert (pushed.last[4], pushed.history[4]) == (Reason.LOCAL, 0b010)  # LOCAL, not STALE

    monkeypatch.undo()
    assert (await run.next_probe(4)).verdict == Reason.HEALTHY
    now = run.planes()
    assert (now.last[4], now.history[4]) == (Reason.HEALTHY, 0b0100)

    run.service.flush_metrics()
    assert sample(run.service, "urn_probe_local_errors_total") == 1
    assert sample(run.service, "urn_probes_total", {"result": "local"}) == 1
    assert sample(run.service, "urn_probes_total", {"result": "refused"}) == 1
    assert sample(run.service, "urn_probes_total", {"result": "healthy"}) == 3


async def test_history_keeps_the_last_eight_outcomes(
    tmp_path: Path, checker: Callable[..., Any], toggle: Toggle
) -> None:
    run: Checker = await checker(
        write_config(tmp_path / "c.json", [check(9, toggle.port, kind="tcp", host=toggle.host)])
    )
    await toggle.down()
    for _ in range(9):
        assert (await run.next_probe(9)).verdict == Reason.REFUSED
    assert run.planes().history[9] == 0xFF
    await toggle.up()
    assert (await run.next_probe(9)).verdict == Reason.HEALTHY
    now = run.planes()
    assert (now.last[9], now.history[9]) == (Reason.HEALTHY, 0xFE)
    assert not now.history[:9].any()
    assert not now.history[10:].any()


# --- STALE -----------------------------------------------------------------------------


async def test_slots_no_probe_vouched_for_lately_go_out_stale(
    tmp_path: Path, checker: Callable[..., Any]
) -> None:
    """Concurrency 1 and 10 hanging targets: about 3 probes of 10 run per interval, the
    rest are skipped, so most slots' newest result is older than stale_after. Each pushed
    table must say STALE for exactly those slots, and their result for the others."""
    farm = await loopback_farm(10, "blackhole")
    try:
        timeout = 0.3
        checks = [
            check(slot, t.port, path=t.path, timeout=timeout) for slot, t in enumerate(farm.specs)
        ]
        run: Checker = await checker(write_config(tmp_path / "c.json", checks), max_concurrency=1)
        limit = stale_after(1.0, timeout)
        assert limit == pytest.approx(2.25)
        await run.step_until(lambda: run.clock.monotonic() > 1_020.0, limit=25.0)
        run.service.flush_metrics()
        await run.service.stop()  # first: the farm's close would end the probe in flight
    finally:
        await farm.close()

    latest: dict[int, Finish] = {}
    stale_seen = fresh_seen = 0
    for event in run.events:
        if isinstance(event, Finish):
            assert event.verdict == Reason.TIMEOUT
            assert event.slot not in latest or latest[event.slot].started <= event.started
            latest[event.slot] = event
            continue
        last, history = event.planes.last, event.planes.history
        for slot in range(10):
            finish = latest.get(slot)
            if finish is None:
                assert (last[slot], history[slot]) == (0, 0)  # never probed: no data
                continue
            age = event.at - finish.started
            if abs(age - limit) < 1e-6:
                continue  # on the boundary itself: either answer is right
            if age > limit:
                assert last[slot] == Reason.STALE, (event.at, slot, age)
                stale_seen += 1
            else:
                assert last[slot] == Reason.TIMEOUT, (event.at, slot, age)
                fresh_seen += 1
            assert history[slot] & 1  # the history plane still says what the probes said
        assert not last[10:].any()
    assert stale_seen > 0
    assert fresh_seen > 0
    started, skipped = run.service.probes_started, sample(run.service, "urn_probes_skipped_total")
    assert skipped > started  # most probes were skipped, none of them failed
    assert len(run.finishes) <= started

    # The pushed bytes are the tables built, and urn_stale_slots counts the last one's.
    bodies = [
        decode(body, [TEST_PUSH_KEY], CAPACITY, TableKind.CHECKER).slots
        for _, body in run.transport.sent
    ]
    assert bodies == [b.body for b in run.built][: len(bodies)]
    assert {len(body) for _, body in run.transport.sent} == {
        encoded_size(CAPACITY, TableKind.CHECKER)
    }
    newest = run.built[-1].planes.last
    assert sample(run.service, "urn_stale_slots") == np.count_nonzero(newest == Reason.STALE)
    assert sample(run.service, "urn_stale_slots") == run.service.stale_count


async def test_a_target_that_times_out_every_probe_is_never_stale(
    tmp_path: Path, checker: Callable[..., Any]
) -> None:
    """timeout == interval: each probe's result lands just after the next probe starts,
    so a slot's newest result is up to two intervals old, and still not STALE."""
    farm = await loopback_farm(8, "blackhole")
    try:
        interval = 0.5
        checks = [
            check(slot, t.port, path=t.path, timeout=interval) for slot, t in enumerate(farm.specs)
        ]
        config = write_config(tmp_path / "c.json", checks, probe=interval, push=0.02)
        run: Checker = await checker(config)
        await run.step_until(lambda: {f.slot for f in run.finishes} == set(range(8)))
        first = len(run.events)
        await run.step_until(lambda: run.clock.monotonic() > 1_012.0, limit=20.0)
        run.service.flush_metrics()
        await run.service.stop()  # first: the farm's close would end the probes in flight
    finally:
        await farm.close()
    assert len(run.finishes) >= 8 * 20
    assert {f.verdict for f in run.finishes} == {Reason.TIMEOUT}
    latest: dict[int, float] = {}
    oldest = 0.0
    tables = 0
    for index, event in enumerate(run.events):
        if isinstance(event, Finish):
            latest[event.slot] = event.started
        elif index >= first:
            tables += 1
            assert set(event.planes.last[:8].tolist()) == {Reason.TIMEOUT}, event.at
            assert all(h & 1 for h in event.planes.history[:8])
            oldest = max(oldest, *(event.at - latest[slot] for slot in range(8)))
    assert tables >= 400
    # The pushes did see results almost two intervals old (and nearer stale_after than
    # one interval): the worst case was exercised.
    assert stale_after(interval, interval) == pytest.approx(0.5 + 0.5 + SWEEP_SLACK + 0.125)
    assert 2 * interval - 0.05 < oldest < stale_after(interval, interval)
    assert sample(run.service, "urn_stale_slots") == 0
    assert sample(run.service, "urn_probes_skipped_total") == 0


# --- admission -------------------------------------------------------------------------


async def test_a_late_wake_starts_its_backlog_in_batches_no_bigger_than_the_cap(
    tmp_path: Path, checker: Callable[..., Any]
) -> None:
    """The loop wakes 0.6 s late (as after a stall): what fell due meanwhile starts at
    once, but in batches of at most `per_wake`, each after the loop read what was ready,
    and nothing more than an interval late, so nothing is skipped."""
    checks = [check(slot, free_port(EMPTY_HOST), kind="tcp", host=EMPTY_HOST) for slot in range(60)]
    run: Checker = await checker(write_config(tmp_path / "c.json", checks))
    service = run.service
    cap = service._per_wake
    assert cap == per_wake(60, 1.0, tick_for(60, 1.0)) == BURST_FLOOR
    batches: list[tuple[float, int, bool]] = []
    launch = service.launch

    def counted(now: float) -> bool:
        before = service.probes_started
        more = launch(now)
        batches.append((now, service.probes_started - before, more))
        return more

    service.launch = counted  # type: ignore[method-assign]
    await run.step_until(lambda: service.probes_started > 0)
    run.clock._now += 0.6  # the loop's next wake comes late: a backlog
    await run.step()
    late = run.clock.monotonic() - STEP
    burst = []  # the wakes since the late one, up to the first that was not capped
    for at, n, more in batches:
        if at >= late - 0.01 and n:
            burst.append((n, more))
            if not more:
                break
    sizes = [n for n, _ in burst]
    assert len(sizes) >= 2, burst  # 0.6 s of 60 checks a second is more than one batch
    assert all(n == cap for n in sizes[:-1]), burst
    assert 0 < sizes[-1] <= cap, burst
    flags = [more for _, more in burst]
    assert flags == [True] * (len(sizes) - 1) + [False]
    due = service.schedule.next_due()
    assert due is not None
    assert due > late  # the backlog is gone
    assert sample(service, "urn_probes_skipped_total") == 0
    assert service._skipped == 0


# --- config changes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "cleared"),
    [
        ({"port": "healthy"}, True),
        ({"host": HEALTHY_HOST}, True),
        ({"failures": 2, "of_last": 3}, False),
    ],
    ids=["port", "host", "failures"],
)
async def test_a_new_target_starts_from_no_data_other_edits_keep_the_slot(
    tmp_path: Path,
    checker: Callable[..., Any],
    healthy_server: Toggle,
    change: dict[str, Any],
    cleared: bool,
) -> None:
    healthy = healthy_server.port
    # Refused first: on a closed port, or at an address where the healthy port is not.
    before = check(3, free_port(HEALTHY_HOST), kind="tcp", host=HEALTHY_HOST)
    if "host" in change:
        before = check(3, healthy, kind="tcp", host=EMPTY_HOST)
    path = tmp_path / "c.json"
    run: Checker = await checker(write_config(path, [before]))
    for _ in range(2):
        assert (await run.next_probe(3)).verdict == Reason.REFUSED
    assert (run.planes().last[3], run.planes().history[3]) == (Reason.REFUSED, 0b11)

    after = {**before, **change}
    if change.get("port") == "healthy":
        after["port"] = healthy
    write_config(path, [after])
    started = run.service.probes_started
    assert await run.service.reload()
    assert run.service.probes_started == started  # nothing probed the new target yet
    now = run.planes()
    mark = len(run.events)
    if cleared:
        assert (now.last[3], now.history[3]) == (0, 0)
        assert (await run.next_probe(3)).verdict == Reason.HEALTHY
        assert (run.planes().last[3], run.planes().history[3]) == (Reason.HEALTHY, 0)
        # Every table pushed before that probe said no data (not STALE, not REFUSED).
        pushed = [e for e in run.events[mark:-1] if isinstance(e, Built)]
        assert all((b.planes.last[3], b.planes.history[3]) == (0, 0) for b in pushed)
    else:
        assert (now.last[3], now.history[3]) == (Reason.REFUSED, 0b11)
        assert (await run.next_probe(3)).verdict == Reason.REFUSED
        assert (run.planes().last[3], run.planes().history[3]) == (Reason.REFUSED, 0b111)


async def test_the_old_targets_probe_in_flight_never_lands_on_the_new_target(
    tmp_path: Path, checker: Callable[..., Any], farm: TargetFarm, raw_server: Callable[[str], Any]
) -> None:
    hold = await raw_server("hold")
    path = tmp_path / "c.json"
    run: Checker = await checker(write_config(path, [check(2, hold)]))
    for _ in range(2):
        assert (await run.next_probe(2, hangs=True)).verdict == Reason.TIMEOUT
    started = run.service.probes_started
    await run.step_until(lambda: run.service.probes_started > started)
    assert run.service.engine.in_flight == 1  # the old target's third probe hangs

    target = farm.specs[0]
    write_config(path, [check(2, target.port, path=target.path)])
    assert await run.service.reload()
    assert (run.planes().last[2], run.planes().history[2]) == (0, 0)
    mark = len(run.events)
    done = len(run.finishes)
    await run.step_until(lambda: run.service.engine.in_flight == 0)
    assert run.finishes[done].verdict == Reason.TIMEOUT  # it ended, and was dropped
    assert (run.planes().last[2], run.planes().history[2]) == (0, 0)
    assert (await run.next_probe(2)).verdict == Reason.HEALTHY
    assert (run.planes().last[2], run.planes().history[2]) == (Reason.HEALTHY, 0)
    pushed = [e for e in run.events[mark:-1] if isinstance(e, Built)]
    assert pushed  # the old probe's timeout came, and pushes went out, before the new probe
    assert all((b.planes.last[2], b.planes.history[2]) == (0, 0) for b in pushed)


# --- phases ----------------------------------------------------------------------------


async def test_listed_checkers_probe_each_check_at_evenly_spaced_wall_clock_instants(
    tmp_path: Path,
) -> None:
    """Three checkers started at different moments, with different monotonic clocks, each
    probe a check 1/3 of an interval after the previous one, on the wall-clock grid."""
    listed = ["c1", "c2", "c3"]
    interval = 0.9
    config = write_config(
        tmp_path / "c.json",
        [check(slot, 9, kind="tcp") for slot in range(5)],
        probe=interval,
        assignment={"checkers": listed},
    )
    document = parse_document(json.loads((tmp_path / "c.json").read_text()))
    dues: dict[str, dict[int, float]] = {}
    for i, checker_id in enumerate(listed):
        clock = FakeClock(start=50.0 + 17.3 * i, wall_offset=1_700_000_000.123 + 0.41 * i)
        service = await build_service(
            CheckerSettings(id=checker_id, az="a", config=config),
            clock=clock,
            environ=ENV,
            transport=MemoryTransport(),
        )
        wall = clock.time() - clock.monotonic()
        schedule = service.schedule
        dues[checker_id] = {
            slot: ((schedule.epoch + offset + wall) / interval) % 1.0
            for slot, offset in zip(schedule.slots, schedule.offsets, strict=True)
        }
    for c in document.checks:
        for i, checker_id in enumerate(listed):
            assert position(document, checker_id, c) == (i, 3)
            expected = spread_phase(check_key(c), i, 3)
            got = dues[checker_id][c.slot]
            assert math.isclose(got, expected, abs_tol=1e-5) or math.isclose(
                abs(got - expected), 1.0, abs_tol=1e-5
            ), (checker_id, c.slot, got, expected)
