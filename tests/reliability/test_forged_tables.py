"""Forged aggregated tables against a real fleet's resolver: each is refused with its
reason counted, and nothing the resolver answers or holds changes.

Forgeries: a table signed with the checker tier's key (any sidecar holds it), one
signed with the right key by an aggregator id not on `senders.aggregators`, and one from
a listed aggregator stamped 20 s in the future (past the default 10 s skew).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from sim.chaos import fast_plan, live_fleet
from sim.observe import metric
from sim.testing import signed_table, wait_until
from urn.table import Status, aggregated_byte
from urn.wire import TableKind

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

UP = aggregated_byte(Status.HEALTHY)
DOWN = aggregated_byte(Status.UNHEALTHY)


async def test_forged_tables_are_refused_counted_and_change_nothing(tmp_path: Path) -> None:
    plan = fast_plan(azs=("a", "b", "c"), aggregators=2, resolvers=1)
    async with live_fleet(tmp_path, plan) as live:
        await live.wait_answers(dead=())

        async def both_replicas_in() -> bool:
            table = (await live.healthz("resolver-1"))["table"]
            return table["state"] == "fresh" and len(table["replicas"]) == 2

        await wait_until(both_replicas_in, 20, message="both aggregators' tables in")
        env = live.fleet.env
        push_key = env["URN_PUSH_KEY"].encode()
        table_key = env["URN_TABLE_KEY"].encode()
        # Accepted, this would turn every answer away from AZ b.
        b_down = bytearray([UP]) * int(live.document["capacity"])
        for check in live.document["checks"]:
            if check.get("az") == "b":
                b_down[check["slot"]] = DOWN
        forged_slots = bytes(b_down)
        now = time.time()
        forgeries = {
            "bad_mac": signed_table(
                forged_slots,
                kind=TableKind.AGGREGATE,
                sender="aggregator-1",
                sequence=time.time_ns() * 2,
                key=push_key,
                generated_at=now,
            ),
            "sender": signed_table(
                forged_slots,
                kind=TableKind.AGGREGATE,
                sender="aggregator-9",
                sequence=time.time_ns() * 2,
                key=table_key,
                generated_at=now,
            ),
            "skew": signed_table(
                forged_slots,
                kind=TableKind.AGGREGATE,
                sender="aggregator-1",
                sequence=time.time_ns() * 2,
                key=table_key,
                generated_at=now + 20.0,
            ),
        }
        url = f"{live.url('resolver-1')}/v1/table"
        before = await live.metrics("resolver-1")
        for reason, body in forgeries.items():
            async with live.session.post(
                url, data=body, headers={"Content-Type": "application/msgpack"}
            ) as response:
                answer = await response.json()
                assert answer["error"] == reason, (reason, response.status, answer)
                assert response.status in (400, 401, 403), (reason, response.status)
        after = await live.metrics("resolver-1")
        for reason in forgeries:
            counted = metric(after, "urn_tables_rejected_total", reason=reason) - metric(
                before, "urn_tables_rejected_total", reason=reason
            )
            assert counted == 1, reason
        # Nothing changed: AZ b is still served, from the real aggregators' tables.
        await live.wait_answers(dead=(), timeout=2)
        table = (await live.healthz("resolver-1"))["table"]
        assert set(table["replicas"]) == {"aggregator-1", "aggregator-2"}, table
        assert table["aggregator"] in ("aggregator-1", "aggregator-2"), table
