"""Config faults against real processes: bad reads keep the last good config, good ones heal.

The whole fleet (farm, checkers, an aggregator, a resolver) re-reads one file every
0.3 s. Each fault is written in place of the good document: the file cut in half,
invalid YAML, a document that fails validation, a capacity change (refused: capacity
is fixed for a running fleet), a missing file. Every process must report the error in
/healthz and count it, keep serving with the last good config (an AZ failure during
the bad spell is still detected), and the next good read must heal (a record added in
it answers). An unreachable config URL is tested on a resolver reading over HTTP.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype
import pytest
from aiohttp import web

from sim.chaos import LiveFleet, fast_plan, live_fleet
from sim.fleet import Fleet
from sim.observe import metric
from sim.testing import document_dict, free_port, wait_until
from urn.http import serve

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

MEMBERS = ("resolver-1", "aggregator-1", "checker-a1", "checker-b1", "checker-c1")
HEALED = "healed.example.com."


def _good(live: LiveFleet, extra_record: bool = False) -> str:
    document = json.loads(json.dumps(live.document))
    if extra_record:
        document["records"].append(
            {
                "name": HEALED,
                "type": "A",
                "ttl": 5,
                "policy": "simple",
                "answers": [{"value": "127.100.9.9"}],
            }
        )
    return json.dumps(document, indent=1)


def _faults(live: LiveFleet) -> dict[str, tuple[str | None, str]]:
    """Fault name -> (file text, or None to remove the file; text the error must contain)."""
    good = _good(live)
    bad_slot = json.loads(good)
    bad_slot["checks"][0]["slot"] = bad_slot["capacity"] + 5
    bigger = json.loads(good)
    bigger["capacity"] = bigger["capacity"] * 2
    return {
        "truncated": (good[: len(good) // 2], "not valid YAML/JSON"),
        "invalid yaml": ("capacity: [256\nchecks: {]\n", "not valid YAML/JSON"),
        "fails validation": (json.dumps(bad_slot), "checks[0].slot"),
        "capacity change": (json.dumps(bigger), "capacity is fixed"),
        "missing file": (None, "cannot read config"),
    }


async def _errors(live: LiveFleet) -> dict[str, float]:
    return {
        m: metric(await live.metrics(m), "urn_config_loads_total", result="error") for m in MEMBERS
    }


async def test_bad_config_reads_keep_the_last_good_config_and_a_good_read_heals(
    tmp_path: Path,
) -> None:
    plan = fast_plan(resolvers=1, aggregators=1, config_interval=0.3)
    async with live_fleet(tmp_path, plan) as live:
        await live.wait_answers(dead=())
        dead: set[str] = set()
        for number, (fault, (text, says)) in enumerate(_faults(live).items()):
            before = await _errors(live)
            if text is None:
                live.config.unlink()
            else:
                live.rewrite_config(text)

            async def reported(
                fault: str = fault, says: str = says, before: dict[str, float] = before
            ) -> bool:
                now = await _errors(live)
                for member in MEMBERS:
                    error = (await live.healthz(member)).get("config_error") or ""
                    if says not in error or now[member] <= before[member]:
                        return False
                return True

            await wait_until(reported, 10, message=f"every member counting {fault!r}")
            # The last good config is still in force: the fleet serves and detects.
            if number == 2:
                await live.set_mode("b", "refuse")
                dead = {"b"}
            await live.wait_answers(dead=dead)
            got = await live.query(HEALED)
            assert got is not None, fault
            assert not got[1], (fault, got)  # the record is in no good config yet
        # The next good read heals, and its new record is served.
        live.rewrite_config(_good(live, extra_record=True))

        async def healed() -> bool:
            for member in MEMBERS:
                if (await live.healthz(member)).get("config_error") is not None:
                    return False
            got = await live.query(HEALED)
            return got is not None and got[1] == frozenset({"127.100.9.9"})

        await wait_until(healed, 10, message="every member healed, new record served")
        await live.wait_answers(dead=dead)


async def test_an_unreachable_config_url_keeps_the_last_good_config(tmp_path: Path) -> None:
    """A resolver reading its config over HTTP: 503, then nothing listening, then healed."""
    port = free_port(stable=True)  # the source restarts on this port
    state: dict[str, Any] = {
        "status": 200,
        "document": document_dict(
            records=[
                {"name": "www.example.com.", "type": "A", "answers": [{"value": "127.1.2.3"}]}
            ],
            intervals={"probe": 1.0, "push": 1.0, "config": 0.2},
        ),
    }

    async def config(_: web.Request) -> web.Response:
        if state["status"] != 200:
            return web.Response(status=state["status"], text="unavailable")
        return web.json_response(state["document"])

    async def start_source() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/urn.json", config)
        runner, _ = await serve(app, "127.0.0.1", port)
        return runner

    http_port, dns_port = free_port(), free_port()
    source = await start_source()
    try:
        async with Fleet(tmp_path, env={"URN_PUSH_KEY": secrets.token_hex(32)}) as fleet:
            await fleet.start(
                "resolver-1",
                [
                    "resolver",
                    "--config",
                    f"http://127.0.0.1:{port}/urn.json",
                    "--id",
                    "r1",
                    "--listen",
                    f"127.0.0.1:{http_port}",
                    "--dns",
                    f"127.0.0.1:{dns_port}",
                ],
                f"http://127.0.0.1:{http_port}/healthz",
            )
            await fleet.wait_healthy(timeout=30)
            async with aiohttp.ClientSession() as session:

                async def error_says(text: str) -> bool:
                    async with session.get(f"http://127.0.0.1:{http_port}/healthz") as r:
                        body = await r.json(content_type=None)
                    return text in (body.get("config_error") or "")

                async def answers(name: str) -> frozenset[str] | None:
                    reply = await _dns(dns_port, name)
                    return None if reply is None else reply[1]

                assert await answers("www.example.com.") == frozenset({"127.1.2.3"})
                state["status"] = 503
                await wait_until(lambda: error_says("HTTP 503"), 10, message="503 reported")
                assert await answers("www.example.com.") == frozenset({"127.1.2.3"})
                await source.cleanup()
                await wait_until(
                    lambda: error_says("cannot read config"), 10, message="refused reported"
                )
                assert await answers("www.example.com.") == frozenset({"127.1.2.3"})
                state["status"] = 200
                state["document"]["records"][0]["answers"] = [{"value": "127.1.2.4"}]
                source = await start_source()

                async def healed() -> bool:
                    return await answers("www.example.com.") == frozenset({"127.1.2.4"})

                await wait_until(healed, 10, message="new config applied after the outage")
                assert not await error_says("cannot")
    finally:
        await source.cleanup()


async def _dns(port: int, name: str) -> tuple[int, frozenset[str]] | None:
    query = dns.message.make_query(name, dns.rdatatype.A)
    try:
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=1.0)
    except (dns.exception.Timeout, OSError):
        return None
    return reply.rcode(), frozenset(r.to_text() for rrset in reply.answer for r in rrset)
