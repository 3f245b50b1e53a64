"""A running aggregator follows a push-key rotation made through its config passes.

The operator's three steps (urn/keys.py): everyone on K1; then push_key K2 with K1 under
previous_push_keys; then K2 alone. Each step is a config pass of the running service, and
each table goes in through the aggregator's own POST /v1/table: a service that kept the
keys it started with would refuse K2 after step 2 and accept K1 after step 3.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client import CollectorRegistry

from aggregator.app import SERVICE, make_app
from aggregator.settings import AggregatorSettings
from sim.testing import FakeClock, MemoryTransport, document_dict, signed_table
from urn.http import serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from aggregator.service import Aggregator

CAPACITY = 64
K1 = b"rotation-push-key-one-0123456789ab"
K2 = b"rotation-push-key-two-0123456789ab"
ENV = {"URN_K1": K1.decode(), "URN_K2": K2.decode()}


def write_config(path: Path, current: str, previous: tuple[str, ...] = ()) -> None:
    """A document whose push_key is env `current`, with `previous` still accepted."""
    document = document_dict(
        [{"slot": 0, "name": "web", "type": "tcp", "host": "127.0.0.1", "port": 1}],
        capacity=CAPACITY,
        resolvers=["http://127.0.0.1:1"],
        push_key={"env": current},
        previous_push_keys=[{"env": name} for name in previous],
    )
    path.write_text(json.dumps(document))


@asynccontextmanager
async def aggregator(config: Path) -> AsyncIterator[tuple[Aggregator, str, FakeClock]]:
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
    try:
        yield app[SERVICE].service, f"http://127.0.0.1:{port}/v1/table", clock
    finally:
        await runner.cleanup()


async def test_a_running_aggregator_follows_a_push_key_rotation(tmp_path: Path) -> None:
    config = tmp_path / "urn.json"
    write_config(config, "URN_K1")
    sequence = iter(range(1, 1000))
    async with aggregator(config) as (service, url, clock), aiohttp.ClientSession() as session:

        async def post(key: bytes, sender: str) -> tuple[int, Any]:
            body = signed_table(
                bytes([1]) * CAPACITY,
                sender=sender,
                sequence=next(sequence),
                generated_at=clock.time(),
                key=key,
            )
            async with session.post(url, data=body) as response:
                return response.status, (await response.json()).get("error")

        def accepted(sender: str) -> list[int]:
            return [entry.sequence for entry in service.window.history(sender)]

        assert await post(K1, "chk-old") == (200, None)
        assert (await post(K2, "chk-new"))[0] == 401  # not yet trusted

        write_config(config, "URN_K2", previous=("URN_K1",))
        assert await service.reload()
        assert await post(K2, "chk-new") == (200, None)
        assert await post(K1, "chk-old") == (200, None)  # not yet re-read its config

        write_config(config, "URN_K2")
        assert await service.reload()
        before = accepted("chk-old")
        assert await post(K1, "chk-old") == (401, "bad_mac")
        assert accepted("chk-old") == before  # the refused table changed nothing
        assert await post(K2, "chk-new") == (200, None)
        assert len(accepted("chk-new")) == 2
