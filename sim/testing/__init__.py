"""Fakes and builders for tests, benchmarks and the demo (importable, not under tests/).

FakeClock, an in-memory push transport, free loopback ports, config builders, signed
tables, and `wait_until`, which polls a condition against a deadline instead of
sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, Any

from urn.clock import FakeClock
from urn.table import checker_table
from urn.wire import Envelope, TableKind, encode

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = [
    "TEST_PUSH_KEY",
    "FakeClock",
    "MemoryTransport",
    "document_dict",
    "free_port",
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


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port free on `host` right now (for processes that need it on the command line)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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
