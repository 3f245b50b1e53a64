"""Hostile queries against a real `urn resolver` process: UDP, TCP, DoH and the JSON API.

Extends the resolver's own tests (its corpus in tests/corpus/dns is replayed over UDP
and TCP there) with what a corpus cannot hold: hypothesis-generated datagrams and
mutations of valid queries, absurd names at the size limits, TCP framing that lies,
malformed DoH GETs, and the resolver's memory after thousands of hostile queries.
Each case: a clear rcode (or a silent drop for what cannot be answered), no crash, the
process keeps answering a sentinel query correctly, memory stays flat.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import struct
from dataclasses import fields
from typing import TYPE_CHECKING

import dns.message
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.testing import document_dict
from sim.testing.resolver_process import ResolverProcess, resolver_process

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

ANSWERS = frozenset({"10.0.0.1", "10.0.0.2", "10.0.0.3"})
HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Rcodes a resolver may give a malformed or unsupported query.
REFUSALS = {
    dns.rcode.FORMERR,
    dns.rcode.REFUSED,
    dns.rcode.NOTIMP,
    dns.rcode.NXDOMAIN,
    dns.rcode.NOERROR,
}  # BADVERS travels as 0 in the header plus an extended rcode in OPT


class Resolver(ResolverProcess):
    def udp(self, payload: bytes, timeout: float = 0.3) -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(payload, ("127.0.0.1", self.dns))
            try:
                return sock.recv(65535)
            except TimeoutError:
                return None

    def udp_then_sentinel(self, payload: bytes) -> bytes | None:
        """Send `payload`, then a valid query on the same socket; the payload's reply, if any.

        The server answers datagrams in order, so once the sentinel's reply is in, any
        reply to the payload has come before it: no waiting on a timeout for a drop.
        """
        sentinel = dns.message.make_query("www.example.com.", "A")
        sentinel.id = 0xBEEF if payload[:2] != b"\xbe\xef" else 0xBEEE
        sentinel_id = sentinel.id.to_bytes(2, "big")
        replies: list[bytes] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5.0)
            sock.connect(("127.0.0.1", self.dns))
            sock.send(payload)
            sock.send(sentinel.to_wire())
            while (data := sock.recv(65535))[:2] != sentinel_id:
                replies.append(data)
        assert len(replies) <= 1, "one datagram, at most one reply"
        return replies[0] if replies else None

    def tcp(self, data: bytes, timeout: float = 2.0) -> list[bytes]:
        """Send raw bytes on one TCP connection, then read framed replies until EOF/timeout."""
        replies: list[bytes] = []
        with socket.create_connection(("127.0.0.1", self.dns), timeout=timeout) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            buffer = b""
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                while chunk := sock.recv(65535):
                    buffer += chunk
            while len(buffer) >= 2:
                size = struct.unpack(">H", buffer[:2])[0]
                if len(buffer) < 2 + size:
                    break
                replies.append(buffer[2 : 2 + size])
                buffer = buffer[2 + size :]
        return replies

    def sentinel(self) -> None:
        """The process is alive and answers a plain query correctly over UDP and TCP."""
        assert self.process.poll() is None, self.log.read_text()[-2000:]
        query = dns.message.make_query("www.example.com.", "A")
        for raw in (self.udp(query.to_wire(), timeout=2.0), self.tcp(_framed(query.to_wire()))):
            reply = dns.message.from_wire(raw[0] if isinstance(raw, list) else raw or b"")
            assert reply.id == query.id
            values = frozenset(r.to_text() for rrset in reply.answer for r in rrset)
            assert values == ANSWERS


def _framed(message: bytes) -> bytes:
    return struct.pack(">H", len(message)) + message


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Resolver]:
    directory = tmp_path_factory.mktemp("resolver")
    document = document_dict(
        records=[
            {
                "name": "www.example.com.",
                "type": "A",
                "policy": "multivalue",
                "answers": [{"value": v} for v in sorted(ANSWERS)],
            }
        ],
        intervals={"probe": 1.0, "push": 1.0, "config": 5.0},
    )
    config = directory / "urn.json"
    config.write_text(json.dumps(document))
    with resolver_process(
        config, directory, env={"URN_PUSH_KEY": secrets.token_hex(32)}
    ) as process:
        yield Resolver(**{f.name: getattr(process, f.name) for f in fields(process)})
        log = process.log
    for line in log.read_text().splitlines():  # every hostile request left at most one JSON line
        json.loads(line)


def _check_reply(query: bytes, reply: bytes | None) -> None:
    """A reply, if any, answers this query's id with a refusal-class rcode."""
    if reply is None:
        return  # dropped: allowed for what cannot be answered (short header, QR set, ...)
    assert len(reply) >= 12
    assert reply[:2] == query[:2], "reply id must echo the query id"
    assert reply[2] & 0x80, "QR bit set in a reply"
    assert reply[3] & 0x0F in REFUSALS, reply[:4]  # never SERVFAIL: that is an internal error


# --- property-based over UDP and TCP ----------------------------------------------


@HYPOTHESIS
@given(payload=st.binary(min_size=1, max_size=700))
def test_random_datagrams_get_a_refusal_or_nothing(resolver: Resolver, payload: bytes) -> None:
    _check_reply(payload, resolver.udp_then_sentinel(payload))


def _valid_query() -> bytes:
    return dns.message.make_query("www.example.com.", "A", use_edns=0).to_wire()


@HYPOTHESIS
@given(data=st.data())
def test_mutated_queries_over_udp_and_tcp(resolver: Resolver, data: st.DataObject) -> None:
    query = bytearray(_valid_query())
    for position, value in data.draw(
        st.lists(st.tuples(st.integers(0, len(query) - 1), st.integers(0, 255)), max_size=5)
    ):
        query[position] = value
    cut = data.draw(st.integers(1, len(query)))
    payload = bytes(query[:cut]) + data.draw(st.binary(max_size=8))
    _check_reply(payload, resolver.udp_then_sentinel(payload))
    replies = resolver.tcp(_framed(payload))
    assert len(replies) <= 1
    _check_reply(payload, replies[0] if replies else None)


def test_after_the_property_runs_the_resolver_still_answers(resolver: Resolver) -> None:
    resolver.sentinel()
    assert resolver.metric("urn_dns_malformed_total", reason="internal_error") == 0


# --- absurd names ---------------------------------------------------------------------


def _query_wire(labels: list[bytes], qtype: int = 1) -> bytes:
    name = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    return struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", qtype, 1)


@pytest.mark.parametrize(
    ("labels", "rcode"),
    [
        ([b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61], dns.rcode.REFUSED),  # 255 bytes, outside
        ([b"x" * 63, b"y" * 63, b"z" * 51, b"example", b"com"], dns.rcode.NXDOMAIN),  # in zone
        ([b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 62], dns.rcode.FORMERR),  # 256 bytes
        ([b"\x00\xff\x80", b"example", b"com"], dns.rcode.NXDOMAIN),  # binary label
        ([b"WWW", b"EXAMPLE", b"COM"], dns.rcode.NOERROR),  # case
        ([b"."] * 100 + [b"example", b"com"], dns.rcode.NXDOMAIN),  # dots inside labels
        ([b"a"] * 127, dns.rcode.REFUSED),  # 127 labels: the most a name can hold
        ([b"www", b"example", b"com", b""], dns.rcode.FORMERR),  # an empty label mid-name
    ],
)
def test_absurd_names_get_a_clear_rcode_over_udp_and_tcp(
    resolver: Resolver, labels: list[bytes], rcode: int
) -> None:
    wire = _query_wire(labels)
    for raw in (resolver.udp(wire, timeout=2.0), *resolver.tcp(_framed(wire))):
        assert raw is not None
        assert raw[:2] == b"\x12\x34"
        assert raw[3] & 0x0F == rcode, (labels[:2], raw[:4])
    resolver.sentinel()


@pytest.mark.parametrize(
    "name",
    [
        "a" * 10_000,
        "a." * 200 + "example.com.",
        "www..example.com.",
        "\u00e9xample.example.com.",
        "www.example.com.\x00",
        "",
        ".",
    ],
)
def test_absurd_names_over_the_json_api_get_a_clear_answer(resolver: Resolver, name: str) -> None:
    status, body = resolver.get("/v1/resolve", name=name, type="A")
    assert status in (200, 400), (status, body[:200])
    if status == 400:  # the resolver's JSON reason, or aiohttp's own for an over-long URL
        assert body.strip()
    else:
        reply = json.loads(body)
        assert reply["Status"] in (dns.rcode.NXDOMAIN, dns.rcode.REFUSED, dns.rcode.FORMERR)
    resolver.sentinel()


# --- DoH ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "!!!",
        "AAAA====",  # padded: RFC 8484 asks for none, must still not crash
        "q80BAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB+/",  # standard, not url-safe, alphabet
        "%FF%FE",
        "A",  # one character: no byte boundary
        "QUJD" * 5000,  # 15,000 bytes of 'ABC'
        "",
    ],
)
def test_doh_get_with_invalid_base64_or_payload_is_refused(resolver: Resolver, value: str) -> None:
    status, body = resolver.get("/dns-query", dns=value)
    if status == 200:  # decodable after all: then the DNS answer itself must refuse it
        assert body[3] & 0x0F in (dns.rcode.FORMERR, dns.rcode.REFUSED), body[:12]
    else:
        assert status in (400, 413, 414), (status, body[:200])
    resolver.sentinel()


# --- TCP framing -----------------------------------------------------------------------


def test_tcp_length_prefix_that_lies_gets_no_answer_and_changes_nothing(
    resolver: Resolver,
) -> None:
    wire = _valid_query()
    # Declares more than it sends, then half-closes: nothing to answer, no crash.
    assert resolver.tcp(struct.pack(">H", len(wire) + 100) + wire) == []
    # A zero-length message, then a valid one: the empty one is refused or dropped.
    replies = resolver.tcp(_framed(b"") + _framed(wire))
    assert replies, "the valid query after an empty frame must be answered"
    assert dns.message.from_wire(replies[-1]).rcode() == dns.rcode.NOERROR
    # A single odd byte: not even a length prefix.
    assert resolver.tcp(b"\x00") == []
    resolver.sentinel()


def test_pipelined_tcp_queries_are_each_answered_in_order(resolver: Resolver) -> None:
    queries = [dns.message.make_query("www.example.com.", "A") for _ in range(200)]
    replies = resolver.tcp(b"".join(_framed(q.to_wire()) for q in queries), timeout=10)
    assert [dns.message.from_wire(r).id for r in replies] == [q.id for q in queries]


# --- memory --------------------------------------------------------------------------


def test_resolver_memory_stays_flat_under_thousands_of_hostile_queries(
    resolver: Resolver,
) -> None:
    hostile = [
        b"\x00" * 5,
        b"\xff" * 40,
        _query_wire([b"a" * 63] * 5),
        _query_wire([b"x" * 30, b"example", b"com"]),
        _valid_query()[:-3],
        _valid_query() + b"junk",
        struct.pack(">HHHHHH", 1, 0x0100, 65535, 65535, 65535, 65535),
    ]

    def barrage(rounds: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            for _ in range(rounds):
                for payload in hostile:
                    sock.sendto(payload, ("127.0.0.1", resolver.dns))
                # One valid query per round, waited for: paces the barrage to the server.
                query = dns.message.make_query("www.example.com.", "A")
                sock.sendto(query.to_wire(), ("127.0.0.1", resolver.dns))
                while True:
                    reply = sock.recv(65535)
                    if reply[:2] == query.to_wire()[:2]:
                        break

    barrage(300)
    before = resolver.rss()
    barrage(1500)  # 12,000 hostile datagrams
    after = resolver.rss()
    print(f"resolver RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")
    assert after - before < 2 * 1024 * 1024, (before, after)
    resolver.sentinel()
