"""`urn checker` as a real process: pushes to an aggregator-like receiver, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web

from sim.testing import TEST_PUSH_KEY, document_dict, free_port, wait_until
from sim.testing.targets import loopback_farm
from urn.http import serve
from urn.table import CheckerPlanes
from urn.wire import Envelope, TableKind, decode

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

CAPACITY = 32


class Receiver:
    """An aggregator stand-in: decodes every pushed table with urn.wire.decode."""

    def __init__(self) -> None:
        self.tables: list[Envelope] = []
        self.rejected: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            envelope = decode(body, [TEST_PUSH_KEY], CAPACITY, TableKind.CHECKER)
        except Exception as exc:
            self.rejected.append(repr(exc))
            return web.Response(status=400)
        self.tables.append(envelope)
        return web.json_response({"accepted": envelope.sequence})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/v1/table", receiver.handle)
    runner, port = await serve(app, "127.0.0.1", 0)
    yield receiver, port
    await runner.cleanup()


async def spawn(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "URN_PUSH_KEY": TEST_PUSH_KEY.decode()}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "urn",
        "checker",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=20)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_checker_process_pushes_tables_and_stops_on_sigterm(tmp_path: Path, receiver):
    sink, sink_port = receiver
    farm = await loopback_farm(1)
    target = farm.specs[0]
    listen = free_port()
    config = tmp_path / "urn.json"
    config.write_text(
        json.dumps(
            document_dict(
                [
                    {
                        "slot": 2,
                        "name": "web",
                        "type": "http",
                        "host": "127.0.0.1",
                        "port": target.port,
                        "path": target.path,
                        "timeout": 0.3,
                    },
                    {
                        "slot": 7,
                        "name": "db",
                        "type": "tcp",
                        "host": "127.0.0.1",
                        "port": free_port(),
                        "timeout": 0.3,
                    },
                ],
                capacity=CAPACITY,
                intervals={"probe": 0.2, "push": 0.2, "config": 1.0},
                aggregators=[f"http://127.0.0.1:{sink_port}"],
            )
        )
    )
    process = await spawn(
        "--config", str(config), "--id", "chk-proc", "--az", "b", "--listen", f"127.0.0.1:{listen}"
    )
    try:

        def verdicts() -> bool:
            if not sink.tables:
                return False
            last = CheckerPlanes(sink.tables[-1].slots, CAPACITY).last
            return bool(last[2] == 1 and last[7] == 3)

        await wait_until(verdicts, timeout=20, message="tables with both verdicts")
        last = sink.tables[-1]
        assert (last.sender, last.az, last.capacity) == ("chk-proc", "b", CAPACITY)
        assert sink.rejected == []
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{listen}/healthz") as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{listen}/metrics") as response:
                assert "urn_probes_total" in await response.text()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code, err = await finish(process)
        await farm.close()
    assert code == 0, err
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "checker_started" in events
    assert "stopped" in events


async def test_checker_process_refuses_to_start_without_a_place_in_the_shard(tmp_path: Path):
    config = tmp_path / "urn.json"
    config.write_text(
        json.dumps(document_dict([], assignment={"shuffle_shard": 1, "checkers": ["chk-x"]}))
    )
    process = await spawn(
        "--config",
        str(config),
        "--id",
        "chk-y",
        "--az",
        "a",
        "--listen",
        f"127.0.0.1:{free_port()}",
    )
    code, err = await finish(process)
    assert code == 2
    assert "does not list this checker 'chk-y'" in err
