"""A resolver's UDP listener honours the client's EDNS payload size, over real loopback UDP
with dnspython: an 816-byte answer goes whole to a client advertising 1,232 bytes, and is
truncated (TC, no answers) for a client without EDNS or advertising less than it needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dns.asyncquery
import dns.flags
import dns.message

from sim.testing import FakeClock, document_dict
from sim.testing.resolver import running_resolver, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from sim.testing.resolver import RunningResolver


def txt_record(name: str, count: int) -> dict[str, object]:
    """`count` TXT answers of 180 bytes: 193 bytes each on the wire."""
    return {
        "name": name,
        "type": "TXT",
        "answers": [{"value": f"{i:02d}" + "x" * 178} for i in range(count)],
    }


def config(tmp_path: Path) -> Path:
    records = [txt_record("mid.example.com.", 4), txt_record("big.example.com.", 8)]
    return write_config(tmp_path / "urn.json", document_dict(records=records))


async def udp(resolver: RunningResolver, name: str, payload: int | None) -> dns.message.Message:
    """The UDP reply to a TXT query with EDNS advertising `payload` (None: no EDNS)."""
    use_edns = False if payload is None else 0
    query = dns.message.make_query(name, "TXT", use_edns=use_edns, payload=payload or 0)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=resolver.dns_port, timeout=5)


def answers(reply: dns.message.Message) -> int:
    return sum(len(rrset) for rrset in reply.answer)


async def test_udp_answers_whole_up_to_the_clients_edns_size(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        reply = await udp(resolver, "mid.example.com.", 1232)
        assert not reply.flags & dns.flags.TC
        assert answers(reply) == 4
        assert 512 < len(reply.to_wire()) <= 1232  # 816 bytes: more than classic DNS allows


async def test_udp_truncates_past_512_without_edns_or_past_the_advertised_size(
    tmp_path: Path,
) -> None:
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        for name, payload in (
            ("mid.example.com.", None),  # 805 bytes without OPT: over 512
            ("mid.example.com.", 700),  # under the 816 it needs
            ("big.example.com.", 4096),  # 1,588 bytes: over the 1,232 we ever send
        ):
            reply = await udp(resolver, name, payload)
            assert reply.flags & dns.flags.TC, (name, payload)
            assert answers(reply) == 0, (name, payload)
        # The client's fallback to TCP gets it whole.
        query = dns.message.make_query("big.example.com.", "TXT", use_edns=False)
        reply, used_tcp = await dns.asyncquery.udp_with_fallback(
            query, "127.0.0.1", port=resolver.dns_port, timeout=5
        )
        assert used_tcp
        assert answers(reply) == 8
