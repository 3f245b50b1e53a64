"""One aggregator on a loopback port with a FakeClock and an in-memory push transport."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from unittest.mock import ANY

import aiohttp
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from aggregator.app import SERVICE, make_app
from aggregator.settings import AggregatorSettings
from sim.testing import (
    TEST_PUSH_KEY,
    FakeClock,
    MemoryTransport,
    document_dict,
    signed_table,
    step_until,
    wait_until,
)
from urn.http import serve
from urn.table import Reason, Status, aggregated_byte
from urn.wire import Envelope, TableKind, decode, encoded_size

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from aggregator.service import Aggregator

CAPACITY = 64
RESOLVERS = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
CHECKS: list[dict[str, Any]] = [
    {"slot": 0, "name": "web-a", "type": "tcp", "host": "127.0.0.1", "port": 1,
     "failures": 2, "of_last": 3},
    {"slot": 1, "name": "web-b", "type": "tcp", "host": "127.0.0.1", "port": 2,
     "failures": 2, "of_last": 3},
    {"slot": 5, "name": "web-all", "type": "calculated", "children": [0, 1],
     "healthy_if_at_least": 2},
]  # fmt: skip
ENV = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}


def write_config(path: Path, checks: list[dict[str, Any]] = CHECKS, **top: Any) -> None:
    document = document_dict(
        checks,
        capacity=CAPACITY,
        resolvers=RESOLVERS,
        staleness=5.0,
        intervals={"probe": 1.0, "push": 1.0, "config": 5.0},
        **top,
    )
    path.write_text(json.dumps(document))


@dataclass
class Harness:
    service: Aggregator
    clock: FakeClock
    transport: MemoryTransport
    registry: CollectorRegistry
    session: aiohttp.ClientSession
    base: str
    config: Path
    sequence: int = 0

    async def post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.base + "/v1/table", data=body) as response:
            return response.status, await response.json()

    async def push(
        self,
        sender: str,
        *,
        az: str = "a",
        history: dict[str, int] | None = None,
        digest: bytes = b"\0" * 32,
        **slots: int,
    ) -> int:
        """A checker table: `last` bytes by slot name; `history` bits (bit 0 newest) by
        slot name, else each slot's one last probe."""
        last = bytearray(CAPACITY)
        for name, value in slots.items():
            last[int(name.removeprefix("s"))] = value
        bits = bytearray(1 if value >= 2 else 0 for value in last)
        for name, value in (history or {}).items():
            bits[int(name.removeprefix("s"))] = value
        self.sequence += 1
        body = signed_table(
            bytes(last),
            sender=sender,
            az=az,
            sequence=self.sequence,
            generated_at=self.clock.time(),
            digest=digest,
            history=bytes(bits),
        )
        status, _ = await self.post(body)
        return status

    async def tick(self) -> np.ndarray:
        """Advance one push interval and return the table pushed to the first resolver."""
        return np.frombuffer((await self.tick_envelope()).slots, np.uint8)

    async def tick_envelope(self) -> Envelope:
        """Advance one push interval and return the envelope pushed to the first resolver."""
        ticks = self.service._ticks
        sent = len(self.transport.sent)
        await step_until(self.clock, lambda: self.service._ticks > ticks, message="a tick")
        await wait_until(lambda: len(self.transport.sent) >= sent + 2, message="a push")
        _, body = self.transport.sent[-2]
        return decode(body, [TEST_PUSH_KEY], CAPACITY, TableKind.AGGREGATE)

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as response:
            text = await response.text()
            return response.status, json.loads(text) if "json" in response.content_type else text

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@asynccontextmanager
async def running(
    tmp_path: Path,
    warm_up: float | None = 0.0,
    checks: list[dict[str, Any]] = CHECKS,
    **top: Any,
) -> AsyncIterator[Harness]:
    config = tmp_path / "urn.json"
    write_config(config, checks, **top)
    clock = FakeClock()
    transport = MemoryTransport()
    registry = CollectorRegistry()
    settings = AggregatorSettings(id="agg-1", config=str(config), listen_port=0, warm_up=warm_up)
    app = make_app(settings, clock=clock, registry=registry, environ=ENV, transport=transport)
    runner, port = await serve(app, "127.0.0.1", 0)
    service = app[SERVICE].service
    try:
        async with aiohttp.ClientSession() as session:
            harness = Harness(
                service, clock, transport, registry, session, f"http://127.0.0.1:{port}", config
            )
            await step_until(clock, lambda: service._ticks >= 1, message="first tick")
            yield harness
    finally:
        await runner.cleanup()


@pytest.fixture
async def agg(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as harness:
        yield harness


async def test_rejected_tables_change_nothing_and_are_counted(agg: Harness) -> None:
    now = agg.clock.time()
    good = signed_table(bytes(CAPACITY), sender="c1", sequence=10, generated_at=now)
    cases = [
        (signed_table(bytes(CAPACITY), key=b"k" * 32, generated_at=now), 401, "bad_mac"),
        (good + b"\0" * 8, 413, "oversized"),
        (good[:-5], 400, "truncated"),
        (b"hello", 400, "undecodable"),
        (signed_table(bytes(CAPACITY - 8), generated_at=now), 400, "capacity"),
        # a bigger-capacity table is refused on its Content-Length first
        (signed_table(bytes(CAPACITY + 8), generated_at=now), 413, "oversized"),
        (signed_table(bytes(CAPACITY), generated_at=now - 100), 400, "skew"),
        (signed_table(bytes(CAPACITY), kind=TableKind.AGGREGATE, generated_at=now), 400, "kind"),
    ]
    for body, status, reason in cases:
        assert await agg.post(body) == (status, {"error": reason, "detail": ANY})
    assert agg.service.window.senders == []
    for _, _, reason in cases:
        expected = sum(1 for _, _, r in cases if r == reason)
        assert agg.sample("urn_tables_rejected_total", reason=reason) == expected
    assert (await agg.post(good))[0] == 200
    assert agg.service.window.senders == ["c1"]
    assert await agg.post(good) == (409, {"error": "replayed", "detail": ANY})
    assert [e.sequence for e in agg.service.window.history("c1")] == [10]
    assert agg.sample("urn_tables_received_total", sender="c1", result="accepted") == 1
    assert agg.sample("urn_tables_received_total", sender="c1", result="replayed") == 1


async def test_every_tick_pushes_the_whole_table_to_every_resolver(agg: Harness) -> None:
    sizes = set()
    for _ in range(3):
        await agg.tick()
        sizes.update(len(body) for _, body in agg.transport.sent)
    assert sizes == {encoded_size(CAPACITY, TableKind.AGGREGATE)}
    urls = [url for url, _ in agg.transport.sent]
    assert urls == [r + "/v1/table" for r in RESOLVERS] * agg.service._ticks
    sequences = [
        decode(body, [TEST_PUSH_KEY], CAPACITY, TableKind.AGGREGATE).sequence
        for _, body in agg.transport.sent[::2]
    ]
    assert sequences == sorted(set(sequences))
    for resolver in RESOLVERS:
        assert agg.sample("urn_pushes_total", peer=resolver, result="ok") == agg.service._ticks


async def test_ticks_come_aggregate_lag_after_the_checkers_push_instants(agg: Harness) -> None:
    """Checkers push on the wall-clock instants k * push; aggregators tick 0.1 x push after."""
    for _ in range(3):
        await agg.tick()
    stamps = [
        decode(body, [TEST_PUSH_KEY], CAPACITY, TableKind.AGGREGATE).generated_at
        for _, body in agg.transport.sent
    ]
    assert agg.service.document.intervals.aggregate_lag == 0.1
    for stamp in stamps:
        assert stamp % 1.0 == pytest.approx(0.1, abs=0.011)


async def test_slots_flip_and_recover_through_http(agg: Harness) -> None:
    refused = int(Reason.REFUSED)
    assert await agg.push("c1", az="a", s0=1, s1=1) == 200
    assert await agg.push("c2", az="b", s0=1, s1=1) == 200
    envelope = await agg.tick_envelope()
    table = np.frombuffer(envelope.slots, np.uint8)
    assert table[[0, 1, 5]].tolist() == [1, 1, 1]
    assert (envelope.checkers, envelope.azs) == (2, 2)  # who built it travels with it
    # one failed probe each: 1 of the last 3, N = 2
    await agg.push("c1", az="a", s0=refused, s1=1)
    await agg.push("c2", az="b", s0=refused, s1=1)
    assert (await agg.tick())[[0, 1, 5]].tolist() == [1, 1, 1]
    # two of the last three, at both checkers
    await agg.push("c1", az="a", s0=refused, s1=1, history={"s0": 0b11})
    await agg.push("c2", az="b", s0=refused, s1=1, history={"s0": 0b11})
    table = await agg.tick()
    down = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    assert table[[0, 1, 5]].tolist() == [down, 1, down]
    assert table[2] == Status.UNKNOWN  # unconfigured
    # recovered: one of the last three
    await agg.push("c1", az="a", s0=1, s1=1, history={"s0": 0b1000})
    await agg.push("c2", az="b", s0=1, s1=1, history={"s0": 0b100})
    table = await agg.tick()
    assert table[[0, 1, 5]].tolist() == [1, 1, 1]


async def test_one_azs_checkers_alone_do_not_take_a_slot_down(agg: Harness) -> None:
    refused = int(Reason.REFUSED)
    for sender, az in (("c1", "a"), ("c2", "a")):
        await agg.push(sender, az=az, s0=refused, s1=refused, history={"s0": 7, "s1": 7})
    await agg.push("c3", az="b", s0=1, s1=refused, history={"s1": 7})
    table = await agg.tick()
    down = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    # slot 0: 2 of 3 say down, but all from AZ a while AZ b says healthy
    assert table[[0, 1]].tolist() == [Status.HEALTHY, down]
    _, body = await agg.get("/v1/slots/0")
    assert body["quorum"]["outcome"].startswith("healthy: only AZ a judges it unhealthy")


async def test_slot_explanation(agg: Harness) -> None:
    assert (await agg.get("/v1/slots/abc"))[0] == 400
    status, body = await agg.get(f"/v1/slots/{CAPACITY}")
    assert status == 404
    assert "outside 0..63" in body["detail"]
    timeout = int(Reason.TIMEOUT)
    await agg.push("c1", az="a", s0=timeout, history={"s0": 0b011})
    await agg.clock.advance(0.25)
    await agg.push("c2", az="b", s0=timeout, history={"s0": 0b110})
    await agg.tick()
    status, body = await agg.get("/v1/slots/0")
    assert status == 200
    assert body["verdict"] == {
        "status": "unhealthy",
        "reason": "timeout",
        "byte": aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT),
    }
    assert body["rule"] == {
        "failures": 2,
        "of_last": 3,
        "unhealthy_at": 0.51,
        "min_checkers": 1,
        "cross_az": True,
    }
    assert body["check"] == "web-a"
    assert body["aggregator"] == "agg-1"
    rows = body["checkers"]
    assert [
        (r["checker"], r["az"], r["verdict"], r["last"], r["history"], r["failed_of_last"])
        for r in rows
    ] == [
        ("c1", "a", "unhealthy", "timeout", "00000011", 2),
        ("c2", "b", "unhealthy", "timeout", "00000110", 2),
    ]
    assert rows[0]["age"] > rows[1]["age"]
    assert body["quorum"]["outcome"] == "unhealthy: 2 of 2 checkers judge it unhealthy"
    status, body = await agg.get("/v1/slots/5")
    assert body["rule"] == {"healthy_if_at_least": 2}
    assert [c["status"] for c in body["children"]] == ["unhealthy", "unknown"]
    status, body = await agg.get("/v1/slots/9")
    assert body["verdict"]["status"] == "unknown"
    assert "no check" in body["rule"]


async def test_healthz_and_metrics(agg: Harness) -> None:
    reset = int(Reason.RESET)
    await agg.push("c1", s0=1, s1=reset)
    await agg.tick()
    status, body = await agg.get("/healthz")
    assert status == 200
    assert body["ok"] is True
    assert body["fresh_checkers"] == ["c1"]
    assert body["last_tick_age"] == 0
    status, text = await agg.get("/metrics")
    assert status == 200
    # web-b's checker saw 1 failure where N = 2: healthy, and so is web-all
    assert 'urn_slots{status="healthy"} 3.0' in text
    assert 'urn_slots{status="unknown"} 0.0' in text
    await agg.push("c1", s0=1, s1=reset, history={"s1": 0b11})
    await agg.tick()
    _, text = await agg.get("/metrics")
    assert 'urn_slots{status="unhealthy"} 2.0' in text
    assert 'urn_unhealthy_slots{reason="reset"} 2.0' in text
    assert agg.sample("urn_fresh_checkers") == 1
    assert agg.sample("urn_tick_cpu_seconds_count") == agg.service._ticks


async def test_fresh_checkers_and_azs_metrics(agg: Harness) -> None:
    await agg.push("c1", az="a", s0=1)
    await agg.push("c2", az="b", s0=1)
    await agg.push("c3", az="b", s0=1)
    await agg.tick()
    assert agg.sample("urn_fresh_checkers") == 3
    assert agg.sample("urn_fresh_azs") == 2
    envelope = await agg.tick_envelope()
    assert (envelope.checkers, envelope.azs) == (3, 2)


async def reload(agg: Harness, checks: list[dict[str, Any]]) -> None:
    """Write a new config and tick until the aggregator has applied it.

    Judged by the document in force, not by the count of good passes: a pass that read
    the file just before the write counts as good too, with the old document.
    """
    before = agg.service.document.digest
    write_config(agg.config, checks)

    async def applied() -> bool:
        await agg.tick()  # a config pass comes every 5 s, its first at a random point
        return agg.service.document.digest != before

    await wait_until(applied, message="the new config applied")


async def test_config_is_reapplied_whole(agg: Harness) -> None:
    refused = int(Reason.REFUSED)
    await agg.push("c1", s0=refused)
    assert (await agg.tick())[0] == Status.HEALTHY  # 1 failure, N = 2
    await reload(agg, [dict(CHECKS[0], failures=1, of_last=1), *CHECKS[1:]])
    await agg.push("c1", s0=refused)
    assert (await agg.tick())[0] == aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    # a broken document keeps the last good one
    agg.config.write_text("capacity: [")
    for _ in range(5):
        await agg.tick()
    await wait_until(lambda: (agg.sample("urn_config_loads_total", result="error") or 0) >= 1)
    await agg.push("c1", s0=refused)
    assert (await agg.tick())[0] == aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    _, health = await agg.get("/healthz")
    assert "not valid YAML" in health["config_error"]


async def test_a_table_made_before_a_target_changed_does_not_speak_for_it(
    agg: Harness,
) -> None:
    refused = int(Reason.REFUSED)
    down = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    old = agg.service.document.digest
    failing = {"s0": 0b111, "s1": 0b111}
    await agg.push("c1", s0=refused, s1=refused, history=failing, digest=old)
    assert (await agg.tick())[[0, 1]].tolist() == [down, down]
    # web-a now probes another port; web-b is unchanged
    await reload(agg, [dict(CHECKS[0], port=9), *CHECKS[1:]])
    new = agg.service.document.digest
    assert new != old
    await agg.push("c1", s0=refused, s1=refused, history=failing, digest=old)
    assert (await agg.tick())[[0, 1]].tolist() == [Status.UNKNOWN, down]
    _, body = await agg.get("/v1/slots/0")
    assert body["checkers"][0]["verdict"] == "unknown"
    assert "another target" in body["checkers"][0]["why_no_verdict"]
    # once the checker's tables are made under the new config they count again
    await agg.push("c1", s0=refused, s1=refused, history=failing, digest=new)
    assert (await agg.tick())[[0, 1]].tolist() == [down, down]


async def test_a_new_replica_pushes_only_once_its_window_can_be_full(tmp_path: Path) -> None:
    refused = int(Reason.REFUSED)
    async with running(tmp_path, warm_up=None) as agg:
        assert agg.service.warm_up == 3.0  # 3 tables per checker x 1 s, under staleness 5 s
        for history in (0b1, 0b11):
            await agg.push("c1", s0=refused, history={"s0": history})
            ticks = agg.service._ticks
            await step_until(agg.clock, lambda: agg.service._ticks > ticks)  # noqa: B023
        assert agg.transport.sent == []
        assert (await agg.get("/healthz"))[1]["warming_up"] is True
        await agg.push("c1", s0=refused, history={"s0": 0b111})
        table = await agg.tick()
        assert table[0] == aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
        assert len(agg.transport.sent) == len(RESOLVERS)
        assert (await agg.get("/healthz"))[1]["warming_up"] is False


async def settled_tick(agg: Harness, feed: bool = True) -> int:
    """One tick, after a fresh c1 table if `feed`; the bodies it pushed, counted once the
    ticker sleeps again (so a tick that pushed nothing is told from one still pushing)."""
    if feed:
        assert await agg.push("c1", s0=1) == 200
    ticks, sent = agg.service._ticks, len(agg.transport.sent)
    await step_until(agg.clock, lambda: agg.service._ticks > ticks, message="a tick")
    await wait_until(lambda: agg.clock.sleepers == 2, message="the ticker asleep again")
    return len(agg.transport.sent) - sent


async def warmed(agg: Harness) -> None:
    """Feed c1 a table a tick until the replica's warm-up is over and a tick pushes."""
    for _ in range(8):
        if await settled_tick(agg):
            return
    raise AssertionError("the replica never finished warming up")


async def test_after_a_stall_longer_than_staleness_it_warms_up_again(tmp_path: Path) -> None:
    """Back from a freeze (here: a push that hangs while time runs on), the replica's
    window may hold one fresh table where every checker had sent several: the first tick
    must not push that, even though a table is fresh (aggregator/warmup.py)."""
    async with running(tmp_path, warm_up=None) as agg:
        await warmed(agg)
        assert agg.clock.sleepers == 2  # the config loop and the ticker: the baseline
        stuck = RESOLVERS[0] + "/v1/table"
        agg.transport.delay[stuck] = 0.3  # real seconds the next push hangs
        assert await agg.push("c1", s0=1) == 200
        ticks = agg.service._ticks
        await step_until(agg.clock, lambda: agg.service._ticks > ticks, message="a tick")
        await agg.clock.advance(agg.service.document.staleness + 2.0)  # the ticker is stuck
        del agg.transport.delay[stuck]
        assert await agg.push("c1", s0=1) == 200  # fresh when the ticker comes back
        await wait_until(lambda: agg.clock.sleepers == 2, message="the ticker asleep again")
        assert (agg.sample("urn_ticks_late_total") or 0) >= 1  # it did stall
        assert await settled_tick(agg, feed=False) == 0
        assert len(agg.service._entries) == 1  # not blind for want of a fresh table
        assert (await agg.get("/healthz"))[1]["warming_up"] is True
        pushed = [await settled_tick(agg) for _ in range(5)]
        assert pushed[:2] == [0, 0]
        assert len(RESOLVERS) in pushed  # warm again within warm_up (3 s)


async def test_after_a_tick_with_no_fresh_table_it_warms_up_again(tmp_path: Path) -> None:
    """A tick that found no fresh table (every checker silent past staleness) marks the
    replica blind: that tick and the first ones after the checkers return do not push a
    table built from a window just refilled."""
    async with running(tmp_path, warm_up=None) as agg:
        await warmed(agg)
        staleness = int(agg.service.document.staleness)
        silent = [await settled_tick(agg, feed=False) for _ in range(staleness + 2)]
        assert 0 in silent
        blind = silent.index(0)
        assert silent[:blind] == [len(RESOLVERS)] * blind  # fresh until staleness passed
        assert agg.service._entries == []
        assert agg.sample("urn_fresh_checkers") == 0
        assert (await agg.get("/healthz"))[1]["warming_up"] is True
        # No tick came late: blind for want of a fresh table, not for a stall.
        assert (agg.sample("urn_ticks_late_total") or 0) == 0
        pushed = [await settled_tick(agg) for _ in range(5)]
        assert pushed[:2] == [0, 0]
        assert len(RESOLVERS) in pushed


async def test_a_failing_resolver_costs_only_its_own_push(agg: Harness) -> None:
    first, second = (r + "/v1/table" for r in RESOLVERS)
    agg.transport.fail[first] = OSError("connection refused")
    agg.transport.status[second] = 503
    ticks = agg.service._ticks
    await step_until(agg.clock, lambda: agg.service._ticks > ticks)
    await wait_until(lambda: agg.sample("urn_pushes_total", peer=RESOLVERS[0], result="error") == 1)
    assert agg.sample("urn_pushes_total", peer=RESOLVERS[1], result="rejected") == 1
    _, health = await agg.get("/healthz")
    assert health["pushes"] == {RESOLVERS[0]: "error", RESOLVERS[1]: "rejected"}


async def test_tick_cpu_is_the_ticks_own_not_other_threads(agg: Harness) -> None:
    """A worker thread busy meanwhile (a config read, a compile) is not charged to the tick:
    one thread cannot spend more CPU than the wall time it ran, so the recorded tick CPU
    stays within the ticks' wall time while another thread hashes on the other core."""
    stop = threading.Event()
    block = bytes(32 << 20)

    def burn() -> None:
        while not stop.is_set():
            hashlib.sha256(block).digest()  # releases the GIL: runs beside the ticks

    burner = threading.Thread(target=burn, daemon=True)
    burner.start()
    before = agg.sample("urn_tick_cpu_seconds_sum") or 0.0
    wall = 0.0
    try:
        for _ in range(300):
            started = time.perf_counter()
            agg.service.compute()
            wall += time.perf_counter() - started
    finally:
        stop.set()
        burner.join()
    charged = (agg.sample("urn_tick_cpu_seconds_sum") or 0.0) - before
    assert 0 < charged <= wall


async def test_an_az_most_of_whose_checks_fail_is_autoshifted_then_let_back(
    tmp_path: Path,
) -> None:
    """Six of AZ b's ten checks down (every checker agrees) shift all of b away in the
    very next pushed table; once b is healthy again it stays shifted for clear_after."""
    fleet = [
        {"slot": slot, "name": f"web-{slot}", "type": "tcp", "host": "127.0.0.1",
         "port": 1000 + slot, "az": "abc"[slot // 10]}
        for slot in range(30)
    ]  # fmt: skip
    rule = {"unhealthy_share": 0.5, "min_checks": 8, "clear_after": 2.5}
    async with running(tmp_path, checks=fleet, autoshift=rule) as agg:
        refused = int(Reason.REFUSED)

        async def round_of(down: range) -> Envelope:
            for sender, az in (("c1", "a"), ("c2", "b"), ("c3", "c")):
                slots = {f"s{slot}": refused if slot in down else 1 for slot in range(30)}
                await agg.push(sender, az=az, **slots)
            return await agg.tick_envelope()

        assert (await round_of(range(10, 14))).autoshift == ""  # 4 of 10: not yet
        assert agg.sample("urn_autoshift_unhealthy_share", az="b") == 0.4
        envelope = await round_of(range(10, 16))  # 6 of 10: over
        assert envelope.autoshift == "b"
        table = np.frombuffer(envelope.slots, np.uint8)
        assert (table[16:20] == Status.HEALTHY).all()  # the statuses stay the probes' own
        assert agg.sample("urn_autoshift_active", az="b") == 1
        assert agg.sample("urn_autoshift_active", az="a") == 0
        assert agg.sample("urn_autoshifts_total", az="b") == 1
        _, health = await agg.get("/healthz")
        assert health["autoshift"]["az"] == "b"
        assert health["autoshift"]["reason"] == "60% of its checks unhealthy"
        _, slot = await agg.get("/v1/slots/17")
        assert slot["autoshift"] | {"unhealthy_share": None} == {
            "az": "b",
            "shifted": True,
            "shifted_az": "b",
            "unhealthy_share": None,
            "reason": "60% of its checks unhealthy",
        }
        assert slot["autoshift"]["unhealthy_share"] == 0.6

        held = [(await round_of(range(0))).autoshift for _ in range(3)]  # healthy again
        assert held == ["b", "b", "b"]  # below clear_share for 0, 1, 2 s: held
        assert (await round_of(range(0))).autoshift == ""  # 3 s >= clear_after: ended
        assert agg.sample("urn_autoshift_active", az="b") == 0
        assert agg.sample("urn_autoshifts_total", az="b") == 1


async def test_without_autoshift_the_field_stays_empty(agg: Harness) -> None:
    refused = int(Reason.REFUSED)
    await agg.push("c1", az="a", s0=refused, s1=refused, history={"s0": 7, "s1": 7})
    await agg.push("c2", az="b", s0=refused, s1=refused, history={"s0": 7, "s1": 7})
    envelope = await agg.tick_envelope()
    assert envelope.autoshift == ""
    assert (await agg.get("/healthz"))[1]["autoshift"] == {
        "enabled": False,
        "az": None,
        "reason": "off",
        "since_s": None,
        "unhealthy_share": {},
    }
