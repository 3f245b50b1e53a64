"""Forgeries at the receiver: a TableReceiver judging by one ReceivePolicy per config pass.

A resolver's receiver (aggregated tables) under a document with its own `table_key` and
an aggregator allow-list refuses a table signed with the checker key, one from an
unlisted aggregator id and one stamped 20 s ahead by a listed aggregator: each is
counted by reason, and nothing is delivered or remembered. An aggregator's receiver
admits checkers by id pattern. Senders that fall silent are forgotten, metric series
included, so 1,000 restarting pod ids leave both bounded.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from sim.testing import document_dict, log_events, signed_table
from urn.clock import FakeClock
from urn.config import Document, parse_text
from urn.http import TableReceiver
from urn.keys import load_keys
from urn.metrics import ResolverMetrics
from urn.push import CONTENT_TYPE, TABLE_PATH
from urn.trust import receive_policy
from urn.wire import Envelope, TableKind

if TYPE_CHECKING:
    import io
    from collections.abc import AsyncIterator

CAPACITY = 32
PUSH_KEY = b"checker-tier-push-key-0123456789"
TABLE_KEY = b"aggregator-tier-table-key-012345"
ENV = {"URN_PUSH_KEY": PUSH_KEY.decode(), "URN_TABLE_KEY": TABLE_KEY.decode()}
TRUSTED = {"table_key": {"env": "URN_TABLE_KEY"}, "senders": {"aggregators": ["agg-1", "agg-2"]}}


def document(**top: Any) -> Document:
    return parse_text(json.dumps(document_dict(capacity=CAPACITY, **top)))


class Receiver:
    """One TableReceiver on a real aiohttp test server, with its registry and deliveries."""

    def __init__(
        self,
        client: TestClient[Any, Any],
        receiver: TableReceiver,
        clock: FakeClock,
        registry: CollectorRegistry,
        delivered: list[Envelope],
    ) -> None:
        self.client = client
        self.receiver = receiver
        self.clock = clock
        self.registry = registry
        self.delivered = delivered

    def apply(self, doc: Document, kind: TableKind = TableKind.AGGREGATE) -> None:
        """A config pass: the policy built whole from the document and its keys."""
        self.receiver.apply(receive_policy(doc, load_keys(doc, ENV), kind))

    def table(self, **fields: Any) -> bytes:
        fields.setdefault("kind", TableKind.AGGREGATE)
        fields.setdefault("sender", "agg-1")
        fields.setdefault("key", TABLE_KEY)
        fields.setdefault("generated_at", self.clock.time())
        fields.setdefault("checkers", 6)
        fields.setdefault("azs", 3)
        return signed_table(fields.pop("slots", bytes(CAPACITY)), **fields)

    async def post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": CONTENT_TYPE}
        async with self.client.post(TABLE_PATH, data=body, headers=headers) as response:
            return response.status, await response.json()

    def rejected(self, reason: str) -> float | None:
        return self.registry.get_sample_value("urn_tables_rejected_total", {"reason": reason})

    def received(self, sender: str, result: str) -> float | None:
        return self.registry.get_sample_value(
            "urn_tables_received_total", {"sender": sender, "result": result}
        )

    def labelled_senders(self) -> set[str]:
        return {
            sample.labels["sender"]
            for family in self.registry.collect()
            if family.name == "urn_tables_received"
            for sample in family.samples
        }


async def serve_receiver(doc: Document, kind: TableKind) -> tuple[Receiver, TestClient[Any, Any]]:
    clock = FakeClock()
    registry = CollectorRegistry()
    delivered: list[Envelope] = []
    receiver = TableReceiver(
        policy=receive_policy(doc, load_keys(doc, ENV), kind),
        clock=clock,
        metrics=ResolverMetrics(registry),
        deliver=delivered.append,
    )
    application = web.Application()
    application.router.add_post(TABLE_PATH, receiver.handle)
    client: TestClient[Any, Any] = TestClient(TestServer(application, host="127.0.0.1"))
    await client.start_server()
    return Receiver(client, receiver, clock, registry, delivered), client


@pytest.fixture
async def resolver() -> AsyncIterator[Receiver]:
    """A resolver's receiver under a document with a table key and an aggregator list."""
    received, client = await serve_receiver(document(**TRUSTED), TableKind.AGGREGATE)
    try:
        yield received
    finally:
        await client.close()


async def test_a_table_forged_with_the_checker_key_is_refused(resolver: Receiver) -> None:
    forged = resolver.table(key=PUSH_KEY, sequence=5)
    status, reply = await resolver.post(forged)
    assert (status, reply["error"]) == (401, "bad_mac")
    assert resolver.received("unknown", "bad_mac") == 1
    assert resolver.received("agg-1", "bad_mac") is None  # no name believed before the MAC
    assert resolver.delivered == []
    assert len(resolver.receiver.guard) == 0
    assert (await resolver.post(resolver.table(sequence=5)))[0] == 200


async def test_a_table_from_an_unlisted_aggregator_id_is_refused(resolver: Receiver) -> None:
    rogue = resolver.table(sender="agg-rogue", sequence=5)
    status, reply = await resolver.post(rogue)
    assert (status, reply["error"]) == (403, "sender")
    assert "agg-rogue" in reply["detail"]
    assert resolver.rejected("sender") == 1
    assert resolver.received("agg-rogue", "sender") == 1
    assert resolver.delivered == []
    assert resolver.receiver.guard.last_sequence("agg-rogue") is None
    assert (await resolver.post(resolver.table(sequence=5)))[0] == 200


async def test_a_table_stamped_20_s_ahead_by_a_listed_aggregator_is_refused(
    resolver: Receiver,
) -> None:
    assert resolver.receiver.policy.skew == 10.0  # the document leaves skew at its default
    ahead = resolver.table(sender="agg-2", sequence=5, generated_at=resolver.clock.time() + 20)
    status, reply = await resolver.post(ahead)
    assert (status, reply["error"]) == (400, "skew")
    assert "+20.0s" in reply["detail"]
    assert resolver.rejected("skew") == 1
    assert resolver.received("agg-2", "skew") == 1
    assert resolver.delivered == []
    assert resolver.receiver.guard.last_sequence("agg-2") is None
    assert (await resolver.post(resolver.table(sender="agg-2", sequence=5)))[0] == 200


async def test_an_unlisted_id_is_refused_even_with_the_checker_key_when_table_key_is_unset(
    resolver: Receiver,
) -> None:
    """With the keys shared (table_key unset), the allow-list still turns a checker away."""
    resolver.apply(document(senders={"aggregators": ["agg-1", "agg-2"]}))
    status, reply = await resolver.post(resolver.table(sender="chk-a1", key=PUSH_KEY))
    assert (status, reply["error"]) == (403, "sender")
    assert resolver.delivered == []


async def test_each_pass_applies_its_whole_policy(resolver: Receiver) -> None:
    assert (await resolver.post(resolver.table(sender="agg-2", sequence=1)))[0] == 200
    # The next pass drops agg-2 from the list and rotates the table key.
    rotated = {"URN_TABLE_KEY": "a-brand-new-table-key-0123456789", "OLD": TABLE_KEY.decode()}
    doc = document(
        table_key={"env": "URN_TABLE_KEY"},
        previous_table_keys=[{"env": "OLD"}],
        senders={"aggregators": ["agg-1"]},
    )
    keys = load_keys(doc, {**ENV, **rotated})
    resolver.receiver.apply(receive_policy(doc, keys, TableKind.AGGREGATE))
    assert (await resolver.post(resolver.table(sender="agg-2", sequence=2)))[0] == 403
    assert (await resolver.post(resolver.table(sequence=2)))[0] == 200  # the previous key
    new = b"a-brand-new-table-key-0123456789"
    assert (await resolver.post(resolver.table(sequence=3, key=new)))[0] == 200
    assert [e.sequence for e in resolver.delivered] == [1, 2, 3]


async def test_a_policy_of_the_other_kind_is_a_programming_error(resolver: Receiver) -> None:
    with pytest.raises(ValueError, match="CHECKER policy for a AGGREGATE receiver"):
        resolver.apply(document(**TRUSTED), TableKind.CHECKER)


async def test_an_aggregator_admits_checkers_by_id_pattern() -> None:
    doc = document(senders={"checkers": ["chk-*"]})
    aggregator, client = await serve_receiver(doc, TableKind.CHECKER)
    try:

        def checker_table(sender: str) -> bytes:
            return signed_table(
                bytes(CAPACITY), sender=sender, key=PUSH_KEY, generated_at=aggregator.clock.time()
            )

        assert (await aggregator.post(checker_table("chk-a1-5d8f9c7b6d-x2k9p")))[0] == 200
        status, reply = await aggregator.post(checker_table("web-a-5d8f9c7b6d-x2k9p"))
        assert (status, reply["error"]) == (403, "sender")
        assert [e.sender for e in aggregator.delivered] == ["chk-a1-5d8f9c7b6d-x2k9p"]
    finally:
        await client.close()


async def test_resolvers_warn_at_start_when_trust_is_defaulted(log_stream: io.StringIO) -> None:
    received, client = await serve_receiver(document(), TableKind.AGGREGATE)
    try:
        received.apply(document())  # the next pass, unchanged: said once, not every pass
        warned = [e for e in log_events(log_stream) if e["event"] == "weak_trust"]
        assert [e["detail"].split(" ")[0] for e in warned] == ["table_key", "senders.aggregators"]
        assert {e["level"] for e in warned} == {"warning"}
        received.apply(document(**TRUSTED))
        received.apply(document())  # and again when a pass weakens it anew
        warned = [e for e in log_events(log_stream) if e["event"] == "weak_trust"]
        assert len(warned) == 4
    finally:
        await client.close()


async def test_a_thousand_restarting_sender_ids_leave_a_bounded_guard_and_metric_series(
    resolver: Receiver,
) -> None:
    """Aggregator pods restarting under new ids (listed by pattern), one a second."""
    resolver.apply(document(table_key={"env": "URN_TABLE_KEY"}, senders={"aggregators": ["agg-*"]}))
    guard_sizes, series = [], []
    for pod in range(1_000):
        status, _ = await resolver.post(resolver.table(sender=f"agg-{pod}", sequence=1))
        assert status == 200
        guard_sizes.append(len(resolver.receiver.guard))
        series.append(len(resolver.labelled_senders()))
        await resolver.clock.advance(1.0)
    # Each id is forgotten 2 x skew (20 s) after its last table: at most 21 at once.
    assert max(guard_sizes) == 21
    assert max(series) == 21
    assert resolver.received("agg-0", "accepted") is None  # long forgotten
    assert resolver.received("agg-999", "accepted") == 1
    assert resolver.rejected("replayed") == 0
