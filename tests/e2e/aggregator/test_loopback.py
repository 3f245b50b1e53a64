"""Checkers -> aggregator process -> resolver receiver, over real loopback sockets.

The aggregator runs as its own process (`python -m aggregator`). The checkers are
either real `urn checker` processes, or minimal in-test senders that probe the same
target and push signed fixed-size checker tables over HTTP (so the aggregator's side
is tested on its own, whatever the checker does). The resolver side is the kernel's
real `TableReceiver` for aggregated tables. When the target dies the slot turns
unhealthy (reason refused) at the resolver; when it returns, healthy again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from sim.testing import TEST_PUSH_KEY, document_dict, free_port, signed_table, wait_until
from urn.clock import SystemClock
from urn.http import TableReceiver, serve
from urn.metrics import ResolverMetrics
from urn.table import Reason, Status, aggregated_byte
from urn.trust import ReceivePolicy
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from urn.wire import Envelope

pytestmark = pytest.mark.e2e

CAPACITY = 64
INTERVAL = 0.1
TARGET_SLOT, ALL_SLOT = 0, 3
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)


class Target:
    """A real HTTP target on loopback that can die and come back on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        self._runner, self.port = await serve(app, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class Resolver:
    """The resolver's side of the push: the kernel receiver for aggregated tables."""

    def __init__(self) -> None:
        self.table: np.ndarray | None = None
        self.senders: set[str] = set()
        self.receiver = TableReceiver(
            policy=ReceivePolicy(TableKind.AGGREGATE, CAPACITY, (TEST_PUSH_KEY,), skew=30.0),
            clock=SystemClock(),
            metrics=ResolverMetrics(CollectorRegistry()),
            deliver=self._deliver,
        )

    def _deliver(self, envelope: Envelope) -> None:
        self.table = np.frombuffer(envelope.slots, np.uint8)
        self.senders.add(envelope.sender)

    def slot(self, slot: int) -> int | None:
        return None if self.table is None else int(self.table[slot])

    async def serve(self) -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/v1/table", self.receiver.handle)
        return await serve(app, "127.0.0.1", 0)


async def mini_checker(name: str, az: str, target: Target, aggregator: str) -> None:
    """Probe the target, push the whole table, every interval, until cancelled.

    Like a real checker, each probe's outcome is shifted into the slot's history byte
    (bit 0 newest, 1 = failed) beside its `last` reason.
    """
    sequence = time.time_ns() // 1000
    history = 0
    deadline = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while True:
            deadline += INTERVAL
            try:
                async with session.get(
                    f"http://127.0.0.1:{target.port}/healthz",
                    timeout=aiohttp.ClientTimeout(total=INTERVAL * 0.8),
                ) as response:
                    ok = response.status == 200 and "ok" in await response.text()
                    value = Reason.HEALTHY if ok else Reason.BAD_STATUS
            except aiohttp.ClientConnectorError:
                value = Reason.REFUSED
            except TimeoutError:
                value = Reason.TIMEOUT
            history = ((history << 1) | (value >= Reason.TIMEOUT)) & 0xFF
            table = bytearray(CAPACITY)
            table[TARGET_SLOT] = value
            bits = bytearray(CAPACITY)
            bits[TARGET_SLOT] = history
            sequence += 1
            body = signed_table(
                bytes(table), sender=name, az=az, sequence=sequence, history=bytes(bits)
            )
            with suppress(aiohttp.ClientError, TimeoutError):
                async with session.post(
                    aggregator + "/v1/table",
                    data=body,
                    timeout=aiohttp.ClientTimeout(total=INTERVAL * 0.8),
                ) as response:
                    assert response.status == 200, await response.text()
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))


def write_config(path: Path, target_port: int, aggregator: str, resolver: str) -> None:
    checks: list[dict[str, Any]] = [
        {"slot": TARGET_SLOT, "name": "web", "type": "http", "host": "127.0.0.1",
         "port": target_port, "path": "/healthz", "search": "ok", "timeout": 0.08,
         "failures": 2, "of_last": 4},
        {"slot": ALL_SLOT, "name": "web-all", "type": "calculated",
         "children": [TARGET_SLOT], "healthy_if_at_least": 1},
    ]  # fmt: skip
    document = document_dict(
        checks,
        capacity=CAPACITY,
        intervals={"probe": INTERVAL, "push": INTERVAL, "config": 1.0},
        staleness=1.0,
        aggregators=[aggregator],
        resolvers=[resolver],
    )
    path.write_text(json.dumps(document))


async def start_process(args: list[str], log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "URN_PUSH_KEY": TEST_PUSH_KEY.decode()}
    with log.open("wb") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", *args, stdout=sink, stderr=sink, env=env
        )


async def stop_process(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode


class Fleet:
    def __init__(self, stack: AsyncExitStack, tmp_path: Path) -> None:
        self.stack = stack
        self.tmp_path = tmp_path
        self.target = Target()
        self.resolver = Resolver()
        self.aggregator_port = free_port()  # the config must name it before it starts
        self.aggregator = f"http://127.0.0.1:{self.aggregator_port}"
        self.config = tmp_path / "urn.json"
        self.session = aiohttp.ClientSession()

    async def start(self) -> None:
        await self.target.start()
        self.stack.push_async_callback(self.target.stop)
        runner, resolver_port = await self.resolver.serve()
        self.stack.push_async_callback(runner.cleanup)
        self.stack.push_async_callback(self.session.close)
        write_config(
            self.config, self.target.port, self.aggregator, f"http://127.0.0.1:{resolver_port}"
        )
        process = await start_process(
            [
                "aggregator",
                "--config",
                str(self.config),
                "--id",
                "agg-1",
                "--listen",
                f"127.0.0.1:{self.aggregator_port}",
            ],
            self.tmp_path / "aggregator.log",
        )
        self.process = process

        async def stop() -> None:
            assert await stop_process(process) == 0, (self.tmp_path / "aggregator.log").read_text()

        self.stack.push_async_callback(stop)
        await wait_until(self.healthy, timeout=20, message="aggregator /healthz")

    async def healthy(self) -> bool:
        assert self.process.returncode is None, (self.tmp_path / "aggregator.log").read_text()
        try:
            async with self.session.get(self.aggregator + "/healthz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    async def explain(self, slot: int) -> dict[str, Any]:
        async with self.session.get(f"{self.aggregator}/v1/slots/{slot}") as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    async with AsyncExitStack() as stack:
        fleet = Fleet(stack, tmp_path)
        await fleet.start()
        yield fleet


CHECKERS = (("chk-a1", "a"), ("chk-b1", "b"))


@asynccontextmanager
async def in_test_checkers(fleet: Fleet) -> AsyncIterator[None]:
    tasks = [
        asyncio.create_task(mini_checker(name, az, fleet.target, fleet.aggregator))
        for name, az in CHECKERS
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def checker_processes(fleet: Fleet) -> AsyncIterator[None]:
    processes = []
    failed = False
    try:
        for name, az in CHECKERS:
            args = ["checker", "--config", str(fleet.config), "--id", name, "--az", az]
            args += ["--listen", "127.0.0.1:0"]
            processes.append(await start_process(args, fleet.tmp_path / f"{name}.log"))
        yield
    except BaseException:
        failed = True
        raise
    finally:
        codes = [await stop_process(process) for process in processes]
        logs = [(fleet.tmp_path / f"{name}.log").read_text() for name, _ in CHECKERS]
        if not failed:  # a clean SIGTERM exit, unless the test already failed
            assert codes == [0] * len(processes), logs


@pytest.mark.parametrize("senders", [in_test_checkers, checker_processes])
async def test_a_slot_flips_when_its_target_dies_and_back_when_it_returns(
    fleet: Fleet, senders: Callable[[Fleet], AbstractAsyncContextManager[None]]
) -> None:
    resolver = fleet.resolver

    def both_slots(byte: int) -> Callable[[], bool]:
        """The target's slot and the calculated slot over it both read `byte` at the resolver."""
        return lambda: resolver.slot(TARGET_SLOT) == byte and resolver.slot(ALL_SLOT) == byte

    async with senders(fleet):
        await wait_until(
            both_slots(Status.HEALTHY), timeout=20, message="slot healthy at the resolver"
        )
        assert resolver.senders == {"agg-1"}

        async def every_checker_seen() -> bool:
            explained = await fleet.explain(TARGET_SLOT)
            seen = {(c["checker"], c["az"], c["verdict"]) for c in explained["checkers"]}
            return seen == {(name, az, "healthy") for name, az in CHECKERS}

        await wait_until(every_checker_seen, timeout=20, message="both checkers' tables")

        await fleet.target.stop()
        await wait_until(
            both_slots(DOWN), timeout=20, message="slot unhealthy (refused) at the resolver"
        )
        explained = await fleet.explain(TARGET_SLOT)
        assert explained["verdict"]["reason"] == "refused"
        # each checker's own probes say so, in both AZs
        rows = explained["checkers"]
        assert {(c["checker"], c["az"]) for c in rows} == set(CHECKERS)
        assert all(c["verdict"] == "unhealthy" and c["failed_of_last"] >= 2 for c in rows)
        assert explained["quorum"]["unhealthy_azs"] == ["a", "b"]
        assert explained["quorum"]["outcome"].startswith("unhealthy:")

        await fleet.target.start()
        await wait_until(
            both_slots(Status.HEALTHY), timeout=20, message="slot healthy again at the resolver"
        )
