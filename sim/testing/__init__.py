"""Fakes and builders for tests, benchmarks and the demo (importable, not under tests/).

FakeClock, an in-memory push transport, free loopback ports, config builders, signed
tables, captured log lines as events, the `urn` command run as a child, and
`wait_until`, which polls a condition against a deadline instead of sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from urn.clock import FakeClock
from urn.table import checker_table
from urn.wire import Envelope, TableKind, encode

if TYPE_CHECKING:
    import io
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = [
    "TEST_PUSH_KEY",
    "FakeClock",
    "MemoryTransport",
    "document_dict",
    "free_port",
    "log_events",
    "run_urn",
    "signed_table",
    "step_until",
    "wait_until",
]

TEST_PUSH_KEY = b"urn-test-push-key-0123456789abcdef"


class MemoryTransport:
    """Records pushes instead of sending them; `status` or `delay` per URL shape replies."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.status: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        self.fail: dict[str, BaseException] = {}

    async def post(self, url: str, body: bytes, timeout: float) -> tuple[int, str]:
        if url in self.delay:
            await asyncio.sleep(self.delay[url])
        if url in self.fail:
            raise self.fail[url]
        self.sent.append((url, body))
        return self.status.get(url, 200), ""


def free_port(host: str = "127.0.0.1", *, udp: bool = False, stable: bool = False) -> int:
    """A port free on `host` right now, for a process that must be told its port up front.

    Nothing listens on it once this returns, so it also serves as a port that refuses
    connections; one meant to stay refusing for long should be on a loopback address of
    its own (127.0.99.1, say), as any process may soon take a port just released on
    127.0.0.1. `udp`: free for UDP as well (a DNS server binds both). `stable`: from
    below the ephemeral range, for a member that is killed and restarted on its own port;
    an ephemeral port can meanwhile become the source port of any process's client
    connection, and the restart then fails with EADDRINUSE.
    """
    candidates = [0] * 50  # 0: the kernel picks a free ephemeral port
    if stable:
        ceiling = max(_STABLE_FLOOR + 1, _ephemeral_start())
        candidates[:0] = [random.randrange(_STABLE_FLOOR, ceiling) for _ in range(500)]
    error: OSError | None = None
    for candidate in candidates:
        try:
            return _claim(host, candidate, udp)
        except OSError as exc:
            error = exc
    raise OSError(f"no port free on {host}{' for TCP and UDP' if udp else ''}: {error}")


_STABLE_FLOOR = 10_000  # below it: well-known and commonly configured ports


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _claim(host: str, port: int, udp: bool) -> int:
    """Bind TCP `port` (0: any) on `host`, and UDP on the same port if `udp`; the port
    bound. OSError if a bind fails. Released again on return."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind((host, port))
        bound: int = tcp.getsockname()[1]
        if udp:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram:
                dgram.bind((host, bound))
        return bound


def log_events(stream: io.StringIO) -> list[dict[str, Any]]:
    """The JSON log lines written to `stream` so far, as dicts (see the log_stream fixture)."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def run_urn(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m urn ARGS` run to its end (a minute at most), output captured as text.

    `env` is the child's whole environment; None passes on this process's.
    """
    return subprocess.run(
        [sys.executable, "-m", "urn", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def document_dict(
    checks: Sequence[Mapping[str, Any]] = (),
    records: Sequence[Mapping[str, Any]] = (),
    **top: Any,
) -> dict[str, Any]:
    """A valid config document as a dict, with small defaults a test can override."""
    document: dict[str, Any] = {
        "capacity": 64,
        "intervals": {"probe": 1.0, "push": 1.0, "config": 5.0},
        "zones": ["example.com."],
        "push_key": {"env": "URN_PUSH_KEY"},
        "checks": list(checks),
        "records": list(records),
    }
    document.update(top)
    return document


def signed_table(
    slots: bytes,
    *,
    kind: TableKind = TableKind.CHECKER,
    sender: str = "chk-a1",
    az: str = "a",
    sequence: int = 1,
    generated_at: float | None = None,
    digest: bytes = b"\0" * 32,
    key: bytes = TEST_PUSH_KEY,
    history: bytes | None = None,
    checkers: int = 0,
    azs: int = 0,
    autoshift: str = "",
) -> bytes:
    """An encoded, signed envelope around `slots` (one byte per slot).

    For a checker table `slots` is the `last` plane; `history` defaults to each slot's
    one last probe (urn.table.checker_table).
    """
    capacity = len(slots)
    if kind is TableKind.CHECKER:
        slots = checker_table(slots, history)
    envelope = Envelope(
        kind=kind,
        sender=sender,
        az=az,
        sequence=sequence,
        generated_at=time.time() if generated_at is None else generated_at,
        config_digest=digest,
        capacity=capacity,
        slots=slots,
        checkers=checkers,
        azs=azs,
        autoshift=autoshift,
    )
    return encode(envelope, key)


async def step_until(
    clock: FakeClock,
    condition: Callable[[], bool],
    step: float = 0.01,
    timeout: float = 10.0,
    message: str = "condition",
) -> None:
    """Advance `clock` by `step` at a time until `condition` holds.

    For ticks on wall-clock instants: the instant a FakeClock reaches after a given
    advance depends on float rounding of its wall offset, so stepping to the event is
    exact where advancing by a whole interval can stop a hair short.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s stepping the clock to {message}")
        await clock.advance(step)


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> None:
    """Poll `condition` until true; fail with `message` once `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message}")
        await asyncio.sleep(interval)
