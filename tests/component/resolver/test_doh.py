"""DoH (RFC 8484) edges in-process: an internal failure is SERVFAIL, a chunked body is bounded."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import aiohttp
import dns.message
import dns.rcode
import pytest

from resolver.answer import Responder
from resolver.doh import DNS_JSON, DNS_MESSAGE, MAX_DNS_MESSAGE
from sim.testing import FakeClock, document_dict
from sim.testing.resolver import multivalue_record, running_resolver, tcp_checks, write_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


def config(tmp_path: Path) -> Path:
    document = document_dict(
        checks=tcp_checks(range(2)), records=[multivalue_record("www.example.com.", 2)]
    )
    return write_config(tmp_path / "urn.json", document)


def broken_dns(self: Responder, msg: bytes, udp: bool, tally: dict[tuple[int, int], int]) -> None:
    raise RuntimeError("a bug while answering")


async def test_a_failure_inside_the_responder_is_servfail_on_get_and_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = dns.message.make_query("www.example.com.", "A")
    query.id = 4321
    wire = query.to_wire()
    encoded = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
    async with running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver:
        monkeypatch.setattr(Responder, "dns", broken_dns)
        url = f"{resolver.url}/dns-query"
        async with aiohttp.ClientSession() as session:
            replies = []
            async with session.get(url, params={"dns": encoded}) as response:
                assert response.status == 200
                assert response.content_type == DNS_MESSAGE
                replies.append(dns.message.from_wire(await response.read()))
            async with session.post(
                url, data=wire, headers={"Content-Type": DNS_MESSAGE}
            ) as response:
                assert response.status == 200
                assert response.content_type == DNS_MESSAGE
                replies.append(dns.message.from_wire(await response.read()))
        for reply in replies:
            assert reply.id == 4321
            assert reply.rcode() == dns.rcode.SERVFAIL
            assert not reply.question  # built from the header alone
            assert not reply.answer


async def chunks(total: int, size: int = 16384) -> AsyncIterator[bytes]:
    """`total` bytes of body in `size`-byte pieces: sent chunked, with no Content-Length."""
    while total > 0:
        piece = min(size, total)
        total -= piece
        yield b"\0" * piece


@pytest.mark.parametrize("total", [MAX_DNS_MESSAGE + 1, 70_000])
async def test_a_chunked_post_longer_than_a_dns_message_is_413(tmp_path: Path, total: int) -> None:
    async with (
        running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver,
        aiohttp.ClientSession() as session,
        session.post(
            f"{resolver.url}/dns-query",
            data=chunks(total),
            headers={"Content-Type": DNS_MESSAGE},
        ) as response,
    ):
        assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in response.request_info.headers
        assert response.status == 413
        assert f"longer than {MAX_DNS_MESSAGE} bytes" in (await response.json())["error"]


async def test_a_chunked_post_of_a_real_query_is_answered(tmp_path: Path) -> None:
    wire = dns.message.make_query("www.example.com.", "A").to_wire()

    async def pieces() -> AsyncIterator[bytes]:
        for offset in range(0, len(wire), 7):
            yield wire[offset : offset + 7]

    async with (
        running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver,
        aiohttp.ClientSession() as session,
        session.post(
            f"{resolver.url}/dns-query", data=pieces(), headers={"Content-Type": DNS_MESSAGE}
        ) as response,
    ):
        assert response.status == 200
        reply = dns.message.from_wire(await response.read())
        assert reply.rcode() == dns.rcode.NOERROR
        assert sorted(r.address for r in reply.answer[0]) == ["10.0.0.1", "10.0.0.2"]


async def test_the_json_forms_answer_like_v1_resolve(tmp_path: Path) -> None:
    """Cloudflare's `/dns-query?name=` (accept application/dns-json) and Google's
    `/resolve?name=` give the body `/v1/resolve` gives."""
    params = {"name": "www.example.com", "type": "A"}
    async with (
        running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver,
        aiohttp.ClientSession() as session,
    ):
        bodies = {}
        for path, headers in (
            ("/v1/resolve", {}),
            ("/resolve", {}),
            ("/dns-query", {"accept": DNS_JSON}),
        ):
            async with session.get(
                f"{resolver.url}{path}", params=params, headers=headers
            ) as response:
                assert response.status == 200, await response.text()
                bodies[path] = (response.content_type, await response.read())
        assert bodies["/dns-query"][0] == DNS_JSON
        assert bodies["/resolve"][0] == bodies["/v1/resolve"][0] == "application/json"
        forms = []
        for _, body in bodies.values():
            data = json.loads(body)
            data["Answer"].sort(key=lambda answer: answer["data"])  # multivalue shuffles
            forms.append(data)
        assert forms[0] == forms[1] == forms[2]
        assert [a["data"] for a in forms[0]["Answer"]] == ["10.0.0.1", "10.0.0.2"]
        async with session.get(
            f"{resolver.url}/resolve", params={"name": "www.example.com", "type": "BOGUS"}
        ) as response:
            assert response.status == 400
            assert "BOGUS" in (await response.json())["error"]


async def test_cache_lifetime_is_the_smallest_ttl_of_the_answer(tmp_path: Path) -> None:
    """RFC 8484 section 5.1: max-age no longer than the smallest TTL in the answer; a
    negative answer lives as its SOA says; an error is not to be kept."""
    async with (
        running_resolver(config(tmp_path), dns=False, clock=FakeClock()) as resolver,
        aiohttp.ClientSession() as session,
    ):

        async def cache_control(name: str) -> str:
            wire = dns.message.make_query(name, "A").to_wire()
            encoded = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
            async with session.get(
                f"{resolver.url}/dns-query", params={"dns": encoded}
            ) as response:
                assert response.status == 200
                reply = dns.message.from_wire(await response.read())
                ttls = [rrset.ttl for rrset in (*reply.answer, *reply.authority)]
                assert response.headers["cache-control"] == f"max-age={min(ttls)}"
                return response.headers["cache-control"]

        assert await cache_control("www.example.com.") == "max-age=30"  # the record's TTL
        assert await cache_control("nope.example.com.") == "max-age=60"  # the SOA's
        async with session.get(f"{resolver.url}/dns-query", params={"dns": "!!"}) as response:
            assert response.status == 400
            assert response.headers["cache-control"] == "max-age=0"
