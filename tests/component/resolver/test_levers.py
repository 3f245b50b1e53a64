"""Operator levers through a real resolver (loopback, FakeClock): zonal shifts, overrides,
invert, min_healthy, when_all_down and ttl_when_degraded over classic DNS and DoH-JSON,
expiry stepped by the injected clock with no config pass, and what explain, /v1/status
and /metrics say (docs/resolver.md, "Operator levers")."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aiohttp
import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
from prometheus_client import CollectorRegistry

from sim.testing import FakeClock, document_dict, wait_until
from sim.testing.resolver import running_resolver, write_config
from urn.config.levers import format_time
from urn.table import Reason, Status, aggregated_byte

if TYPE_CHECKING:
    from pathlib import Path

    from sim.testing.resolver import RunningResolver

CAPACITY = 16
UP = aggregated_byte(Status.HEALTHY)
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
AZ_OF = "aabbcc"  # slots 0-5
WWW = [f"10.0.0.{slot + 1}" for slot in range(6)]


def checks(**extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Slots 0-5 in AZs a, a, b, b, c, c; `extra["s3"]` goes into slot 3's check."""
    return [
        {"slot": slot, "name": f"c{slot}", "type": "tcp", "host": "127.0.0.1", "port": 9,
         "az": az, **extra.get(f"s{slot}", {})}
        for slot, az in enumerate(AZ_OF)
    ]  # fmt: skip


def records() -> list[dict[str, Any]]:
    def one_slot(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "answers": [{"value": "10.9.0.1", "check": 4}], **extra}

    return [
        {
            "name": "www.example.com.",
            "ttl": 30,
            "ttl_when_degraded": 5,
            "policy": "simple",
            "answers": [{"value": value, "check": slot} for slot, value in enumerate(WWW)],
        },
        {  # AZ a's slot 0 and AZ b's slot 2
            "name": "pair.example.com.",
            "answers": [{"value": "10.1.0.1", "check": 0}, {"value": "10.1.0.2", "check": 2}],
        },
        {
            "name": "four.example.com.",
            "min_healthy": {"count": 2},
            "answers": [{"value": f"10.2.0.{slot + 1}", "check": slot} for slot in range(4)],
        },
        one_slot("closed.example.com.", when_all_down="closed"),
        one_slot("gone.example.com.", when_all_down="nxdomain"),
        one_slot("fail.example.com.", when_all_down="servfail"),
    ]


def config(tmp_path: Path, **top: Any) -> Path:
    extra = top.pop("checks", {})
    top.setdefault("intervals", {"probe": 1.0, "push": 1.0, "config": 3600.0})  # no pass
    document = document_dict(checks=checks(**extra), records=records(), capacity=CAPACITY, **top)
    return write_config(tmp_path / "urn.json", document)


def table(*down: int) -> bytes:
    slots = bytearray([UP]) * CAPACITY
    for slot in down:
        slots[slot] = DOWN
    return bytes(slots)


async def dig(resolver: RunningResolver, name: str) -> dns.message.Message:
    query = dns.message.make_query(name, "A")
    return await dns.asyncquery.udp(query, "127.0.0.1", port=resolver.dns_port, timeout=5)


def values(reply: dns.message.Message) -> list[str]:
    return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)


async def get_json(url: str, **params: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        assert response.status == 200
        body: dict[str, Any] = json.loads(await response.text())
        return body


async def resolve_json(resolver: RunningResolver, name: str) -> dict[str, Any]:
    return await get_json(f"{resolver.url}/v1/resolve", name=name, type="A")


def data(body: dict[str, Any]) -> list[str]:
    return sorted(answer["data"] for answer in body["Answer"])


async def test_a_zonal_shift_takes_its_az_out_until_it_expires_with_no_config_pass(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    shift = {"az": "b", "until": format_time(clock.time() + 120), "reason": "deploy 4.2"}
    async with running_resolver(
        config(tmp_path, shifts=[shift]), clock=clock, registry=registry
    ) as resolver:
        await resolver.push(table())
        not_b = [WWW[i] for i in (0, 1, 4, 5)]
        reply = await dig(resolver, "www.example.com.")
        assert values(reply) == not_b
        assert reply.answer[0].ttl == 5  # a shift holds: the record is degraded
        body = await resolve_json(resolver, "www.example.com")
        assert data(body) == not_b
        assert {a["TTL"] for a in body["Answer"]} == {5}
        explained = await get_json(f"{resolver.url}/v1/explain", name="www.example.com")
        assert explained["shifts"] == [shift | {"active": True}]
        answers = explained["records"][0]["answers"]
        assert [a["shifted"] for a in answers] == [None, None, "b", "b", None, None]
        assert [a["counted_as"] for a in answers][2:4] == ["unhealthy", "unhealthy"]
        assert registry.get_sample_value("urn_zonal_shift_active", {"az": "b"}) == 1
        assert registry.get_sample_value("urn_zonal_shift_active", {"az": "a"}) == 0
        passes = registry.get_sample_value("urn_config_loads_total", {"result": "ok"})

        await clock.advance(121.0)  # past `until`: the next refresh drops the shift
        await resolver.push(table())
        await wait_until(
            lambda: resolver.service.responder.decision.shifted_azs == (),
            message="the expired shift to drop out",
        )
        reply = await dig(resolver, "www.example.com.")
        assert values(reply) == WWW
        assert reply.answer[0].ttl == 30
        assert data(await resolve_json(resolver, "www.example.com")) == WWW
        assert registry.get_sample_value("urn_zonal_shift_active", {"az": "b"}) == 0
        assert registry.get_sample_value("urn_config_loads_total", {"result": "ok"}) == passes
        explained = await get_json(f"{resolver.url}/v1/explain", name="www.example.com")
        assert explained["shifts"] == [shift | {"active": False}]


async def test_a_shift_that_would_empty_a_name_is_ignored_and_says_so(tmp_path: Path) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    shift = {"az": "b", "until": format_time(clock.time() + 600), "reason": "drill"}
    async with running_resolver(
        config(tmp_path, shifts=[shift]), clock=clock, registry=registry
    ) as resolver:
        await resolver.push(table(0))  # pair's AZ a answer is down; its other is in AZ b
        reply = await dig(resolver, "pair.example.com.")
        assert values(reply) == ["10.1.0.2"]
        body = await resolve_json(resolver, "pair.example.com")
        assert data(body) == ["10.1.0.2"]
        assert body["shift_ignored"] is True
        assert "shift_ignored" not in await resolve_json(resolver, "www.example.com")
        explained = await get_json(f"{resolver.url}/v1/explain", name="pair.example.com")
        (record,) = explained["records"]
        assert record["mode"] == "shift_ignored"
        assert [a["counted_as"] for a in record["answers"]] == ["unhealthy", "healthy"]
        resolver.service.flush_metrics()
        assert registry.get_sample_value("urn_lever_records", {"state": "shift_ignored"}) == 1
        assert registry.get_sample_value("urn_lever_answers_total", {"lever": "shift_ignored"}) == 2
        resolver.service.status.refresh()
        snapshot = await get_json(f"{resolver.url}/v1/status")
        page = await get_json(f"{resolver.url}/v1/status/checks")
        assert (page["azs"], snapshot["shifted"]) == (["a", "b", "c"], "010")
        assert page["shifts"] == [[shift["az"], shift["until"], shift["reason"]]]
        names = [record[0] for record in page["records"]]
        flags = dict(zip(names, snapshot["record_flags"], strict=True))
        assert (flags["pair.example.com."], flags["www.example.com."]) == ("S", ".")
        assert int(snapshot["records_ignoring_shift"]) == 1


async def test_an_override_holds_until_it_expires_and_invert_flips_a_check(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    maintenance = {"status": "unhealthy", "until": format_time(clock.time() + 60), "reason": "disk"}
    path = config(tmp_path, checks={"s0": {"override": maintenance}, "s1": {"invert": True}})
    async with running_resolver(path, clock=clock, registry=registry) as resolver:
        await resolver.push(table(5))  # slot 1 is healthy, so inverted it counts as down
        expected = WWW[2:5]  # 0 overridden down, 1 healthy inverted down, 5 down
        assert values(await dig(resolver, "www.example.com.")) == expected
        assert data(await resolve_json(resolver, "www.example.com")) == expected
        explained = await get_json(f"{resolver.url}/v1/explain", name="www.example.com")
        first, second = explained["records"][0]["answers"][:2]
        assert first["override"] == maintenance | {"active": True}
        assert (first["status"], first["counted_as"]) == ("healthy", "unhealthy")
        assert (second["inverted"], second["counted_as"]) == (True, "unhealthy")
        assert registry.get_sample_value("urn_check_overrides", {"status": "unhealthy"}) == 1
        assert registry.get_sample_value("urn_checks_inverted") == 1
        resolver.service.status.refresh()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{resolver.url}/v1/status/checks") as response:
                page = await response.json()
            async with session.get(f"{resolver.url}/v1/status") as response:
                snapshot = await response.json()
        levers = {row[0]: row[5] for row in page["checks"]}
        assert levers[0] == f"override unhealthy until {maintenance['until']}: disk"
        assert levers[1] == "inverted"
        assert int(snapshot["overrides_active"]) == 1

        await clock.advance(61.0)  # the override lapses by itself; invert has no expiry
        await resolver.push(table(5))
        await wait_until(
            lambda: not resolver.service.responder.decision.forced.any(),
            message="the override to lapse",
        )
        assert values(await dig(resolver, "www.example.com.")) == [WWW[0], *WWW[2:5]]
        assert registry.get_sample_value("urn_check_overrides", {"status": "unhealthy"}) == 0
        resolver.service.status.refresh()
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{resolver.url}/v1/status") as response,
        ):
            assert int((await response.json())["overrides_active"]) == 0


async def test_below_min_healthy_a_record_answers_all_and_counts_it(tmp_path: Path) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    async with running_resolver(config(tmp_path), clock=clock, registry=registry) as resolver:
        await resolver.push(table(0, 1, 2))  # one of four healthy, below count 2
        everything = [f"10.2.0.{i}" for i in range(1, 5)]
        assert values(await dig(resolver, "four.example.com.")) == everything
        body = await resolve_json(resolver, "four.example.com")
        assert (data(body), body["panic"]) == (everything, True)
        await resolver.push(table(0, 1))  # two healthy: at the threshold, no panic
        reply = await dig(resolver, "four.example.com.")
        assert values(reply) == ["10.2.0.3", "10.2.0.4"]
        assert "panic" not in await resolve_json(resolver, "four.example.com")
        resolver.service.flush_metrics()
        assert registry.get_sample_value("urn_lever_answers_total", {"lever": "panic"}) == 2
        assert registry.get_sample_value("urn_lever_records", {"state": "panic"}) == 0


async def test_when_all_down_answers_each_records_own_way(tmp_path: Path) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    async with running_resolver(config(tmp_path), clock=clock, registry=registry) as resolver:
        await resolver.push(table(4))  # the one answer of closed, gone and fail is down
        closed = await dig(resolver, "closed.example.com.")
        assert (closed.rcode(), closed.answer) == (dns.rcode.NOERROR, [])
        assert [rrset.rdtype for rrset in closed.authority] == [dns.rdatatype.SOA]
        gone = await dig(resolver, "gone.example.com.")
        assert gone.rcode() == dns.rcode.NXDOMAIN
        assert [rrset.rdtype for rrset in gone.authority] == [dns.rdatatype.SOA]
        assert (await dig(resolver, "fail.example.com.")).rcode() == dns.rcode.SERVFAIL
        for name, status, note in (
            ("closed.example.com", 0, "closed"),
            ("gone.example.com", 3, "nxdomain"),
            ("fail.example.com", 2, "servfail"),
        ):
            body = await resolve_json(resolver, name)
            assert (body["Status"], body["Answer"], body["all_down"]) == (status, [], note)
        assert len(values(await dig(resolver, "www.example.com."))) == 5  # one of six down
        resolver.service.flush_metrics()
        for lever in ("all_down_closed", "all_down_nxdomain", "all_down_servfail"):
            assert registry.get_sample_value("urn_lever_answers_total", {"lever": lever}) == 2
            assert registry.get_sample_value("urn_lever_records", {"state": lever}) == 1
        await resolver.push(table())  # back up: answers again
        assert values(await dig(resolver, "closed.example.com.")) == ["10.9.0.1"]


async def test_ttl_when_degraded_follows_the_health_of_the_record(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        await resolver.push(table())
        assert (await dig(resolver, "www.example.com.")).answer[0].ttl == 30
        await resolver.push(table(0))
        reply = await dig(resolver, "www.example.com.")
        assert (len(values(reply)), reply.answer[0].ttl) == (5, 5)
        assert {a["TTL"] for a in (await resolve_json(resolver, "www.example.com"))["Answer"]} == {
            5
        }
        await resolver.push(table())
        assert (await dig(resolver, "www.example.com.")).answer[0].ttl == 30


async def test_levers_apply_over_a_held_table_and_over_stale_unknown(tmp_path: Path) -> None:
    clock = FakeClock()
    shift = {"az": "c", "until": format_time(clock.time() + 3600), "reason": "drill"}
    async with running_resolver(
        config(tmp_path, shifts=[shift], max_table_age=10.0),
        clock=clock,
    ) as resolver:
        await resolver.push(table(0))
        await clock.advance(11.0)  # every aggregator silent: the last table holds
        await wait_until(lambda: resolver.service.state == "held", message="a held table")
        assert values(await dig(resolver, "www.example.com.")) == WWW[1:4]
    stale_dir = tmp_path / "stale"
    stale_dir.mkdir()
    clock = FakeClock()
    maintenance = {"status": "unhealthy", "until": format_time(clock.time() + 3600), "reason": "x"}
    path = config(stale_dir, checks={"s0": {"override": maintenance}}, on_stale="open")
    async with running_resolver(path, clock=clock) as resolver:
        await resolver.push(table(1, 2, 3, 4, 5))
        await clock.advance(31.0)  # past max_table_age with on_stale open: all unknown
        await wait_until(lambda: resolver.service.state == "stale", message="a stale table")
        assert values(await dig(resolver, "www.example.com.")) == WWW[1:]  # override stands


async def test_a_lever_beyond_72_hours_is_refused_and_the_last_good_stays(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    path = config(tmp_path)
    async with running_resolver(path, clock=clock) as resolver:
        await resolver.push(table())
        document = json.loads(path.read_text())
        far = format_time(clock.time() + 72 * 3600 + 1)
        document["shifts"] = [{"az": "b", "until": far, "reason": "too long"}]
        path.write_text(json.dumps(document))
        assert not await resolver.service.reload()
        error = resolver.service.loader.last_error
        assert error is not None
        assert error.startswith(f"shifts[0].until: '{far}' is more than 72 hours after")
        assert values(await dig(resolver, "www.example.com.")) == WWW


async def test_an_az_the_aggregated_table_autoshifts_leaves_unless_an_operator_shift_rules(
    tmp_path: Path,
) -> None:
    """Autoshift travels in the aggregated table: its AZ leaves as a document's shift
    would (never emptying a name), the next table without it brings the AZ back, and an
    operator's shift in force sets it aside (docs/resolver.md, "Operator levers")."""
    clock = FakeClock()
    registry = CollectorRegistry()
    async with running_resolver(config(tmp_path), clock=clock, registry=registry) as resolver:
        await resolver.push(table(), autoshift="c")
        assert values(await dig(resolver, "www.example.com.")) == WWW[:4]
        assert data(await resolve_json(resolver, "www.example.com")) == WWW[:4]
        assert registry.get_sample_value("urn_autoshift_active", {"az": "c"}) == 1
        assert registry.get_sample_value("urn_zonal_shift_active", {"az": "c"}) == 1
        explained = await get_json(f"{resolver.url}/v1/explain", name="www.example.com")
        assert explained["autoshift"] == {"azs": ["c"], "active": True, "overruled_by_shift": False}

        await resolver.push(table(0), autoshift="b")  # pair: a's answer down, b's shifted
        assert values(await dig(resolver, "pair.example.com.")) == ["10.1.0.2"]
        explained = await get_json(f"{resolver.url}/v1/explain", name="pair.example.com")
        assert explained["records"][0]["mode"] == "shift_ignored"

        await resolver.push(table())
        assert values(await dig(resolver, "www.example.com.")) == WWW
        assert registry.get_sample_value("urn_autoshift_active", {"az": "c"}) == 0

    shifted_dir = tmp_path / "shifted"
    shifted_dir.mkdir()
    shift = {"az": "a", "until": format_time(clock.time() + 600), "reason": "deploy"}
    async with running_resolver(
        config(shifted_dir, shifts=[shift]), clock=clock, registry=CollectorRegistry()
    ) as resolver:
        await resolver.push(table(), autoshift="c")
        assert values(await dig(resolver, "www.example.com.")) == WWW[2:]  # only a leaves
        explained = await get_json(f"{resolver.url}/v1/explain", name="www.example.com")
        assert explained["autoshift"] == {"azs": ["c"], "active": False, "overruled_by_shift": True}
        await clock.advance(601.0)  # the operator's shift expires: the autoshift stands
        await wait_until(
            lambda: resolver.service.responder.decision.shifted_azs == ("c",),
            message="the autoshift once the shift expired",
        )
        assert values(await dig(resolver, "www.example.com.")) == WWW[:4]


async def test_a_replica_that_lost_an_autoshift_does_not_take_turns_with_the_one_holding_it(
    tmp_path: Path,
) -> None:
    """agg-2 restarted and no longer carries the autoshift agg-1 still holds: with equal
    checkers the resolver keeps answering from agg-1, whichever arrives last."""
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        await resolver.push(table(), sender="agg-1", autoshift="c")
        for _ in range(3):
            await resolver.push(table(), sender="agg-2")
            assert values(await dig(resolver, "www.example.com.")) == WWW[:4]
            await resolver.push(table(), sender="agg-1", autoshift="c")
            assert values(await dig(resolver, "www.example.com.")) == WWW[:4]
        assert resolver.service.answering is not None
        assert resolver.service.answering.sender == "agg-1"
        await resolver.push(table(), sender="agg-2", checkers=4)  # sees more: it wins
        assert values(await dig(resolver, "www.example.com.")) == WWW
