"""Helpers to run a resolver in-process on loopback port 0 (tests, benches, the demo)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from resolver.app import SERVICE, make_app
from resolver.settings import ResolverSettings
from sim.testing import TEST_PUSH_KEY, signed_table
from urn.http import serve
from urn.wire import TableKind

if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator, Mapping
    from pathlib import Path

    from prometheus_client import CollectorRegistry

    from resolver.answer import Responder
    from resolver.service import ResolverService
    from urn.clock import Clock

__all__ = [
    "CORPUS_RCODES",
    "TEST_ENVIRON",
    "RunningResolver",
    "answer_from",
    "check_outcome",
    "failover_record",
    "multivalue_record",
    "running_resolver",
    "tcp_checks",
    "write_config",
]

TEST_ENVIRON = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}


def write_config(path: Path, document: Mapping[str, Any]) -> Path:
    """Write a config document as JSON (valid YAML) and return its path."""
    path.write_text(json.dumps(document))
    return path


@dataclass
class RunningResolver:
    service: ResolverService
    url: str  # http://127.0.0.1:PORT
    dns_port: int
    dot_port: int = 0  # DNS over TLS, when asked for

    async def push(
        self,
        slots: bytes,
        *,
        sender: str = "agg-1",
        sequence: int | None = None,
        generated_at: float | None = None,
        checkers: int = 3,
        azs: int = 3,
        autoshift: str = "",
    ) -> tuple[int, str]:
        """POST a signed aggregated table, as an aggregator built from `checkers` fresh
        checkers in `azs` AZs would, with `autoshift` the AZ it shifted away; (status,
        body)."""
        body = signed_table(
            slots,
            kind=TableKind.AGGREGATE,
            sender=sender,
            sequence=time.time_ns() if sequence is None else sequence,
            generated_at=self.service.clock.time() if generated_at is None else generated_at,
            checkers=checkers,
            azs=azs,
            autoshift=autoshift,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/v1/table",
                data=body,
                headers={"Content-Type": "application/msgpack"},
            ) as response,
        ):
            return response.status, await response.text()


@contextlib.asynccontextmanager
async def running_resolver(
    config: Path | str,
    *,
    dns: bool = True,
    dot: bool = False,
    tcp_message_timeout: float = 5.0,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    resolver_id: str = "res-test",
) -> AsyncIterator[RunningResolver]:
    """A resolver serving HTTP and (unless `dns=False`) DNS on free loopback ports, and
    DNS over TLS when `dot` (the config must name a certificate)."""
    settings = ResolverSettings(
        id=resolver_id,
        config=str(config),
        listen_host="127.0.0.1",
        listen_port=0,
        dns_host="127.0.0.1" if dns else None,
        dns_port=0,
        dot_host="127.0.0.1" if dot else None,
        dot_port=0,
        tcp_message_timeout=tcp_message_timeout,
    )
    app = make_app(
        settings,
        clock=clock,
        rng=rng,
        registry=registry,
        environ=TEST_ENVIRON if environ is None else environ,
    )
    runner, port = await serve(app, "127.0.0.1", 0)
    try:
        service = app[SERVICE].service
        yield RunningResolver(
            service=service,
            url=f"http://127.0.0.1:{port}",
            dns_port=service.dns.port,
            dot_port=service.dns.tls_port,
        )
    finally:
        await runner.cleanup()


def answer_from(responder: Responder, down: bytes, up: bytes | None = None) -> None:
    """Make `responder` answer from the down view `down` (and `up`) with no slot levers,
    as a service's refresh would with a document that has none."""
    from resolver.levers import plain

    responder.install(responder.compiled, plain(responder.compiled.levers, down, up))


def tcp_checks(slots: range | list[int]) -> list[dict[str, Any]]:
    """Minimal TCP check definitions for `slots` (records refer to them by slot)."""
    return [
        {"slot": slot, "name": f"check-{slot}", "type": "tcp", "host": "127.0.0.1", "port": 9}
        for slot in slots
    ]


def failover_record(
    name: str, primary: tuple[str, int], secondary: tuple[str, int]
) -> dict[str, Any]:
    """A failover A record: `primary` and `secondary` are each (value, guarding slot)."""
    return {
        "name": name,
        "type": "A",
        "policy": "failover",
        "answers": [
            {"value": primary[0], "check": primary[1], "role": "primary"},
            {"value": secondary[0], "check": secondary[1], "role": "secondary"},
        ],
    }


def multivalue_record(name: str, count: int, first_slot: int = 0) -> dict[str, Any]:
    """An A record with `count` answers 10.0.x.y, answer i guarded by slot first_slot + i."""
    return {
        "name": name,
        "type": "A",
        "ttl": 30,
        "policy": "multivalue",
        "answers": [
            {
                "value": f"10.0.{(first_slot + i) // 250}.{(first_slot + i) % 250 + 1}",
                "check": first_slot + i,
            }
            for i in range(count)
        ],
    }


CORPUS_RCODES = {
    "noerror": 0,
    "formerr": 1,
    "servfail": 2,
    "nxdomain": 3,
    "notimp": 4,
    "refused": 5,
}


def check_outcome(query: bytes, response: bytes | None, outcome: str) -> str | None:
    """None if `response` is what the corpus expects for `query`, else what is wrong."""
    if outcome == "drop":
        return None if response is None else f"expected no reply, got {response!r}"
    if response is None or len(response) < 12:
        return f"expected {outcome}, got {response!r}"
    if response[:2] != query[:2]:
        return "reply id differs from the query's"
    if not response[2] & 0x80:
        return "reply lacks the QR bit"
    rcode = response[3] & 0x0F
    qdcount = response[4] << 8 | response[5]
    if outcome == "badvers":
        opt = response[-11:]
        if rcode != 0 or opt[0] != 0 or opt[1:3] != b"\x00\x29" or opt[5] != 1:
            return f"expected BADVERS (OPT extended rcode 1), got {response!r}"
        return None
    if rcode != CORPUS_RCODES[outcome]:
        return f"expected rcode {outcome}, got {rcode}"
    if outcome in ("formerr", "notimp") and qdcount != 0:
        return f"{outcome} must be built from the header alone (qdcount {qdcount})"
    return None
