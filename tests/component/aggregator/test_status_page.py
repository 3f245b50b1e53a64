"""The aggregator's /ui, /v1/status and /v1/status/checks on a loopback port (FakeClock):
the snapshot is the last tick's, served as built, and its size does not change when
slots fail."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import aiohttp
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
)
from urn.http import serve
from urn.table import Reason, Status, aggregated_byte

if TYPE_CHECKING:
    from pathlib import Path

CAPACITY = 64
CHECKS: list[dict[str, Any]] = [
    {"slot": 0, "name": "web-a", "type": "tcp", "host": "127.0.0.1", "port": 1, "az": "a"},
    {"slot": 1, "name": "web-b", "type": "tcp", "host": "127.0.0.1", "port": 2, "az": "b"},
]
ENV = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}


async def test_status_snapshot_is_fixed_size_and_follows_the_ticks(tmp_path: Path) -> None:
    config = tmp_path / "urn.json"
    document = document_dict(CHECKS, capacity=CAPACITY, resolvers=["http://127.0.0.1:1"])
    config.write_text(json.dumps(document))
    clock = FakeClock()
    settings = AggregatorSettings(id="agg-1", config=str(config), listen_port=0, warm_up=0.0)
    app = make_app(
        settings,
        clock=clock,
        registry=CollectorRegistry(),
        environ=ENV,
        transport=MemoryTransport(),
    )
    runner, port = await serve(app, "127.0.0.1", 0)
    service = app[SERVICE].service
    base = f"http://127.0.0.1:{port}"
    sequence = [0]

    async def push(session: aiohttp.ClientSession, sender: str, az: str, slot0: int) -> None:
        last = bytearray(CAPACITY)
        last[0], last[1] = slot0, Reason.HEALTHY
        sequence[0] += 1
        body = signed_table(
            bytes(last),
            sender=sender,
            az=az,
            sequence=sequence[0],
            generated_at=clock.time(),
            digest=service.document.digest,
        )
        async with session.post(f"{base}/v1/table", data=body) as response:
            assert response.status == 200, await response.text()

    async def tick_and_read(session: aiohttp.ClientSession) -> tuple[bytes, dict[str, Any]]:
        ticks = service._ticks
        await step_until(clock, lambda: service._ticks > ticks, message="a tick")
        async with session.get(f"{base}/v1/status") as response:
            assert response.status == 200
            raw = await response.read()
        return raw, json.loads(raw)

    try:
        async with aiohttp.ClientSession() as session:
            for sender, az in (("c1", "a"), ("c2", "b")):
                await push(session, sender, az, Reason.HEALTHY)
            steady_raw, steady = await tick_and_read(session)
            for sender, az in (("c1", "a"), ("c2", "b")):
                await push(session, sender, az, Reason.REFUSED)
            failed_raw, failed = await tick_and_read(session)
            async with session.get(f"{base}/v1/status") as response:
                again = await response.read()
            async with session.get(f"{base}/v1/status/checks") as response:
                checks = await response.json()
            async with session.get(f"{base}/ui") as response:
                page = await response.text()
                assert response.content_type == "text/html"
    finally:
        await runner.cleanup()
    assert len(steady_raw) == len(failed_raw)  # the size does not depend on health
    assert again == failed_raw  # the same bytes for every viewer until the next tick
    assert base64.b64decode(steady["table"])[0] == aggregated_byte(Status.HEALTHY)
    table = base64.b64decode(failed["table"])
    assert table[0] == aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
    assert [int(n) for n in failed["unhealthy_by_az"]] == [1, 0]
    rows = {row[0].strip(): row for row in failed["checkers"] if row[0].strip()}
    assert sorted(rows) == ["c1", "c2"]
    assert all(row[2] == "1" and row[5] == "1" and row[6] == "1" for row in rows.values())
    assert len(failed["checkers"]) == len(steady["checkers"])
    assert checks["checks"][0] == [0, "web-a", "tcp", "tcp://127.0.0.1:1", "a", ""]
    assert checks["azs"] == ["a", "b"]
    assert "<canvas" in page
    assert "/v1/status" in page
