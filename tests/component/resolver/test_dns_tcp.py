"""DNS over TCP in-process: a client that pipelines and never reads stops being read.

The resolver runs in this test's loop (port 0), so the test looks at the connection's
own state: paused, not reading, and at most `write_buffer` plus one reply unread. The
multi-process memory bound under 100 such clients is tests/reliability/test_tcp_bounds.py.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import TYPE_CHECKING

import dns.message

from resolver.tcplimits import TcpLimits
from sim.testing import FakeClock, document_dict, wait_until
from sim.testing.resolver import running_resolver, write_config

if TYPE_CHECKING:
    from pathlib import Path

PIPE = "pipe.example.com."
# 3,000 queries of about 4 KB of answers each: 12 MB of replies, past what the kernel's
# socket buffers on both ends absorb (4 MiB at most by default), so replies must queue
# in the resolver unless it stops answering.
QUERIES = 3000
WRITE_BUFFER = 16 * 1024  # not the default, nor asyncio's own 64 KiB high-water mark


def config(tmp_path: Path) -> Path:
    txt = {
        "name": PIPE,
        "type": "TXT",
        "answers": [{"value": f"{i:04d}" + "x" * 251} for i in range(15)],
    }
    return write_config(tmp_path / "urn.json", document_dict(records=[txt]))


def framed_queries() -> bytes:
    """QUERIES length-prefixed TXT queries for PIPE, query i with id i."""
    wire = dns.message.make_query(PIPE, "TXT").to_wire()
    return b"".join(struct.pack(">HH", len(wire), i) + wire[2:] for i in range(QUERIES))


class Replies:
    """Length-framed replies as they arrive: their ids, and the largest frame's size."""

    def __init__(self) -> None:
        self.stream = bytearray()
        self.ids: list[int] = []
        self.largest = 0

    def feed(self, data: bytes) -> None:
        stream = self.stream
        stream += data
        offset = 0
        while offset + 2 <= len(stream):
            size = stream[offset] << 8 | stream[offset + 1]
            if offset + 2 + size > len(stream):
                break
            self.ids.append(stream[offset + 2] << 8 | stream[offset + 3])
            self.largest = max(self.largest, 2 + size)
            offset += 2 + size
        del stream[:offset]


async def test_a_client_that_pipelines_and_never_reads_stops_being_read(tmp_path: Path) -> None:
    async with running_resolver(config(tmp_path), clock=FakeClock()) as resolver:
        server = resolver.service.dns
        server.limits = TcpLimits(write_buffer=WRITE_BUFFER)  # for connections from now on
        frames = framed_queries()
        loop = asyncio.get_running_loop()
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing yet
        try:
            await loop.sock_connect(client, ("127.0.0.1", resolver.dns_port))
            client.setblocking(False)
            sent = 0

            def send_more() -> None:
                nonlocal sent
                try:
                    while sent < len(frames):
                        sent += client.send(frames[sent:])
                except BlockingIOError:
                    pass

            def paused_or_all_answered() -> bool:
                send_more()
                streams = list(server.connections)
                return bool(streams) and (streams[0].paused or server.tcp_count == QUERIES)

            await wait_until(paused_or_all_answered, message="the connection paused")
            (stream,) = server.connections
            transport = stream.transport
            assert transport is not None
            unread = transport.get_write_buffer_size()
            assert stream.paused, (
                f"all {QUERIES} queries answered, {unread} bytes of replies queued: "
                "the resolver never stopped answering a client that does not read"
            )
            assert not transport.is_reading()
            answered = server.tcp_count
            assert 0 < answered < QUERIES
            first = frames[2 : 2 + (frames[0] << 8 | frames[1])]
            one_reply = 2 + len(resolver.service.responder.dns(first, False, {}) or b"")
            assert one_reply > 4000
            assert unread <= WRITE_BUFFER + one_reply

            # Once the client reads, every query is answered, in order.
            replies = Replies()
            while len(replies.ids) < QUERIES:
                send_more()
                chunk = await asyncio.wait_for(loop.sock_recv(client, 65536), timeout=10)
                assert chunk, "the resolver closed the connection"
                replies.feed(chunk)
            assert replies.ids == list(range(QUERIES))
            assert replies.largest == one_reply
            assert not stream.paused
            assert transport.is_reading()
        finally:
            client.close()
