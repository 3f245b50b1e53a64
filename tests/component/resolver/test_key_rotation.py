"""A running resolver follows a table-key rotation made through its config passes.

The operator's three steps (urn/keys.py): everyone on K1; then table_key K2 with K1 under
previous_table_keys; then K2 alone. Each step is a config pass of the running service, and
each table goes in through the resolver's own POST /v1/table and is read back through
/v1/resolve: a service that kept the keys it started with would refuse K2 after step 2 and
accept K1 after step 3.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import aiohttp

from sim.testing import FakeClock, document_dict, signed_table
from sim.testing.resolver import TEST_ENVIRON, multivalue_record, running_resolver, tcp_checks
from urn.table import Reason, Status, aggregated_byte
from urn.wire import TableKind

if TYPE_CHECKING:
    from pathlib import Path

CAPACITY = 64
K1 = b"rotation-table-key-one-0123456789"
K2 = b"rotation-table-key-two-0123456789"
ENV = {**TEST_ENVIRON, "URN_T1": K1.decode(), "URN_T2": K2.decode()}
ALL = [f"10.0.0.{i}" for i in range(1, 5)]


def write_config(path: Path, current: str, previous: tuple[str, ...] = ()) -> Path:
    """A document whose table_key is env `current`, with `previous` still accepted."""
    document = document_dict(
        checks=tcp_checks(range(4)),
        records=[multivalue_record("www.example.com.", 4)],
        capacity=CAPACITY,
        table_key={"env": current},
        previous_table_keys=[{"env": name} for name in previous],
    )
    path.write_text(json.dumps(document))
    return path


def down(slot: int) -> bytes:
    table = bytearray([aggregated_byte(Status.HEALTHY)]) * CAPACITY
    table[slot] = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
    return bytes(table)


async def test_a_running_resolver_follows_a_table_key_rotation(tmp_path: Path) -> None:
    config = write_config(tmp_path / "urn.json", "URN_T1")
    clock = FakeClock()
    sequence = iter(range(1, 1000))
    async with (
        running_resolver(config, dns=False, clock=clock, environ=ENV) as resolver,
        aiohttp.ClientSession() as session,
    ):

        async def post(key: bytes, slot_down: int) -> tuple[int, str | None]:
            """Push a table with `slot_down` unhealthy, signed with `key`."""
            await clock.advance(0.1)  # each table newer than the last
            body = signed_table(
                down(slot_down),
                kind=TableKind.AGGREGATE,
                sender="agg-1",
                sequence=next(sequence),
                generated_at=clock.time(),
                key=key,
            )
            async with session.post(f"{resolver.url}/v1/table", data=body) as response:
                return response.status, (await response.json()).get("error")

        async def answered() -> list[str]:
            params = {"name": "www.example.com", "type": "A"}
            async with session.get(f"{resolver.url}/v1/resolve", params=params) as response:
                assert response.status == 200
                body = await response.json()
            return sorted(answer["data"] for answer in body["Answer"])

        assert await post(K1, 0) == (200, None)
        assert await answered() == ALL[1:]
        assert (await post(K2, 1))[0] == 401  # not yet trusted

        write_config(config, "URN_T2", previous=("URN_T1",))
        assert await resolver.service.reload()
        assert await post(K2, 1) == (200, None)
        assert await answered() == [ALL[0], *ALL[2:]]
        assert await post(K1, 2) == (200, None)  # an aggregator not yet on the new config
        assert await answered() == [*ALL[:2], ALL[3]]

        write_config(config, "URN_T2")
        assert await resolver.service.reload()
        assert await post(K1, 3) == (401, "bad_mac")
        assert await answered() == [*ALL[:2], ALL[3]]  # the refused table changed nothing
        assert await post(K2, 0) == (200, None)
        assert await answered() == ALL[1:]
