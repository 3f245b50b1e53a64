"""A lean UDP DNS load generator that records every query (run as its own process).

    urn bench loadgen --server HOST:PORT --names FILE --qps N --duration S --out FILE

FILE (JSON): `[{"name": "svc-0.example.com.", "values": ["127.101.0.0", ...]}, ...]`;
names are queried round-robin at a fixed rate (type A). Each query is recorded as one
row of `RECORD` in OUT, appended every half second: send time (CLOCK_MONOTONIC, the
same clock as every process on the host), name index, latency (NaN when no answer came
within 2 s), rcode, and a bitmask of which of the name's values the answer held (bit i:
values[i]; bit 15: an address not among them). Plain sockets and a hand-written parser:
the generator must cost little next to the resolver it measures.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import argparse

__all__ = ["RECORD", "add_arguments", "load_records", "parse_answers", "query_packet", "run"]

RECORD = np.dtype(
    [("t", "<f8"), ("name", "<u4"), ("latency", "<f4"), ("rcode", "u1"), ("mask", "<u2")]
)
LOST_AFTER = 2.0
OTHER_BIT = 15
NO_RCODE = 255


def query_packet(name: str, ident: int = 0) -> bytes:
    """A recursion-desired A query for `name`."""
    labels = [label.encode() for label in name.rstrip(".").split(".")]
    qname = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + b"\x00\x01\x00\x01"


def parse_answers(data: bytes, qlen: int) -> tuple[int, int, list[bytes]]:
    """(id, rcode, A rdatas) of a response whose question is `qlen` bytes long."""
    ident, flags, _, ancount = struct.unpack_from(">HHHH", data)
    pos = 12 + qlen
    found: list[bytes] = []
    for _ in range(ancount):
        while True:  # owner name: labels, or a pointer that ends it
            length = data[pos]
            if length & 0xC0 == 0xC0:
                pos += 2
                break
            pos += 1 + length
            if length == 0:
                break
        rtype, _, _, rdlen = struct.unpack_from(">HHIH", data, pos)
        pos += 10
        if rtype == 1 and rdlen == 4:
            found.append(data[pos : pos + 4])
        pos += rdlen
    return ident, flags & 0x000F, found


def load_records(path: Path) -> np.ndarray[Any, Any]:
    """Every row a loadgen run has written so far."""
    data = path.read_bytes() if path.exists() else b""
    usable = len(data) - len(data) % RECORD.itemsize
    return np.frombuffer(data[:usable], dtype=RECORD)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, metavar="HOST:PORT")
    parser.add_argument("--names", required=True, type=Path, metavar="FILE")
    parser.add_argument("--qps", type=float, default=2000.0)
    parser.add_argument("--duration", type=float, default=60.0, metavar="S")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    host, _, port = args.server.rpartition(":")
    items = json.loads(args.names.read_text())
    packets = [query_packet(item["name"]) for item in items]
    qlens = [len(p) - 12 for p in packets]
    value_bits = [
        {socket.inet_aton(v): 1 << i for i, v in enumerate(item["values"][:OTHER_BIT])}
        for item in items
    ]
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect((host or "127.0.0.1", int(port)))
    sock.setblocking(False)
    capacity = int(args.qps * (args.duration + 5)) + 1024
    rows = np.zeros(capacity, dtype=RECORD)
    rows["latency"] = np.nan
    rows["rcode"] = NO_RCODE
    pending: dict[int, int] = {}  # id -> row
    sent = 0
    written = 0
    names = len(packets)
    interval = 1.0 / args.qps
    start = time.monotonic()
    end = start + args.duration
    next_flush = start + 0.5
    out = args.out.open("wb")
    monotonic = time.monotonic
    try:
        while not stop:
            now = monotonic()
            if now >= end or sent >= capacity:
                break
            due = min(int((now - start) / interval) + 1, capacity)
            while sent < due:
                ident = sent & 0xFFFF
                index = sent % names
                packet = packets[index]
                try:
                    sock.send(packet[:0] + struct.pack(">H", ident) + packet[2:])
                except BlockingIOError:
                    break
                row = rows[sent]
                row["t"] = monotonic()
                row["name"] = index
                pending[ident] = sent
                sent += 1
            wait = max(0.0, start + sent * interval - monotonic())
            readable, _, _ = select.select([sock], [], [], wait)
            if readable:
                _drain(sock, rows, pending, qlens, value_bits, monotonic)
            if now >= next_flush:
                written = _flush(out, rows, written, sent, now)
                next_flush = now + 0.5
        deadline = monotonic() + LOST_AFTER
        while pending and monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                _drain(sock, rows, pending, qlens, value_bits, monotonic)
        _flush(out, rows, written, sent, float("inf"))
    finally:
        out.close()
        sock.close()
    return 0


def _drain(
    sock: socket.socket,
    rows: np.ndarray[Any, Any],
    pending: dict[int, int],
    qlens: list[int],
    value_bits: list[dict[bytes, int]],
    monotonic: Any,
) -> None:
    while True:
        try:
            data = sock.recv(4096)
        except (BlockingIOError, ConnectionRefusedError):
            return
        received = monotonic()
        if len(data) < 12:
            continue
        ident = struct.unpack_from(">H", data)[0]
        index = pending.pop(ident, None)
        if index is None:
            continue
        row = rows[index]
        name = int(row["name"])
        try:
            _, rcode, found = parse_answers(data, qlens[name])
        except (IndexError, struct.error):
            continue
        bits = value_bits[name]
        mask = 0
        for rdata in found:
            mask |= bits.get(rdata, 1 << OTHER_BIT)
        row["latency"] = received - row["t"]
        row["rcode"] = rcode
        row["mask"] = mask


def _flush(out: Any, rows: np.ndarray[Any, Any], written: int, sent: int, now: float) -> int:
    """Append rows old enough to be final (answered, or lost after LOST_AFTER)."""
    limit = sent
    if now != float("inf"):
        limit = int(np.searchsorted(rows["t"][written:sent], now - LOST_AFTER)) + written
    if limit > written:
        rows[written:limit].tofile(out)
        out.flush()
    return max(limit, written)
