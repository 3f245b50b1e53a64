"""TableReceiver: accepted tables are delivered; every rejection is typed, counted, inert."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from sim.testing import TEST_PUSH_KEY, signed_table
from sim.testing.legacy import legacy_table
from urn.clock import FakeClock
from urn.http import TableReceiver, add_observability_routes, parse_listen
from urn.metrics import AggregatorMetrics
from urn.push import CONTENT_TYPE, TABLE_PATH
from urn.table import CheckerPlanes, checker_table
from urn.trust import ReceivePolicy
from urn.wire import Envelope, TableKind, encoded_size

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

CAPACITY = 64
SLOTS = bytes(i % 12 for i in range(CAPACITY))  # the `last` plane of a checker table
HISTORY = bytes((i * 37) % 256 for i in range(CAPACITY))


class App:
    def __init__(
        self,
        client: TestClient[Any, Any],
        receiver: TableReceiver,
        registry: CollectorRegistry,
        delivered: list[Envelope],
        clock: FakeClock,
    ) -> None:
        self.client = client
        self.receiver = receiver
        self.registry = registry
        self.delivered = delivered
        self.clock = clock

    def table(self, **fields: Any) -> bytes:
        fields.setdefault("generated_at", self.clock.time())
        slots = fields.pop("slots", SLOTS)
        if fields.get("kind", TableKind.CHECKER) is TableKind.CHECKER:
            fields.setdefault("history", HISTORY if slots == SLOTS else None)
        return signed_table(slots, **fields)

    async def post(self, body: bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        async with self.client.post(
            TABLE_PATH, data=body, headers={"Content-Type": CONTENT_TYPE}, **kwargs
        ) as response:
            return response.status, await response.json()

    def rejected(self, reason: str) -> float | None:
        return self.registry.get_sample_value("urn_tables_rejected_total", {"reason": reason})

    def received(self, sender: str, result: str) -> float | None:
        return self.registry.get_sample_value(
            "urn_tables_received_total", {"sender": sender, "result": result}
        )


@pytest.fixture
async def app() -> AsyncIterator[App]:
    clock = FakeClock()
    registry = CollectorRegistry()
    delivered: list[Envelope] = []
    receiver = TableReceiver(
        policy=ReceivePolicy(
            TableKind.CHECKER,
            CAPACITY,
            (TEST_PUSH_KEY, b"previous-push-key-still-accepted"),
            skew=30.0,
        ),
        clock=clock,
        metrics=AggregatorMetrics(registry),
        deliver=delivered.append,
        read_timeout=0.3,
    )
    application = web.Application()
    application.router.add_post(TABLE_PATH, receiver.handle)

    async def health() -> tuple[bool, dict[str, Any]]:
        return bool(delivered), {"tables": len(delivered)}

    add_observability_routes(application, registry, health, health)
    client: TestClient[Any, Any] = TestClient(TestServer(application, host="127.0.0.1"))
    await client.start_server()
    try:
        yield App(client, receiver, registry, delivered, clock)
    finally:
        await client.close()


async def test_accepted_table_is_delivered_and_counted(app: App) -> None:
    status, reply = await app.post(app.table(sequence=5))
    assert (status, reply) == (200, {"accepted": 5})
    [envelope] = app.delivered
    assert (envelope.sender, envelope.sequence) == ("chk-a1", 5)
    assert envelope.slots == checker_table(SLOTS, HISTORY)
    planes = CheckerPlanes(envelope.slots, CAPACITY)
    assert (planes.last.tobytes(), planes.history.tobytes()) == (SLOTS, HISTORY)
    assert app.received("chk-a1", "accepted") == 1
    assert app.receiver.guard.last_sequence("chk-a1") == 5


async def test_previous_key_is_accepted(app: App) -> None:
    status, _ = await app.post(app.table(key=b"previous-push-key-still-accepted"))
    assert status == 200


def _cases(app: App) -> dict[str, tuple[bytes, int]]:
    valid = app.table(sequence=10)
    return {
        "bad_mac": (app.table(key=b"an-attacker-guessing-the-key-000"), 401),
        "version": (valid[:2] + b"\x07" + valid[3:], 400),
        "capacity": (app.table(slots=bytes(CAPACITY - 1)), 400),
        "truncated": (valid[:-5], 400),
        "undecodable": (b"not a table at all", 400),
        "kind": (app.table(kind=TableKind.AGGREGATE), 400),
        "skew": (app.table(generated_at=app.clock.time() - 31), 400),
        "oversized": (valid + b"\0", 413),
    }


REASONS = [
    "bad_mac",
    "version",
    "capacity",
    "truncated",
    "undecodable",
    "kind",
    "skew",
    "oversized",
]


@pytest.mark.parametrize("reason", REASONS)
async def test_each_rejection_has_its_status_reason_and_count(app: App, reason: str) -> None:
    body, expected_status = _cases(app)[reason]
    status, reply = await app.post(body)
    assert status == expected_status
    assert reply["error"] == reason
    assert reply["detail"]
    assert app.rejected(reason) == 1
    assert app.delivered == []
    assert app.receiver.guard.last_sequence("chk-a1") is None
    # Nothing changed: the next good table from the same sender is accepted.
    assert (await app.post(app.table(sequence=10)))[0] == 200


def _version_1_table(at: float, sequence: int) -> bytes:
    """A signed version-1 checker table: fixarray of 10, one byte per slot, 153 + C bytes."""
    return legacy_table(1, SLOTS, key=TEST_PUSH_KEY, sequence=sequence, generated_at=at)


async def test_version_1_table_is_refused_as_version_and_changes_nothing(app: App) -> None:
    body = _version_1_table(app.clock.time(), sequence=10)
    assert len(body) == 153 + CAPACITY < encoded_size(CAPACITY, TableKind.CHECKER)
    status, reply = await app.post(body)
    assert (status, reply["error"]) == (400, "version")
    assert "version 1" in reply["detail"]
    assert app.rejected("version") == 1
    assert app.received("unknown", "version") == 1
    assert (app.delivered, app.receiver.guard.last_sequence("chk-a1")) == ([], None)
    assert (await app.post(app.table(sequence=10)))[0] == 200


def _version_2_table(at: float, sequence: int) -> bytes:
    """A signed version-2 checker table: fixarray of 12, no autoshift, 158 + 2C bytes."""
    slots = checker_table(SLOTS, HISTORY)
    return legacy_table(2, slots, key=TEST_PUSH_KEY, sequence=sequence, generated_at=at)


async def test_version_2_table_is_refused_as_version_and_changes_nothing(app: App) -> None:
    body = _version_2_table(app.clock.time(), sequence=10)
    assert len(body) == 158 + 2 * CAPACITY < encoded_size(CAPACITY, TableKind.CHECKER)
    status, reply = await app.post(body)
    assert (status, reply) == (
        400,
        {"error": "version", "detail": "version 2, this build speaks 3"},
    )
    assert app.rejected("version") == 1
    assert app.received("unknown", "version") == 1
    assert (app.delivered, app.receiver.guard.last_sequence("chk-a1")) == ([], None)
    assert (await app.post(app.table(sequence=10)))[0] == 200


async def test_replayed_table_is_409_and_changes_nothing(app: App) -> None:
    assert (await app.post(app.table(sequence=7)))[0] == 200
    status, reply = await app.post(app.table(sequence=7))
    assert (status, reply["error"]) == (409, "replayed")
    status, reply = await app.post(app.table(sequence=3))
    assert (status, reply["error"]) == (409, "replayed")
    assert len(app.delivered) == 1
    assert app.rejected("replayed") == 2
    assert app.received("chk-a1", "replayed") == 2
    assert app.receiver.guard.last_sequence("chk-a1") == 7
    assert (await app.post(app.table(sequence=8)))[0] == 200


async def test_sender_label_is_unknown_until_the_mac_is_verified(app: App) -> None:
    await app.post(app.table(sender="forged-name", key=b"an-attacker-guessing-the-key-000"))
    assert app.received("unknown", "bad_mac") == 1
    assert app.received("forged-name", "bad_mac") is None


async def test_every_rejection_reason_is_preinitialised(app: App) -> None:
    for reason in [*REASONS, "replayed"]:
        assert app.rejected(reason) == 0


async def test_observability_routes(app: App) -> None:
    async with app.client.get("/healthz") as response:
        assert response.status == 503
        assert await response.json() == {"ok": False, "tables": 0}
    await app.post(app.table())
    async with app.client.get("/healthz") as response:
        assert response.status == 200
    async with app.client.get("/metrics") as response:
        text = await response.text()
    assert 'urn_tables_received_total{result="accepted",sender="chk-a1"} 1.0' in text


# --- bounded reads, against raw sockets --------------------------------------------------


async def raw_request(app: App, head: bytes, body: bytes) -> tuple[int, bytes]:
    """Send a request by hand and keep the connection open, whether or not it is complete."""
    server = app.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head + body)
        await writer.drain()
        # A deadline for failure only: the server must answer on its own.
        response = await asyncio.wait_for(reader.read(65536), timeout=10.0)
        while b"\r\n\r\n" not in response:
            more = await asyncio.wait_for(reader.read(65536), timeout=10.0)
            if not more:
                break
            response += more
    finally:
        writer.close()
    status = int(response.split(b" ", 2)[1])
    head_end = response.index(b"\r\n\r\n") + 4
    return status, response[head_end:]


def headers(length: int | None) -> bytes:
    lines = [
        b"POST /v1/table HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Content-Type: application/msgpack",
    ]
    if length is None:
        lines.append(b"Transfer-Encoding: chunked")
    else:
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def test_oversized_content_length_is_refused_before_reading(app: App) -> None:
    """Declare 100 MB, send 10 bytes: the 413 comes back without waiting for the rest."""
    status, body = await raw_request(app, headers(100_000_000), b"0123456789")
    assert status == 413
    assert b'"oversized"' in body
    assert app.rejected("oversized") == 1


async def test_bigger_capacity_is_oversized_with_a_hint(app: App) -> None:
    """Refused on Content-Length alone, so it is 413, but the detail names the likely cause."""
    status, reply = await app.post(app.table(slots=bytes(CAPACITY + 36)))
    assert (status, reply["error"]) == (413, "oversized")
    assert "a capacity-100 checker table" in reply["detail"]
    assert "a capacity-200 aggregate table" in reply["detail"]
    assert f"Content-Length {encoded_size(100, TableKind.CHECKER)}, " in reply["detail"]
    assert f"a table is {encoded_size(CAPACITY, TableKind.CHECKER)} bytes" in reply["detail"]


async def test_oversized_chunked_body_is_refused_while_streaming(app: App) -> None:
    chunk = b"\0" * (encoded_size(CAPACITY, TableKind.CHECKER) + 100)
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    status, body = await raw_request(app, headers(None), framed)
    assert status == 413
    assert b'"oversized"' in body


async def test_slow_loris_body_is_refused_after_read_timeout(app: App) -> None:
    """Send half the declared body, then stall: refused once read_timeout (0.3 s) passes."""
    table = app.table()
    status, body = await raw_request(app, headers(len(table)), table[:40])
    assert status == 400
    assert json.loads(body)["error"] == "truncated"
    assert app.delivered == []


async def test_short_body_with_honest_length_is_truncated(app: App) -> None:
    table = app.table()[:-10]
    status, body = await raw_request(app, headers(len(table)), table)
    assert (status, json.loads(body)["error"]) == (400, "truncated")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:7101", ("127.0.0.1", 7101)),
        (":8053", ("127.0.0.1", 8053)),
        ("[::1]:53", ("::1", 53)),
        ("0.0.0.0", ("0.0.0.0", 9)),
        ("", ("127.0.0.1", 9)),
    ],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value, 9) == expected


@pytest.mark.parametrize("value", ["host:http", "host:70000", "host:-1"])
def test_parse_listen_rejects_bad_ports(value: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        parse_listen(value, 9)
