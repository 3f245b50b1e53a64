"""push_all: one body to every peer at once; a slow or dead peer only costs itself."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from sim.testing import MemoryTransport, free_port
from sim.testing.bounds import LoopLag, slack
from urn.http import serve
from urn.metrics import CommonMetrics
from urn.push import CONTENT_TYPE, TABLE_PATH, AiohttpTransport, push_all

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BODY = b"\x9a" + bytes(200)
PEERS = ["http://agg-1:7101", "http://agg-2:7101", "http://agg-3:7101"]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_every_peer_gets_the_same_bytes() -> None:
    transport = MemoryTransport()
    outcomes = await push_all(transport, PEERS, BODY, timeout=1.0)
    assert [o.result for o in outcomes] == ["ok"] * 3
    assert [o.peer for o in outcomes] == PEERS
    assert sorted(transport.sent) == sorted((p + TABLE_PATH, BODY) for p in PEERS)


async def test_slow_peer_times_out_alone() -> None:
    transport = MemoryTransport()
    transport.delay[PEERS[1] + TABLE_PATH] = 30.0
    registry = CollectorRegistry()
    metrics = CommonMetrics(registry)
    metrics.peers(PEERS)
    outcomes = await push_all(transport, PEERS, BODY, timeout=0.2, metrics=metrics)
    by_peer = {o.peer: o for o in outcomes}
    assert by_peer[PEERS[0]].result == "ok"
    assert by_peer[PEERS[2]].result == "ok"
    assert by_peer[PEERS[1]].result == "timeout"
    assert by_peer[PEERS[1]].status is None
    assert by_peer[PEERS[1]].detail == "no answer within 0.2s"
    assert {url for url, _ in transport.sent} == {PEERS[0] + TABLE_PATH, PEERS[2] + TABLE_PATH}
    assert sample(registry, "urn_pushes_total", peer=PEERS[1], result="timeout") == 1
    assert sample(registry, "urn_pushes_total", peer=PEERS[0], result="ok") == 1
    assert sample(registry, "urn_push_bytes_total", peer=PEERS[0]) == len(BODY)
    assert sample(registry, "urn_push_bytes_total", peer=PEERS[1]) == 0
    assert sample(registry, "urn_push_duration_seconds_count", peer=PEERS[1]) == 1


async def test_rejection_and_error_are_reported_per_peer() -> None:
    transport = MemoryTransport()
    transport.status[PEERS[0] + TABLE_PATH] = 401
    transport.fail[PEERS[1] + TABLE_PATH] = ConnectionRefusedError(111, "refused")
    registry = CollectorRegistry()
    metrics = CommonMetrics(registry)
    outcomes = await push_all(transport, PEERS, BODY, timeout=1.0, metrics=metrics)
    assert [(o.result, o.status) for o in outcomes] == [
        ("rejected", 401),
        ("error", None),
        ("ok", 200),
    ]
    assert outcomes[1].detail.startswith("ConnectionRefusedError")
    assert sample(registry, "urn_pushes_total", peer=PEERS[0], result="rejected") == 1
    assert sample(registry, "urn_pushes_total", peer=PEERS[1], result="error") == 1


async def test_no_peers_is_nothing() -> None:
    assert await push_all(MemoryTransport(), [], BODY, timeout=1.0) == []


# --- real receivers on loopback ----------------------------------------------------------


class Receiver:
    def __init__(self, hang: bool = False, status: int = 200) -> None:
        self.hang = hang
        self.status = status
        self.bodies: list[tuple[str, bytes]] = []
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.release.wait()
        self.bodies.append((request.content_type, await request.read()))
        return web.json_response({"ok": True}, status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(TABLE_PATH, self.handle)
        self.runner, port = await serve(app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    started = [Receiver(), Receiver(hang=True), Receiver(), Receiver(status=409)]
    for receiver in started:
        await receiver.start()
    yield started
    for receiver in started:
        await receiver.stop()


async def test_real_receivers_one_hanging_one_dead_one_rejecting(
    receivers: list[Receiver],
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    peers = [r.url for r in receivers] + [dead]
    transport = AiohttpTransport()
    # A loopback receiver answers at once; 0.5 s times $URN_TEST_SLACK before its push
    # counts as timed out, as the hanging one's does.
    timeout = 0.5 * slack()
    try:
        async with LoopLag() as lag:
            outcomes = await push_all(transport, peers, BODY, timeout=timeout)
            again = await push_all(transport, peers, BODY, timeout=timeout)
    finally:
        await transport.close()
    for run in (outcomes, again):
        took = [(o.result, round(o.seconds, 3)) for o in run]
        assert [o.result for o in run] == ["ok", "timeout", "ok", "rejected", "error"], (
            f"{took} under a {timeout:g} s timeout; {lag}"
        )
        assert run[3].status == 409
        assert "ClientConnectorError" in run[4].detail
    fast = [receivers[0], receivers[2], receivers[3]]
    for receiver in fast:
        assert receiver.bodies == [(CONTENT_TYPE, BODY)] * 2
    assert receivers[1].bodies == []


async def test_transport_reopens_after_close() -> None:
    receiver = Receiver()
    await receiver.start()
    transport = AiohttpTransport()
    timeout = 1.0 * slack()  # a loopback receiver answers at once
    try:
        assert (await push_all(transport, [receiver.url], BODY, timeout))[0].result == "ok"
        await transport.close()
        assert (await push_all(transport, [receiver.url], BODY, timeout))[0].result == "ok"
    finally:
        await transport.close()
        await receiver.stop()
    assert len(receiver.bodies) == 2


async def test_invalid_peer_url_is_an_error_not_a_crash() -> None:
    transport = AiohttpTransport()
    try:
        [outcome] = await push_all(transport, ["http://"], BODY, 0.5)
    finally:
        await transport.close()
    assert outcome.result == "error"
    assert isinstance(aiohttp.InvalidURL("x"), aiohttp.ClientError)
