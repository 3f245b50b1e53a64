"""Shared harness for the reliability tests: certificates, a receiver on a real socket.

`ReceiverServer` runs one `urn.http.TableReceiver` (plus /metrics and /healthz) on its own
event loop in a background thread, bound to 127.0.0.1 port 0, so that synchronous
clients (raw sockets, http.client, hypothesis tests) can hit it over real HTTP.
Everything it starts is stopped by the fixture that made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import trustme
from aiohttp import web
from prometheus_client import CollectorRegistry

from sim.testing import TEST_PUSH_KEY, signed_table
from urn.clock import SystemClock
from urn.config import Tls
from urn.http import TableReceiver, add_observability_routes, serve, server_ssl_context
from urn.metrics import AggregatorMetrics, ResolverMetrics
from urn.trust import ReceivePolicy
from urn.wire import TableKind, encoded_size

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from urn.wire import Envelope

CAPACITY = 64
SKEW = 30.0
READ_TIMEOUT = 0.4  # short, so slow-loris tests finish quickly; the bound is what matters


@dataclass
class Certs:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost, client certificates."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_ca: str  # a CA that signed nothing we serve
    rogue_client_cert: str  # a client certificate from other_ca
    rogue_client_key: str

    def server_tls(self, *, require_client_cert: bool = False) -> Tls:
        return Tls(
            cert=self.server_cert,
            key=self.server_key,
            ca=self.ca if require_client_cert else None,
            require_client_cert=require_client_cert,
        )

    def mtls_block(self) -> dict[str, Any]:
        """The config's `tls` block for a fleet that speaks mutual TLS on every hop."""
        return {
            "cert": self.server_cert,
            "key": self.server_key,
            "ca": self.ca,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "require_client_cert": True,
        }


def _write_certs(directory: Path, ca: trustme.CA) -> Certs:
    other = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("checker-a1.urn.test")
    rogue = other.issue_cert("checker-a1.urn.test")

    def put(name: str, blob: trustme.Blob) -> str:
        path = directory / name
        blob.write_to_path(str(path))
        return str(path)

    return Certs(
        ca=put("ca.pem", ca.cert_pem),
        server_cert=put("server.pem", server.cert_chain_pems[0]),
        server_key=put("server.key", server.private_key_pem),
        client_cert=put("client.pem", client.cert_chain_pems[0]),
        client_key=put("client.key", client.private_key_pem),
        other_ca=put("other-ca.pem", other.cert_pem),
        rogue_client_cert=put("rogue.pem", rogue.cert_chain_pems[0]),
        rogue_client_key=put("rogue.key", rogue.private_key_pem),
    )


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Certs:
    return _write_certs(tmp_path_factory.mktemp("certs"), ca)


@dataclass
class ReceiverServer:
    """A TableReceiver served over real HTTP(S) from a background thread's event loop."""

    kind: TableKind = TableKind.CHECKER
    capacity: int = CAPACITY
    keys: tuple[bytes, ...] = (TEST_PUSH_KEY,)
    skew: float = SKEW
    read_timeout: float = READ_TIMEOUT
    tls: Tls | None = None
    delivered: list[Envelope] = field(default_factory=list)
    port: int = 0
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.metrics = (
            AggregatorMetrics(self.registry)
            if self.kind is TableKind.CHECKER
            else ResolverMetrics(self.registry)
        )
        self.receiver = TableReceiver(
            policy=self.policy(),
            clock=SystemClock(),
            metrics=self.metrics,
            deliver=self.delivered.append,
            read_timeout=self.read_timeout,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def policy(self) -> ReceivePolicy:
        return ReceivePolicy(self.kind, self.capacity, self.keys, self.skew)

    def accept_keys(self, keys: tuple[bytes, ...]) -> None:
        """A config pass that changes the accepted keys, as a service applies one."""
        self.keys = keys
        self.receiver.apply(self.policy())

    @property
    def table_bytes(self) -> int:
        return encoded_size(self.capacity, self.kind)

    def start(self) -> ReceiverServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._runner, self.port = future.result(timeout=10)
        return self

    async def _start(self) -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/v1/table", self.receiver.handle)

        async def health() -> tuple[bool, dict[str, Any]]:
            return True, {"delivered": len(self.delivered)}

        add_observability_routes(app, self.registry, health, health)
        context = server_ssl_context(self.tls) if self.tls is not None else None
        return await serve(app, "127.0.0.1", 0, context)

    def settle(self) -> None:
        """Return once the server's loop has run everything already due on it."""

        async def idle() -> None:
            for _ in range(3):  # callbacks that the ones before schedule, too
                await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(idle(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._cleanup(self._runner), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @staticmethod
    async def _cleanup(runner: web.AppRunner) -> None:
        await runner.cleanup()
        # Handlers of connections a hostile client abandoned: finish them, no leftovers.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- what a test inspects --------------------------------------------------------

    def rejected(self, reason: str) -> float:
        value = self.registry.get_sample_value("urn_tables_rejected_total", {"reason": reason})
        return value or 0.0

    def accepted(self, sender: str) -> float:
        labels = {"sender": sender, "result": "accepted"}
        return self.registry.get_sample_value("urn_tables_received_total", labels) or 0.0

    def state(self) -> tuple[int, dict[str, int]]:
        """Everything a rejected table must leave alone: deliveries and sequence memory."""
        return len(self.delivered), dict(self.receiver.guard._last)

    # --- clients -------------------------------------------------------------------

    def post(
        self, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10.0
    ) -> tuple[int, dict[str, Any]]:
        """POST /v1/table with a Content-Length; (status, JSON reply)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(
                "POST",
                "/v1/table",
                body=body,
                headers={"Content-Type": "application/msgpack", **(headers or {})},
            )
            response = conn.getresponse()
            return response.status, _json(response.read())
        finally:
            conn.close()

    def raw(self, request: bytes, *, pause_after: float = 0.0, timeout: float = 10.0) -> bytes:
        """Send raw bytes on a fresh connection and read until the server closes or replies."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(request)
            if pause_after:
                time.sleep(pause_after)
            return _read_response(sock)

    @staticmethod
    def status_of(response: bytes) -> int:
        """The status code of a raw HTTP response (0 if there was none)."""
        parts = response.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    @staticmethod
    def body_of(response: bytes) -> dict[str, Any]:
        return _json(response.partition(b"\r\n\r\n")[2])

    def table(self, sequence: int, **kwargs: Any) -> bytes:
        """A valid table of this receiver's kind and capacity."""
        slots = kwargs.pop("slots", bytes([1]) * self.capacity)
        kwargs.setdefault("kind", self.kind)
        return signed_table(slots, sequence=sequence, **kwargs)


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {"raw": data[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {"raw": value}


def _read_response(sock: socket.socket) -> bytes:
    """Bytes of one HTTP response (headers + Content-Length body), or what came before EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@contextlib.contextmanager
def running(server: ReceiverServer) -> Iterator[ReceiverServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with running(ReceiverServer()) as server:
        yield server


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., ReceiverServer]]:
    """Start receivers with non-default settings; every one is stopped afterwards."""
    started: list[ReceiverServer] = []

    def make(**kwargs: Any) -> ReceiverServer:
        server = ReceiverServer(**kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[ReceiverServer]:
    """One receiver for a whole module (hypothesis tests post hundreds of bodies)."""
    with running(ReceiverServer()) as server:
        yield server
