"""One resolver in-process (FakeClock, port 0): tables in, staleness, config passes, HTTP API."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import aiohttp
import dns.message
import pytest
from prometheus_client import CollectorRegistry

from sim.testing import FakeClock, document_dict, signed_table, wait_until
from sim.testing.resolver import multivalue_record, running_resolver, tcp_checks, write_config
from urn.table import Reason, Status, aggregated_byte
from urn.wire import TableKind, encoded_size

if TYPE_CHECKING:
    from pathlib import Path

CAPACITY = 64
UP = aggregated_byte(Status.HEALTHY)
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)


def config(tmp_path: Path, **top: Any) -> Path:
    records = [multivalue_record("www.example.com.", 8)]
    records += top.pop("extra_records", [])
    document = document_dict(checks=tcp_checks(range(8)), records=records, capacity=CAPACITY, **top)
    return write_config(tmp_path / "urn.json", document)


def slots(down: range | list[int] = ()) -> bytes:
    table = bytearray([UP]) * CAPACITY
    for slot in down:
        table[slot] = DOWN
    return bytes(table)


async def get_json(url: str, **params: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        return response.status, json.loads(await response.text())


async def resolve_values(url: str, name: str = "www.example.com") -> list[str]:
    status, body = await get_json(f"{url}/v1/resolve", name=name, type="A")
    assert status == 200
    return sorted(answer["data"] for answer in body["Answer"])


ALL = sorted(f"10.0.0.{i}" for i in range(1, 9))


async def test_answers_all_before_any_table_and_says_so(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver:
        assert await resolve_values(resolver.url) == ALL
        status, health = await get_json(f"{resolver.url}/healthz")
        assert status == 200
        assert health["table"]["state"] == "no table yet"
        assert health["table"]["age"] is None


async def test_past_max_table_age_the_last_good_table_holds_and_says_so(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_resolver(
        config(tmp_path, max_table_age=10.0), dns=False, clock=clock
    ) as resolver:
        status, _ = await resolver.push(slots(range(5)))
        assert status == 200
        assert await resolve_values(resolver.url) == ["10.0.0.6", "10.0.0.7", "10.0.0.8"]
        assert (await get_json(f"{resolver.url}/readyz"))[0] == 200
        await clock.advance(9.0)
        assert await resolve_values(resolver.url) == ["10.0.0.6", "10.0.0.7", "10.0.0.8"]
        await clock.advance(1.5)  # older than max_table_age: held, not believed fresh
        _, health = await get_json(f"{resolver.url}/healthz")
        assert health["table"]["state"] == "held"
        assert health["table"]["age"] == pytest.approx(10.5)
        status, ready = await get_json(f"{resolver.url}/readyz")
        assert status == 503
        assert "holding the last good table" in ready["reason"]
        _, answer = await get_json(f"{resolver.url}/v1/resolve", name="www.example.com")
        assert answer["table"] == "held"
        assert await resolve_values(resolver.url) == ["10.0.0.6", "10.0.0.7", "10.0.0.8"]
        assert resolver.service.registry.get_sample_value("urn_table_held") == 1
        await resolver.push(slots(range(6)))  # a fresh table heals
        assert await resolve_values(resolver.url) == ["10.0.0.7", "10.0.0.8"]
        assert (await get_json(f"{resolver.url}/readyz"))[0] == 200
        assert resolver.service.registry.get_sample_value("urn_table_held") == 0


async def test_with_on_stale_open_a_silent_fleet_reads_every_slot_unknown(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_resolver(
        config(tmp_path, max_table_age=10.0, on_stale="open"), dns=False, clock=clock
    ) as resolver:
        await resolver.push(slots(range(5)))
        assert await resolve_values(resolver.url) == ["10.0.0.6", "10.0.0.7", "10.0.0.8"]
        await clock.advance(10.5)
        _, health = await get_json(f"{resolver.url}/healthz")
        assert health["table"]["state"] == "stale"
        assert await resolve_values(resolver.url) == ALL
        status, ready = await get_json(f"{resolver.url}/readyz")
        assert status == 503
        assert "every slot unknown" in ready["reason"]


async def test_readyz_is_503_until_the_first_table(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver:
        status, ready = await get_json(f"{resolver.url}/readyz")
        assert status == 503
        assert ready["reason"] == "no aggregated table received yet"
        registry = resolver.service.registry
        assert registry.get_sample_value("urn_ready") == 0
        await resolver.push(slots())
        assert (await get_json(f"{resolver.url}/readyz"))[0] == 200
        assert registry.get_sample_value("urn_ready") == 1


async def test_the_sender_timestamp_decides_nothing_receipt_does(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_resolver(config(tmp_path), dns=False, clock=clock) as resolver:
        now = clock.time()
        await resolver.push(slots([0]), sender="agg-1", generated_at=now + 15.0)  # clock ahead
        await resolver.push(slots([1]), sender="agg-2", generated_at=now)  # received later
        values = await resolve_values(resolver.url)
        assert "10.0.0.2" not in values
        assert "10.0.0.1" in values
        assert resolver.service.answering is not None
        assert resolver.service.answering.sender == "agg-2"


async def test_a_replica_built_from_fewer_checkers_never_wins(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_resolver(config(tmp_path), dns=False, clock=clock) as resolver:
        await resolver.push(slots([0]), sender="agg-1", checkers=6, azs=3)
        await resolver.push(slots([1]), sender="agg-2", checkers=2, azs=1)  # half blind
        values = await resolve_values(resolver.url)
        assert "10.0.0.1" not in values
        assert "10.0.0.2" in values
        # Once agg-1 falls silent, the next round's table answers whatever it saw.
        await clock.advance(1.0)
        await resolver.push(slots([1]), sender="agg-2", checkers=2, azs=1)
        assert "10.0.0.2" not in await resolve_values(resolver.url)


async def test_rejected_tables_change_nothing(tmp_path: Path) -> None:
    checker_table = signed_table(slots(range(8)), kind=TableKind.CHECKER)
    # A checker table carries 2 bytes a slot: whole, it is larger than any aggregate table
    # of the resolver's capacity; cut to that size its head still names the wrong kind.
    assert len(checker_table) > encoded_size(CAPACITY, TableKind.AGGREGATE)
    async with running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver:
        async with aiohttp.ClientSession() as session:
            for body, expected, reason in (
                (checker_table, 413, "oversized"),
                (checker_table[: encoded_size(CAPACITY, TableKind.AGGREGATE)], 400, "kind"),
                (
                    signed_table(slots(range(8)), kind=TableKind.AGGREGATE, key=b"x" * 32),
                    401,
                    "bad_mac",
                ),
                (signed_table(slots(range(8))[:10], kind=TableKind.AGGREGATE), 400, "capacity"),
                (b"\x00" * 5000, 413, "oversized"),
            ):
                async with session.post(f"{resolver.url}/v1/table", data=body) as response:
                    assert response.status == expected, reason
                    assert (await response.json())["error"] == reason
        assert resolver.service.answering is None
        assert await resolve_values(resolver.url) == ALL
        registry = resolver.service.registry
        assert registry.get_sample_value("urn_tables_rejected_total", {"reason": "kind"}) == 1
        assert registry.get_sample_value("urn_tables_rejected_total", {"reason": "oversized"}) == 2


async def test_config_pass_recompiles_records(tmp_path: Path) -> None:
    clock = FakeClock()
    path = config(tmp_path)
    async with running_resolver(path, dns=False, clock=clock) as resolver:
        _, body = await get_json(f"{resolver.url}/v1/resolve", name="new.example.com")
        assert body["Status"] == 3
        assert resolver.service.responder is not None
        compiled = resolver.service.responder.compiled
        loads = resolver.service.registry.get_sample_value(
            "urn_config_loads_total", {"result": "ok"}
        )
        await clock.advance(5.0)  # a pass over identical bytes keeps what it compiled
        await wait_until(
            lambda: (
                resolver.service.registry.get_sample_value(
                    "urn_config_loads_total", {"result": "ok"}
                )
                == (loads or 0) + 1
            )
        )
        assert resolver.service.responder.compiled is compiled
        config(
            tmp_path,
            extra_records=[{"name": "new.example.com.", "answers": [{"value": "10.5.5.5"}]}],
        )
        await clock.advance(5.0)
        await wait_until(
            lambda: resolver.service.loader.current.document.records[-1].name == "new.example.com."
        )
        assert await resolve_values(resolver.url, "new.example.com") == ["10.5.5.5"]
        path.write_text("records: [oops")  # a bad pass keeps the last good config
        await clock.advance(5.0)
        await wait_until(lambda: resolver.service.loader.last_error is not None)
        assert await resolve_values(resolver.url, "new.example.com") == ["10.5.5.5"]


async def test_metrics_count_queries_fail_open_and_table_age(tmp_path: Path) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    async with running_resolver(
        config(tmp_path), dns=False, clock=clock, registry=registry
    ) as resolver:
        await resolver.push(slots(range(8)))
        await clock.advance(2.0)
        _, body = await get_json(f"{resolver.url}/v1/resolve", name="www.example.com")
        assert body["fail_open"] is True
        await get_json(f"{resolver.url}/v1/resolve", name="nope.example.com")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{resolver.url}/metrics") as response,
        ):
            text = await response.text()
        assert 'urn_queries_total{qtype="A",rcode="noerror",transport="json"} 1.0' in text
        assert 'urn_queries_total{qtype="A",rcode="nxdomain",transport="json"} 1.0' in text
        assert registry.get_sample_value("urn_fail_open_answers_total") == 1
        assert registry.get_sample_value("urn_table_age_seconds") == pytest.approx(2.0)
        assert registry.get_sample_value("urn_slots", {"status": "unhealthy"}) == 8
        assert (
            registry.get_sample_value(
                "urn_queries_total", {"transport": "udp", "qtype": "TXT", "rcode": "refused"}
            )
            == 0
        )


async def test_bad_http_input_gets_400_with_a_reason(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver:
        url = resolver.url
        for path, params, needle in (
            ("/v1/resolve", {}, "name"),
            ("/v1/resolve", {"name": "a..b"}, "empty label"),
            ("/v1/resolve", {"name": "www.example.com", "type": "NOPE"}, "not a DNS record type"),
            ("/v1/explain", {}, "name"),
            ("/dns-query", {}, "dns"),
            ("/dns-query", {"dns": "!!!"}, "base64url"),
            ("/dns-query", {"dns": "AAAA"}, "not a DNS query"),
        ):
            status, body = await get_json(url + path, **params)
            assert status == 400, path
            assert needle in body["error"]
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{url}/dns-query", data=b"x", headers={"Content-Type": "text/plain"}
            ) as response:
                assert response.status == 415
            big = b"\0" * 70000
            async with session.post(
                f"{url}/dns-query", data=big, headers={"Content-Type": "application/dns-message"}
            ) as response:
                assert response.status == 413


async def test_doh_get_and_post_with_raw_wire(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver:
        await resolver.push(slots([0, 1]))
        query = dns.message.make_query("WWW.example.com.", "A")
        query.id = 0  # RFC 8484 asks clients for id 0, for caching
        wire = query.to_wire()
        encoded = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"{resolver.url}/dns-query", params={"dns": encoded}
            ) as response:
                assert response.status == 200
                assert response.content_type == "application/dns-message"
                get_reply = dns.message.from_wire(await response.read())
            async with session.post(
                f"{resolver.url}/dns-query",
                data=wire,
                headers={"Content-Type": "application/dns-message"},
            ) as response:
                post_reply = dns.message.from_wire(await response.read())
        for reply in (get_reply, post_reply):
            assert str(reply.question[0].name) == "WWW.example.com."
            assert sorted(r.address for r in reply.answer[0]) == ALL[2:]


async def test_explain_over_http(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver:
        await resolver.push(slots([3]), sender="agg-7")
        status, body = await get_json(
            f"{resolver.url}/v1/explain", name="WWW.example.com", type="A"
        )
        assert status == 200
        assert body["table"]["aggregator"] == "agg-7"
        assert body["table"]["state"] == "fresh"
        answers = body["records"][0]["answers"]
        assert answers[3] == {
            "value": "10.0.0.4",
            "slot": 3,
            "weight": 1,
            "role": None,
            "counted_as": "unhealthy",
            "status": "unhealthy",
            "reason": "timeout",
            "inverted": False,
            "override": None,
            "shifted": None,
        }


def drift_config(tmp_path: Path, slot3_host: str = "127.0.0.1", slot5_failures: int = 1) -> Path:
    checks = tcp_checks(range(8))
    checks[3] = {**checks[3], "host": slot3_host}
    checks[5] = {**checks[5], "failures": slot5_failures, "of_last": 3}
    document = document_dict(
        checks=checks,
        records=[multivalue_record("www.example.com.", 8)],
        capacity=CAPACITY,
        max_table_age=60.0,
    )
    return write_config(tmp_path / "urn.json", document)


async def test_table_from_before_a_target_change_cannot_speak_for_that_slot(
    tmp_path: Path,
) -> None:
    """Slot 3's check gets a new host: a table made under the old config describes the old
    host, so slot 3 reads unknown (answered) until a table of the current config arrives;
    every slot whose target did not change keeps the table's verdict."""
    clock = FakeClock()
    path = drift_config(tmp_path)
    sequence = iter(range(1, 100))

    async def push(down: list[int], digest: bytes) -> None:
        body = signed_table(
            slots(down),
            kind=TableKind.AGGREGATE,
            sender="agg-1",
            sequence=next(sequence),
            generated_at=clock.time(),
            digest=digest,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{resolver.url}/v1/table", data=body) as response,
        ):
            assert response.status == 200, await response.text()

    async def explained(slot: int) -> dict[str, Any]:
        status, body = await get_json(f"{resolver.url}/v1/explain", name="www.example.com")
        assert status == 200
        (record,) = body["records"]
        answer: dict[str, Any] = record["answers"][slot]
        assert answer["slot"] == slot
        return answer

    async with running_resolver(path, dns=False, clock=clock) as resolver:
        service = resolver.service
        assert service.document is not None
        old = service.document.digest
        await push([3, 5], old)
        assert await resolve_values(resolver.url) == [
            a for a in ALL if a not in ("10.0.0.4", "10.0.0.6")
        ]

        # Slot 3 now probes another host; slot 5 only changes how many failures count.
        drift_config(tmp_path, slot3_host="127.0.0.33", slot5_failures=2)
        assert await service.reload()
        new = service.document.digest
        assert new != old
        assert await resolve_values(resolver.url) == [a for a in ALL if a != "10.0.0.6"]
        three = await explained(3)
        assert three["status"] == "unknown"
        assert three["reason"].startswith("config_changed")
        assert three["counted_as"] == "healthy"
        five = await explained(5)
        assert (five["status"], five["reason"], five["counted_as"]) == (
            "unhealthy",
            "timeout",
            "unhealthy",
        )
        _, health = await get_json(f"{resolver.url}/healthz")
        assert health["table"]["digest_matches"] is False

        # A newer table from an aggregator still on the old config changes nothing for 3.
        await clock.advance(1.0)
        await push([3, 5], old)
        assert await resolve_values(resolver.url) == [a for a in ALL if a != "10.0.0.6"]
        assert (await explained(3))["status"] == "unknown"

        # A table made under the current config speaks for slot 3 again.
        await clock.advance(1.0)
        await push([3], new)
        assert await resolve_values(resolver.url) == [a for a in ALL if a != "10.0.0.4"]
        three = await explained(3)
        assert (three["status"], three["reason"], three["counted_as"]) == (
            "unhealthy",
            "timeout",
            "unhealthy",
        )
        assert (await explained(5))["status"] == "healthy"
        _, health = await get_json(f"{resolver.url}/healthz")
        assert health["table"]["digest_matches"] is True
