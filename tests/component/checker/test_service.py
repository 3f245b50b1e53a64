"""The checker service with real loopback targets and an in-memory push transport."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from checker.admission import TICK_MAX
from checker.app import SERVICE, build_service, make_app
from checker.service import CheckerService, observe_many
from checker.settings import CheckerSettings, parse_selector
from sim.chaos import member_lateness
from sim.testing import (
    TEST_PUSH_KEY,
    MemoryTransport,
    document_dict,
    free_port,
    step_until,
    wait_until,
)
from sim.testing.bounds import LoopLag, slack
from sim.testing.targets import ThreadedTarget, loopback_farm
from urn.clock import FakeClock
from urn.errors import StartupError
from urn.http import serve
from urn.metrics import PROBE_BUCKETS, CheckerMetrics
from urn.table import CheckerPlanes, Reason
from urn.wire import Envelope, TableKind, decode, encoded_size

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from sim.farm import TargetFarm
    from sim.farm_layout import TargetSpec

ENV = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}
AGGREGATORS = ["http://agg-a.test", "http://agg-b.test"]


def write_config(path: Path, checks: list[dict[str, Any]], **top: Any) -> str:
    top.setdefault("intervals", {"probe": 0.2, "push": 0.2, "config": 60})
    top.setdefault("aggregators", AGGREGATORS)
    path.write_text(json.dumps(document_dict(checks, **top)))
    return str(path)


def http_check(slot: int, port: int, **extra: Any) -> dict[str, Any]:
    return {
        "slot": slot,
        "name": f"c{slot}",
        "type": "http",
        "host": "127.0.0.1",
        "port": port,
        "path": "/",
        "timeout": 0.15,
        **extra,
    }


def farm_check(slot: int, target: TargetSpec, **extra: Any) -> dict[str, Any]:
    return http_check(slot, target.port, path=target.path, **extra)


@pytest.fixture
async def farm() -> AsyncIterator[TargetFarm]:
    farm = await loopback_farm(4)
    yield farm
    await farm.close()


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., Any]]:
    services: list[CheckerService] = []

    async def start(config: str, transport: MemoryTransport, **settings: Any) -> CheckerService:
        defaults: dict[str, Any] = {"id": "chk-a1", "az": "a", "config": config}
        service = await build_service(
            CheckerSettings(**{**defaults, **settings}),
            environ=ENV,
            transport=transport,
        )
        await service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        await service.stop()


def planes(envelope: Envelope) -> CheckerPlanes:
    return CheckerPlanes(envelope.slots, envelope.capacity)


def tables(transport: MemoryTransport, peer: str = AGGREGATORS[0]) -> list[Envelope]:
    return [
        decode(body, [TEST_PUSH_KEY], 64, TableKind.CHECKER)
        for url, body in transport.sent
        if url.startswith(peer)
    ]


async def test_probes_and_pushes_the_whole_table_to_every_aggregator(tmp_path, farm, running):
    config = write_config(
        tmp_path / "c.json",
        [
            farm_check(0, farm.specs[0]),
            farm_check(5, farm.specs[1], search="ok"),
            farm_check(6, farm.specs[2], search="absent"),
            {
                "slot": 9,
                "name": "tcp",
                "type": "tcp",
                "host": "127.0.0.1",
                "port": free_port(),
                "timeout": 0.15,
            },
        ],
    )
    transport = MemoryTransport()
    service = await running(config, transport)

    def settled() -> bool:
        got = tables(transport)
        return bool(got) and planes(got[-1]).last[:10].tobytes() == bytes(
            [1, 0, 0, 0, 0, 1, 6, 0, 0, 3]
        )

    await wait_until(settled, message="table with every verdict")
    newest = planes(tables(transport)[-1])
    # Each slot's newest outcome is bit 0 of its history: set for the two failing ones.
    assert [int(h) & 1 for h in newest.history[:10]] == [0, 0, 0, 0, 0, 0, 1, 0, 0, 1]
    assert not newest.last[10:].any()
    assert not newest.history[10:].any()  # unassigned slots: no data, no history
    for peer in AGGREGATORS:
        envelopes = tables(transport, peer)
        assert envelopes, peer
        assert {e.sender for e in envelopes} == {"chk-a1"}
        assert {e.az for e in envelopes} == {"a"}
        assert {e.capacity for e in envelopes} == {64}
        assert {e.config_digest for e in envelopes} == {service.document.digest}
        sequences = [e.sequence for e in envelopes]
        assert sequences == sorted(sequences)
        assert len(set(sequences)) == len(sequences)
        assert {len(e.slots) for e in envelopes} == {2 * 64}  # last plane + history plane
    assert {len(body) for _, body in transport.sent} == {encoded_size(64, TableKind.CHECKER)}
    assert service.table.dtype == np.uint8
    assert len(service.table) == 64


async def test_sequence_is_seeded_from_wall_time(tmp_path, running):
    transport = MemoryTransport()
    service = await running(write_config(tmp_path / "c.json", []), transport)
    await wait_until(lambda: bool(transport.sent))
    first = tables(transport)[0]
    assert first.sequence > int(service.clock.time() * 1e9) - 10**11  # within 100 s of now


async def test_config_pass_adds_and_removes_checks_without_moving_others(tmp_path, farm, running):
    path = tmp_path / "c.json"
    keep = farm_check(1, farm.specs[0])
    config = write_config(path, [keep, farm_check(2, farm.specs[1])])
    transport = MemoryTransport()
    service = await running(config, transport)
    await wait_until(lambda: bool(service.table[1] == 1 and service.table[2] == 1))
    before = dict(zip(service.schedule.slots, service.schedule.offsets, strict=True))
    write_config(path, [keep, farm_check(3, farm.specs[2])])
    assert await service.reload()
    assert service.table[2] == 0  # removed: back to no data at once
    after = dict(zip(service.schedule.slots, service.schedule.offsets, strict=True))
    assert after[1] == before[1]
    assert set(after) == {1, 3}
    await wait_until(lambda: bool(service.table[3] == 1))
    assert service.table[2] == 0


async def test_bad_document_keeps_the_last_good_one(tmp_path, farm, running):
    path = tmp_path / "c.json"
    config = write_config(path, [farm_check(1, farm.specs[0])])
    service = await running(config, MemoryTransport())
    path.write_text("{not json")
    assert not await service.reload()
    assert list(service.plan.checks) == [1]
    write_config(
        path,
        [farm_check(1, farm.specs[0])],
        assignment={"shuffle_shard": 1, "checkers": ["someone-else"]},
    )
    assert not await service.reload()  # this checker is not listed: rejected whole
    assert "does not list this checker" in (service.loader.last_error or "")
    assert list(service.plan.checks) == [1]


async def test_unlisted_checker_under_sharding_cannot_start(tmp_path, running):
    config = write_config(
        tmp_path / "c.json", [], assignment={"shuffle_shard": 1, "checkers": ["chk-b1"]}
    )
    with pytest.raises(StartupError, match="does not list this checker 'chk-a1'"):
        await running(config, MemoryTransport())


async def test_sidecar_probes_only_selected_checks(tmp_path, farm, running):
    config = write_config(
        tmp_path / "c.json",
        [farm_check(1, farm.specs[0], labels={"app": "shop"}), farm_check(2, farm.specs[1])],
    )
    transport = MemoryTransport()
    service = await running(config, transport, select=(parse_selector("label=app=shop"),))
    await wait_until(lambda: bool(len(transport.sent) >= 4 and service.table[1] == 1))
    assert service.table[2] == 0
    newest = planes(tables(transport)[-1])  # the whole table goes out, unselected slots too
    assert len(newest.last) == 64
    assert newest.last[1] == Reason.HEALTHY
    assert newest.last[2] == 0
    assert newest.history[2] == 0


async def test_slow_or_dead_aggregator_never_delays_the_others(tmp_path, running):
    transport = MemoryTransport()
    transport.delay[AGGREGATORS[1] + "/v1/table"] = 10.0
    service = await running(write_config(tmp_path / "c.json", []), transport)
    await wait_until(lambda: len(tables(transport, AGGREGATORS[0])) >= 3)
    assert tables(transport, AGGREGATORS[1]) == []
    await wait_until(
        lambda: service.metrics.pushes.labels(AGGREGATORS[1], "timeout")._value.get() >= 1
    )


def lateness(service: CheckerService, lag: LoopLag) -> str:
    """How late the checker's loops ran (its own metrics) and this process's loop did."""
    samples = {}
    for family in service.metrics.registry.collect():
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return f"{member_lateness('checker', samples)}; {lag}"


async def test_all_blackholed_fleet_keeps_schedule_table_size_and_probe_count(tmp_path, running):
    """Constant work: every interval still probes each check once and pushes the same bytes.

    Only a stall of a whole interval (a skip) could fail this test, so the interval is
    0.4 s (twice the 0.2 s a blackholed probe takes) times $URN_TEST_SLACK."""
    farm = await loopback_farm(20)
    lag = LoopLag()
    lag.start()
    try:
        interval = 0.4 * slack()
        checks = [farm_check(slot, t, timeout=0.2) for slot, t in enumerate(farm.specs)]
        config = write_config(
            tmp_path / "c.json",
            checks,
            intervals={"probe": interval, "push": interval, "config": 60},
        )
        transport = MemoryTransport()
        service = await running(config, transport)

        async def cycles(count: int) -> list[tuple[int, int, int]]:
            start = len(service.cycle_log)
            await wait_until(lambda: len(service.cycle_log) >= start + count, timeout=30)
            return list(service.cycle_log)[start + 1 : start + count]

        await wait_until(lambda: bool(np.all(service.table[:20] == Reason.HEALTHY)))
        steady = await cycles(4)
        steady_sizes = {len(body) for _, body in transport.sent}

        await farm.set_mode("blackhole", az="a")
        await wait_until(lambda: bool(np.all(service.table[:20] == Reason.TIMEOUT)), timeout=30)
        sent_before = len(transport.sent)
        dark = await cycles(4)

        for log in (steady, dark):
            numbers = [cycle for cycle, _, _ in log]
            none_missed = list(range(numbers[0], numbers[0] + len(numbers)))
            assert numbers == none_missed, lateness(service, lag)
            assert {(started, skipped) for _, started, skipped in log} == {(20, 0)}, lateness(
                service, lag
            )
        assert farm.served["a"]["blackhole"] > 0  # the dark targets really were connected to
        assert {len(body) for _, body in transport.sent[sent_before:]} == steady_sizes
        assert steady_sizes == {encoded_size(64, TableKind.CHECKER)}
        assert service.metrics.probes_skipped._value.get() == 0, lateness(service, lag)
    finally:
        await lag.stop()
        await farm.close()


async def test_too_little_concurrency_is_said_and_late_probes_are_not_failures(
    tmp_path, running, caplog
):
    farm = await loopback_farm(10, "blackhole")
    try:
        checks = [farm_check(slot, t) for slot, t in enumerate(farm.specs)]
        config = write_config(tmp_path / "c.json", checks)
        service = await running(config, MemoryTransport(), max_concurrency=2)
        metrics = service.metrics
        assert metrics.concurrency_needed._value.get() > metrics.concurrency_limit._value.get()
        assert metrics.concurrency_limit._value.get() == 2
        await wait_until(lambda: metrics.probes_skipped._value.get() > 0, timeout=20)
        assert service.engine.in_flight <= 2
        lateness_count = metrics.registry.get_sample_value("urn_probe_lateness_seconds_count")
        assert lateness_count is not None
        assert lateness_count > 0
        failures = metrics.registry.get_sample_value("urn_probes_total", {"result": "timeout"})
        assert failures is not None
        assert failures <= service.probes_started  # only probes that ran can fail
    finally:
        await farm.close()


async def test_the_checker_sizes_itself_by_the_fd_limit_it_is_given(tmp_path):
    checks = [http_check(i, 9) for i in range(40)]
    config = write_config(tmp_path / "c.json", checks)
    settings = CheckerSettings(id="chk-a1", az="a", config=config, fd_limit=(300, 400))
    service = await build_service(settings, environ=ENV, transport=MemoryTransport())
    # 300 descriptors less the 256 kept back; the config alone would allow far more.
    assert service._limit == 300 - settings.fd_reserve
    assert service.metrics.fd_limit._value.get() == 300


async def test_app_serves_metrics_and_healthz(tmp_path, farm):
    config = write_config(tmp_path / "c.json", [farm_check(4, farm.specs[0])])
    registry = CollectorRegistry()
    transport = MemoryTransport()
    app = make_app(
        CheckerSettings(id="chk-m", az="b", config=config),
        registry=registry,
        environ=ENV,
        transport=transport,
    )
    runner, port = await serve(app, "127.0.0.1", 0)
    try:
        service = app[SERVICE].service
        await wait_until(lambda: bool(service.pushes >= 3 and service.table[4] == 1))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                facts = await response.json()
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
        assert facts["id"] == "chk-m"
        assert facts["checks"] == 1
        assert facts["last_push"] == {AGGREGATORS[0]: "ok", AGGREGATORS[1]: "ok"}
        assert 'urn_probes_total{result="healthy"}' in text
        assert "urn_probe_lateness_seconds_bucket" in text
        assert "urn_probe_concurrency_needed" in text
        assert "urn_probe_local_errors_total 0.0" in text
        assert "urn_stale_slots 0.0" in text  # a healthy target probed every interval
        assert registry.get_sample_value("urn_checks_assigned") == 1
        assert registry.get_sample_value("urn_tick_cpu_seconds_count") >= 1
        assert registry.get_sample_value(
            "urn_push_bytes_total", {"peer": AGGREGATORS[0]}
        ) >= encoded_size(64, TableKind.CHECKER)
    finally:
        await runner.cleanup()
    assert service.engine.in_flight == 0


def test_observe_many_matches_observe():
    values = [0.0, 0.0004, 0.0005, 0.0006, 0.003, 0.2, 1.0, 7.0, 100.0]
    one, many = CollectorRegistry(), CollectorRegistry()
    a, b = CheckerMetrics(one), CheckerMetrics(many)
    for value in values:
        a.probe_duration.observe(value)
    observe_many(b.probe_duration, values)
    observe_many(b.probe_duration, [])
    compared = 0
    for sample in one.collect():
        if sample.name != "urn_probe_duration_seconds":
            continue
        for s in sample.samples:
            if s.name.endswith("_created"):
                continue
            assert many.get_sample_value(s.name, s.labels) == pytest.approx(s.value), s
            compared += 1
    assert compared == len(PROBE_BUCKETS) + 3  # every bucket and +Inf, _count and _sum
    assert many.get_sample_value("urn_probe_duration_seconds_count") == len(values)


def stall(seconds: float) -> None:
    """Block the event loop, as a CPU-starved checker would be blocked."""
    time.sleep(seconds)


async def test_loop_stalls_never_turn_answered_probes_into_timeouts(
    tmp_path: Path, running: Callable[..., Any]
):
    """Healthy targets answer in time while our loop is blocked longer than the timeout.

    Each stall begins right after a batch of probes has started (connects in flight), so
    the stall interrupts them between stages: before the fix, the request went out late
    and the sweep failed the probe as a timeout. Probes that fell due during a stall are
    started late or skipped and counted as such, never failed.
    """
    interval, timeout, stall_for = 0.3, 0.25, 0.4
    with ThreadedTarget(delay=0.01) as target:
        checks = [http_check(slot, target.port, timeout=timeout) for slot in range(40)]
        intervals = {"probe": interval, "push": 0.2, "config": 60}
        config = write_config(tmp_path / "urn.json", checks, intervals=intervals)
        service = await running(config, MemoryTransport())
        loop = asyncio.get_running_loop()
        stalls: list[float] = []
        launch = service.launch

        def launch_then_stall(now: float) -> None:
            before = service.probes_started
            launch(now)
            if len(stalls) < 4 and service.probes_started > before and target.answered >= 40:
                stalls.append(now)
                loop.call_soon(stall, stall_for)  # after every new probe's connect began

        service.launch = launch_then_stall  # type: ignore[method-assign]
        await wait_until(lambda: len(stalls) == 4, timeout=20, message="four stalls")
        answered = target.answered
        await wait_until(lambda: target.answered >= answered + 80, timeout=20)
        service.flush_metrics()
    registry = service.metrics.registry

    def probes(reason: Reason) -> float:
        return registry.get_sample_value("urn_probes_total", {"result": reason.label}) or 0

    assert probes(Reason.TIMEOUT) == 0
    assert probes(Reason.HEALTHY) >= 120
    assert all(probes(r) == 0 for r in Reason if r not in (Reason.HEALTHY, Reason.NO_DATA))
    assert set(service.table[:40].tolist()) == {int(Reason.HEALTHY)}
    # Each stall outlasted the interval: the probes it swallowed were skipped and counted.
    assert (registry.get_sample_value("urn_probes_skipped_total") or 0) > 0
    lateness_count = registry.get_sample_value("urn_probe_lateness_seconds_count") or 0
    on_time = registry.get_sample_value("urn_probe_lateness_seconds_bucket", {"le": "0.1"}) or 0
    assert lateness_count - on_time > 0  # and the ones started late were measured as late


async def test_the_probe_loop_yields_even_when_each_wake_overruns_the_next(
    tmp_path: Path, running: Callable[..., Any]
):
    """A wake whose work runs past the next grid point still gives the loop back before
    the next one: answers are read and other tasks run (pushes, config passes)."""
    with ThreadedTarget() as target:
        checks = [http_check(slot, target.port) for slot in range(10)]
        config = write_config(tmp_path / "c.json", checks)
        service = await running(config, MemoryTransport())
        launch = service.launch
        slow = 30

        def overrunning(now: float) -> bool:
            nonlocal slow
            if slow > 0:
                slow -= 1
                time.sleep(2 * TICK_MAX)  # this wake's work outlasts the next grid point
            return launch(now)

        beats: list[float] = []

        async def other_task() -> None:
            while True:
                beats.append(time.monotonic())
                await asyncio.sleep(0)

        service.launch = overrunning  # type: ignore[method-assign]
        task = asyncio.create_task(other_task())
        try:
            await wait_until(lambda: slow == 0, timeout=20, message="the slow wakes")
        finally:
            task.cancel()
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert len(beats) >= 20
    # Each wake blocks the loop for 2 ticks; between two of them the loop must run the
    # other task. A loop that never yielded would block it for all 30 at once.
    assert max(gaps) < 5 * TICK_MAX * slack(), max(gaps)


async def test_pushes_land_on_the_fleet_wide_wall_clock_instants(tmp_path):
    """Every checker pushes at k * push on the wall clock, whenever it started, so
    aggregators can tick just after (intervals.aggregate_lag)."""
    config = write_config(
        tmp_path / "c.json",
        [http_check(0, free_port())],
        intervals={"probe": 1.0, "push": 0.25, "config": 60},
    )
    clock = FakeClock(start=500.0, wall_offset=1_000.137)  # wall 1500.137: off the grid
    transport = MemoryTransport()
    service = await build_service(
        CheckerSettings(id="chk-a1", az="a", config=config),
        clock=clock,
        environ=ENV,
        transport=transport,
    )
    await service.start()
    try:
        await step_until(clock, lambda: len(tables(transport)) >= 4, step=0.01, message="pushes")
    finally:
        await service.stop()
    stamps = [e.generated_at for e in tables(transport)]
    assert stamps[0] == pytest.approx(1500.25, abs=0.011)
    for stamp in stamps:
        assert (stamp / 0.25) == pytest.approx(round(stamp / 0.25), abs=0.05)
