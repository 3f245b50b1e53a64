"""DNS over TCP within RFC 7766 bounds, against a real `urn resolver` process.

- 1,100 connections dribbling one byte every 1.5 s (reopened as soon as they are closed,
  as an attacker would) leave room for fresh TCP queries, and UDP is unaffected. Before
  the bounds, 1,024 of them held every slot: the limit refused each new connection, and
  each byte re-armed the idle timer.
- A message dribbled a byte at a time is cut at its deadline, whatever bytes still come.
- One address holds at most `per_source` connections: past it its idlest one goes.
- 100 connections pipelining queries and never reading: resident memory stays bounded.
- A record just under 65,535 bytes is answered over UDP (TC), TCP and DoH; one with 300
  answers is refused by `urn validate` (tests/unit/resolver/test_message_size.py has the
  rest of the bound, and the stream path's cut).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import json
import resource
import selectors
import socket
import struct
import threading
import time
import urllib.request
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from sim.testing import document_dict, run_urn
from sim.testing.resolver_process import ResolverProcess, resolver_process

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
ANSWERS = frozenset({"10.0.0.1", "10.0.0.2", "10.0.0.3"})
BIG = "big.example.com."  # 244 TXT answers of 255 bytes: a 65,436-byte response
# 15 TXT answers: a 4 KB response to a 34-byte query, so the kernel's socket buffers
# (megabytes on loopback) fill after a thousand replies a connection, not tens of thousands
PIPE = "pipe.example.com."
TRICKLERS = 1100
TRICKLE_SOURCES = 20  # 55 connections each: under the per-source limit, over the total
TRICKLE_EVERY = 1.5  # seconds between bytes: well inside the old 10 s idle timer
REOPEN_AFTER = 0.2  # seconds an attacker waits before reopening a closed connection
PIPELINERS = 100
PIPELINE_GROWTH_BOUND = 64 * 2**20  # what 100 non-readers may add to the resolver's RSS


def _txt(name: str, count: int, length: int = 255) -> dict[str, object]:
    return {
        "name": name,
        "type": "TXT",
        "answers": [{"value": f"{i:04d}" + "x" * (length - 4)} for i in range(count)],
    }


class Resolver(ResolverProcess):
    @property
    def port(self) -> int:  # DNS, UDP and TCP
        return self.dns

    def answers(self, reply: dns.message.Message) -> frozenset[str]:
        return frozenset(r.to_text() for rrset in reply.answer for r in rrset)

    def udp_ok(self) -> bool:
        query = dns.message.make_query("www.example.com.", "A")
        try:
            reply = dns.query.udp(query, HOST, port=self.port, timeout=2.0)
        except dns.exception.Timeout:
            return False
        return self.answers(reply) == ANSWERS

    def tcp_ok(self, timeout: float = 5.0) -> bool:
        query = dns.message.make_query("www.example.com.", "A")
        try:
            reply = dns.query.tcp(query, HOST, port=self.port, timeout=timeout)
        except (OSError, EOFError, dns.exception.DNSException):
            return False
        return reply.id == query.id and self.answers(reply) == ANSWERS


def _until(condition: Callable[[], bool], seconds: float, message: str) -> None:
    """Poll `condition` until it holds; fail with `message` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)  # polling, bounded by the deadline above


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < wanted:
        pytest.skip(f"needs {wanted} file descriptors")


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Resolver]:
    _raise_fd_limit(4096)  # the child inherits it, and raises its own to the hard limit
    directory = tmp_path_factory.mktemp("tcp-bounds")
    document = document_dict(
        records=[
            {
                "name": "www.example.com.",
                "type": "A",
                "answers": [{"value": v} for v in sorted(ANSWERS)],
            },
            _txt(BIG, 244),
            _txt(PIPE, 15),
        ],
        intervals={"probe": 1.0, "push": 1.0, "config": 5.0},
    )
    config = directory / "urn.json"
    config.write_text(json.dumps(document))
    with resolver_process(config, directory) as process:
        running = Resolver(**{f.name: getattr(process, f.name) for f in fields(process)})
        _until(
            lambda: running.alive() and running.udp_ok(),
            30,
            "resolver not answering after 30s",
        )
        yield running


# --- an attacker holding connections open with one byte at a time -------------------


class Tricklers:
    """`count` TCP connections from `sources` loopback addresses, each sending one byte
    every `every` seconds (a length prefix, then the message, never finished); any the
    server closes is reopened `reopen` seconds later. Runs in its own thread."""

    def __init__(self, port: int, count: int, sources: int, every: float, reopen: float) -> None:
        self.port = port
        self.count = count
        self.sources = [f"127.0.1.{1 + i}" for i in range(sources)]
        self.every = every
        self.reopen = reopen
        self.selector = selectors.DefaultSelector()
        self.socks: dict[int, socket.socket] = {}  # slot -> open (or opening) socket
        self.sent: dict[int, int] = {}  # slot -> bytes sent on its current connection
        self.due: list[tuple[float, int, int]] = []  # (when, slot, generation)
        self.generation: dict[int, int] = {}
        self.connected = 0  # connections established, in all
        self.engaged: set[int] = set()  # slots that sent a second byte or were closed
        self.closed_by_server = 0
        self.peak_open = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # state read by the test, under the lock
    def open_with(self, at_least: int) -> int:
        """Connections open now that have sent at least `at_least` bytes."""
        with self._lock:
            return sum(1 for slot in self.socks if self.sent.get(slot, -1) >= at_least)

    def start(self) -> Tricklers:
        start = time.monotonic()
        for slot in range(self.count):
            heapq.heappush(self.due, (start + slot * 0.001, slot, 0))
            self.generation[slot] = 0
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in self.socks.values():
            sock.close()
        self.selector.close()

    def _open(self, slot: int, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((self.sources[slot % len(self.sources)], 0))
        code = sock.connect_ex((HOST, self.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self._later(slot, now + self.reopen)
            return
        with self._lock:
            self.socks[slot] = sock
            self.sent[slot] = -1  # not yet connected
        self.selector.register(sock, selectors.EVENT_WRITE, slot)

    def _later(self, slot: int, when: float) -> None:
        heapq.heappush(self.due, (when, slot, self.generation[slot]))

    def _drop(self, slot: int, now: float, by_server: bool) -> None:
        with self._lock:
            sock = self.socks.pop(slot)
            self.sent.pop(slot, None)
        self.selector.unregister(sock)
        sock.close()
        if by_server:
            self.closed_by_server += 1
            self.engaged.add(slot)
        self.generation[slot] += 1
        self._later(slot, now + self.reopen)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            timeout = max(0.0, min(0.05, self.due[0][0] - now)) if self.due else 0.05
            for key, events in self.selector.select(timeout):
                slot = key.data
                sock = self.socks[slot]
                now = time.monotonic()
                if self.sent[slot] < 0 and events & selectors.EVENT_WRITE:
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self._drop(slot, now, by_server=True)
                        continue
                    with self._lock:
                        self.sent[slot] = 0
                        self.connected += 1
                        self.peak_open = max(self.peak_open, self.connected_now())
                    self.selector.modify(sock, selectors.EVENT_READ, slot)
                    self._later(slot, now)  # first byte at once
                elif events & selectors.EVENT_READ:
                    try:
                        data = sock.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        self._drop(slot, now, by_server=True)
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                _, slot, generation = heapq.heappop(self.due)
                if generation != self.generation[slot]:
                    continue  # for a connection since closed
                if slot not in self.socks:
                    self._open(slot, now)
                    continue
                if self.sent[slot] < 0:
                    continue  # still connecting: its first byte is scheduled on connect
                sent = self.sent[slot]
                byte = b"\x00" if sent == 0 else (b"\x40" if sent == 1 else b"\x00")
                try:
                    self.socks[slot].send(byte)
                except OSError:
                    self._drop(slot, now, by_server=True)
                    continue
                with self._lock:
                    self.sent[slot] = sent + 1
                if sent:
                    self.engaged.add(slot)
                self._later(slot, now + self.every)

    def connected_now(self) -> int:
        return sum(1 for sent in self.sent.values() if sent >= 0)


@contextlib.contextmanager
def trickling(port: int) -> Iterator[Tricklers]:
    attack = Tricklers(port, TRICKLERS, TRICKLE_SOURCES, TRICKLE_EVERY, REOPEN_AFTER).start()
    try:
        yield attack
    finally:
        attack.stop()


def test_fresh_tcp_queries_are_answered_while_1100_connections_trickle(
    resolver: Resolver,
) -> None:
    with trickling(resolver.port) as attack:
        # The attack is on once every slot has connected, and each has either sent a
        # second byte (the one that re-armed the old idle timer) or been shut out.
        _until(lambda: attack.connected >= TRICKLERS, 30, "tricklers never all connected")
        _until(lambda: len(attack.engaged) == TRICKLERS, 30, "tricklers never all engaged")
        held = attack.open_with(1)
        answered = sum(resolver.tcp_ok() for _ in range(10))
        udp = sum(resolver.udp_ok() for _ in range(50))
        print(
            f"trickle: {attack.connected} connections made, {held} open trickling, peak "
            f"{attack.peak_open}, {attack.closed_by_server} closed by the server; "
            f"fresh TCP answered {answered}/10, UDP {udp}/50"
        )
        assert attack.peak_open >= 1024, "the attack never reached the connection limit"
        assert answered >= 9
        assert udp == 50
    resolver.alive()
    assert resolver.metric("urn_dns_tcp_closed_total", reason="connection_limit") > 0
    _until(resolver.tcp_ok, 30, "TCP not answering after the attack")


def test_a_message_dribbled_a_byte_at_a_time_is_cut_at_its_deadline(resolver: Resolver) -> None:
    before = resolver.metric("urn_dns_tcp_closed_total", reason="message_timeout")
    query = dns.message.make_query("www.example.com.", "A").to_wire()
    stream = struct.pack(">H", len(query)) + query
    with socket.create_connection((HOST, resolver.port), timeout=1.0) as sock:
        deadline = time.monotonic() + 20
        closed = False
        for byte in stream:  # 35 bytes, one per 0.5 s: would finish after 17 s
            try:
                sock.sendall(bytes([byte]))
                closed = sock.recv(1) == b""  # waits 1 s at most
            except TimeoutError:
                continue
            except OSError:
                closed = True
            if closed or time.monotonic() > deadline:
                break
        assert closed, "the dribbled connection was never closed"
    after = resolver.metric("urn_dns_tcp_closed_total", reason="message_timeout")
    assert after == before + 1


def test_one_address_holds_at_most_64_connections_its_idlest_go_first(
    resolver: Resolver,
) -> None:
    socks = []
    try:
        for _ in range(70):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.3.1", 0))
            sock.connect((HOST, resolver.port))
            sock.setblocking(False)
            socks.append(sock)

        def eof(sock: socket.socket) -> bool:
            try:
                return sock.recv(1) == b""
            except BlockingIOError:
                return False
            except OSError:
                return True

        closed: set[int] = set()

        def six_closed() -> bool:
            closed.update(i for i, sock in enumerate(socks) if i not in closed and eof(sock))
            return len(closed) >= 6

        _until(six_closed, 10, "the source kept more than 64 connections")
        assert closed == set(range(6)), "the first opened (idlest) go first"
        # Another address is not held to this one's limit.
        assert resolver.tcp_ok()
    finally:
        for sock in socks:
            sock.close()
    assert resolver.metric("urn_dns_tcp_closed_total", reason="source_limit") >= 6


# --- pipelining without reading -------------------------------------------------------


def _server_rx_queues(dns_port: int) -> dict[tuple[str, int], int]:
    """Bytes queued unread in the resolver's sockets, by client (address, port)."""
    queues = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queue = fields[1], fields[2], fields[4]
        local_port = int(local.split(":")[1], 16)
        if local_port != dns_port or fields[3] != "01":  # ESTABLISHED
            continue
        address, port = remote.split(":")
        ip = socket.inet_ntoa(struct.pack("<I", int(address, 16)))
        queues[(ip, int(port, 16))] = int(queue.split(":")[1], 16)
    return queues


def test_100_connections_pipelining_without_reading_keep_memory_bounded(
    resolver: Resolver,
) -> None:
    query = dns.message.make_query(PIPE, "TXT").to_wire()
    batch = (struct.pack(">H", len(query)) + query) * 2000  # 70 KB of queries a send
    before = resolver.rss()
    socks: list[socket.socket] = []
    try:
        for i in range(PIPELINERS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing anyway
            sock.bind((f"127.0.2.{1 + i % 4}", 0))  # 25 an address: under the per-source limit
            sock.connect((HOST, resolver.port))
            sock.setblocking(False)
            socks.append(sock)
        clients = {sock.getsockname(): sock for sock in socks}
        pending = dict.fromkeys(clients, 0)  # bytes of `batch` not yet sent, per client
        peak = before
        previous: dict[tuple[str, int], int] | None = None

        def settled() -> bool:
            # Every client's send blocks, and the resolver has read nothing from any of
            # them since the last look: it has stopped reading every one.
            nonlocal previous, peak
            blocked = 0
            for name, sock in clients.items():
                try:
                    while True:
                        offset = pending[name]
                        sent = sock.send(batch[offset:])
                        pending[name] = (offset + sent) % len(batch)
                except BlockingIOError:
                    blocked += 1
            peak = max(peak, resolver.rss())
            queues = _server_rx_queues(resolver.port)
            mine = {name: queues.get(name, 0) for name in clients}
            done = blocked == len(clients) and mine == previous and all(mine.values())
            previous = mine
            time.sleep(0.2)  # the interval between two looks at the queues
            return done

        _until(settled, 60, "the resolver kept reading from clients that never read")
        after = resolver.rss()
        peak = max(peak, after)
        print(
            f"resolver VmRSS {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB with "
            f"{PIPELINERS} pipelining non-readers (peak {peak / 2**20:.1f} MiB, "
            f"+{(peak - before) / 2**20:.1f} MiB)"
        )
        assert peak - before < PIPELINE_GROWTH_BOUND, (before, peak)
        resolver.alive()
        assert resolver.udp_ok()
    finally:
        for sock in socks:
            sock.close()
    _until(resolver.tcp_ok, 30, "TCP not answering after the non-readers left")


# --- a record near the 65,535-byte bound ----------------------------------------------


def test_a_record_just_under_the_message_bound_is_answered_on_every_transport(
    resolver: Resolver,
) -> None:
    query = dns.message.make_query(BIG, "TXT", use_edns=0)
    udp = dns.query.udp(query, HOST, port=resolver.port, timeout=5)
    assert udp.flags & dns.flags.TC
    assert not udp.answer
    tcp = dns.query.tcp(query, HOST, port=resolver.port, timeout=5)
    assert not tcp.flags & dns.flags.TC
    assert sum(len(rrset) for rrset in tcp.answer) == 244
    request = urllib.request.Request(
        f"http://{HOST}:{resolver.http}/dns-query",
        data=query.to_wire(),
        headers={"Content-Type": "application/dns-message", "Accept": "application/dns-message"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    assert len(body) <= 65535
    doh = dns.message.from_wire(body)
    assert doh.id == query.id
    assert doh.rcode() == dns.rcode.NOERROR
    assert not doh.flags & dns.flags.TC
    assert doh.answer == tcp.answer


def test_a_300_answer_record_is_refused_by_urn_validate(tmp_path: Path) -> None:
    document = document_dict(records=[_txt(BIG, 300, 240)])
    config = tmp_path / "urn.json"
    config.write_text(json.dumps(document))
    result = run_urn("validate", "--config", str(config))
    assert result.returncode != 0
    assert "records[0].answers" in result.stderr + result.stdout
    assert "over the 65,535 a DNS message can hold" in result.stderr + result.stdout
