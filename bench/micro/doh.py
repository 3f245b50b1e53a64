"""DoH over HTTP/2 without sockets: CPU µs per request in h2 alone and in the resolver's shell.

Run: `.venv/bin/python -m bench.micro.doh [--rounds R] [--requests N] [--batch B]`.
An h2 client in the same process sends GET /dns-query requests, B per read, to:
- the floor: a bare h2 server connection that only parses each request and queues a
  fixed reply (`validate` and `novalidate`: h2's own header checks on and off);
- `resolver.h2server.H2Protocol` over an in-memory transport, with a handler that
  returns the same fixed reply (the shell's bookkeeping, its one write per reply).
Only the server side is timed (`time.process_time` around each read), so the client's
work is not counted. Rounds interleave the three, so machine noise hits all alike.
Ends with one JSON line: {"bench": "doh", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from typing import TYPE_CHECKING, Any

import dns.message
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, RequestReceived

from resolver.h2server import H2Protocol, H2Reply

if TYPE_CHECKING:
    from resolver.h2server import H2Request

__all__ = ["main"]

BODY = b"\0" * 97  # an 8-answer A response's size
REPLY_HEADERS = (("content-type", "application/dns-message"), ("cache-control", "max-age=30"))
REPLY = H2Reply(200, REPLY_HEADERS, BODY)
_QUERY = dns.message.make_query("www.example.com.", "A").to_wire()
PATH = "/dns-query?dns=" + base64.urlsafe_b64encode(_QUERY).decode().rstrip("=")
REQUEST = [
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "127.0.0.1"),
    (":path", PATH),
    ("accept", "application/dns-message"),
]


def _client() -> H2Connection:
    client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    return client


def _requests(client: H2Connection, batch: int) -> bytes:
    for _ in range(batch):
        client.send_headers(client.get_next_available_stream_id(), REQUEST, end_stream=True)
    return client.data_to_send()


def _read(client: H2Connection, data: bytes) -> bytes:
    """The client takes the replies in and hands the window back; what it sends back."""
    for event in client.receive_data(data):
        if isinstance(event, DataReceived):
            client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
    return client.data_to_send()


def floor(requests: int, batch: int, validate: bool) -> float:
    """CPU µs per request of a bare h2 server connection."""
    config = H2Configuration(
        client_side=False,
        header_encoding=None,
        validate_inbound_headers=validate,
        normalize_inbound_headers=validate,
        validate_outbound_headers=validate,
        normalize_outbound_headers=validate,
    )
    server = H2Connection(config)
    server.initiate_connection()
    client = _client()
    server.receive_data(client.data_to_send())
    server.receive_data(_read(client, server.data_to_send()))
    _read(client, server.data_to_send())
    reply = [(":status", "200"), *REPLY_HEADERS, ("content-length", str(len(BODY)))]
    spent = 0.0
    for _ in range(requests // batch):
        data = _requests(client, batch)
        started = time.process_time()
        for event in server.receive_data(data):
            if isinstance(event, RequestReceived):
                server.send_headers(event.stream_id, reply)
                server.send_data(event.stream_id, BODY, end_stream=True)
        out = server.data_to_send()
        spent += time.process_time() - started
        server.receive_data(_read(client, out))
    return spent / requests * 1e6


class _Memory(asyncio.Transport):
    """A transport that keeps what is written, for the shell to write to."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def take(self) -> bytes:
        data = b"".join(self.written)
        self.written.clear()
        return data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        self.written.clear()


def _fixed(_: H2Request) -> H2Reply:
    return REPLY


async def shell(requests: int, batch: int) -> float:
    """CPU µs per request of `H2Protocol`, the resolver's shell, with a fixed reply."""
    protocol = H2Protocol(_fixed)
    transport = _Memory()
    protocol.connection_made(transport)
    client = _client()
    protocol.data_received(client.data_to_send())
    protocol.data_received(_read(client, transport.take()))
    _read(client, transport.take())
    spent = 0.0
    for _ in range(requests // batch):
        data = _requests(client, batch)
        started = time.process_time()
        protocol.data_received(data)
        spent += time.process_time() - started
        protocol.data_received(_read(client, transport.take()))
    protocol.abort()
    return spent / requests * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=5_000, help="per round and kind")
    parser.add_argument("--batch", type=int, default=100, help="requests per read")
    args = parser.parse_args(argv)
    results: dict[str, list[float]] = {"validate": [], "novalidate": [], "shell": []}
    for round_ in range(args.rounds):
        results["validate"].append(floor(args.requests, args.batch, validate=True))
        results["novalidate"].append(floor(args.requests, args.batch, validate=False))
        results["shell"].append(asyncio.run(shell(args.requests, args.batch)))
        print(
            f"round {round_ + 1}: h2 floor {results['validate'][-1]:6.1f} µs (checks on), "
            f"{results['novalidate'][-1]:6.1f} µs (off); resolver shell "
            f"{results['shell'][-1]:6.1f} µs per request"
        )
    figures: dict[str, float] = {}
    for kind, values in results.items():
        figures[f"{kind}_us_median"] = round(statistics.median(values), 1)
        figures[f"{kind}_us_best"] = round(min(values), 1)
    figures["shell_vs_novalidate_floor"] = round(
        figures["shell_us_median"] / figures["novalidate_us_median"], 3
    )
    print(
        f"median: floor {figures['validate_us_median']} µs with h2's checks, "
        f"{figures['novalidate_us_median']} µs without; shell {figures['shell_us_median']} µs "
        f"({figures['shell_vs_novalidate_floor']}x the floor it runs on)"
    )
    print(json.dumps({"bench": "doh", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
