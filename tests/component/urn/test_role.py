"""serve_role and the shared table route, over loopback; services never tune the process."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sys
from typing import TYPE_CHECKING

import aiohttp
import pytest

from aggregator.app import SERVICE, TUNING, make_app
from aggregator.settings import AggregatorSettings
from checker.app import make_app as make_checker_app
from checker.settings import CheckerSettings
from sim.testing import (
    TEST_PUSH_KEY,
    MemoryTransport,
    document_dict,
    log_events,
    wait_until,
)
from sim.testing.resolver import running_resolver
from urn.errors import StartupError
from urn.http import serve
from urn.logs import get_logger
from urn.role import serve_role

if TYPE_CHECKING:
    import io
    from pathlib import Path

ENV = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}


def aggregator_settings(tmp_path: Path, port: int = 0) -> AggregatorSettings:
    config = tmp_path / "urn.json"
    config.write_text(json.dumps(document_dict(resolvers=[])))
    return AggregatorSettings(id="agg-1", config=str(config), listen_port=port, warm_up=0.0)


async def test_serve_role_listens_logs_once_and_stops(tmp_path: Path, log_stream: io.StringIO):
    app = make_app(aggregator_settings(tmp_path), environ=ENV, transport=MemoryTransport())
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_role(app, app[SERVICE], stop, log=get_logger("aggregator"), tuning=TUNING)
    )
    await wait_until(lambda: any(e["event"] == "listening" for e in log_events(log_stream)))
    (listening,) = [e for e in log_events(log_stream) if e["event"] == "listening"]
    assert listening["component"] == "urn.aggregator"
    assert (listening["id"], listening["host"], listening["https"]) == ("agg-1", "127.0.0.1", False)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{listening['port']}/healthz") as response,
    ):
        assert response.status == 200
    stop.set()
    assert await asyncio.wait_for(serving, 10) == 0
    assert log_events(log_stream)[-1]["event"] == "stopped"


async def test_serve_role_names_a_taken_port(tmp_path: Path, log_stream: io.StringIO):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = make_app(aggregator_settings(tmp_path, port), environ=ENV)
        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port}"):
            await serve_role(
                app, app[SERVICE], asyncio.Event(), log=get_logger("aggregator"), tuning=TUNING
            )
    assert not any(e["event"] in ("listening", "stopped") for e in log_events(log_stream))


async def test_a_role_builds_its_service_from_the_first_good_config(tmp_path: Path):
    app = make_app(aggregator_settings(tmp_path), environ=ENV, transport=MemoryTransport())
    running = app[SERVICE]
    assert not running.started
    with pytest.raises(RuntimeError, match="has not started"):
        _ = running.service
    runner, _ = await serve(app, "127.0.0.1", 0)
    try:
        assert running.started
        assert running.service.document.digest == running.service.loaded.document.digest
    finally:
        await runner.cleanup()


async def test_a_role_without_a_good_first_config_builds_nothing(tmp_path: Path):
    settings = aggregator_settings(tmp_path)
    (tmp_path / "urn.json").write_text("{not json")
    app = make_app(settings, environ=ENV, transport=MemoryTransport())
    with pytest.raises(StartupError, match="no usable config"):
        await serve(app, "127.0.0.1", 0)
    assert not app[SERVICE].started


async def test_building_and_starting_a_role_leaves_the_process_alone(tmp_path: Path):
    """Tuning belongs to `urn ROLE` at process start, never to a service."""
    before = (gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count())
    config = tmp_path / "urn.json"
    config.write_text(json.dumps(document_dict(aggregators=[], resolvers=[])))
    checker = make_checker_app(
        CheckerSettings(id="chk-a1", az="a", config=str(config)),
        environ=ENV,
        transport=MemoryTransport(),
    )
    aggregator = make_app(aggregator_settings(tmp_path), environ=ENV, transport=MemoryTransport())
    runners = [(await serve(app, "127.0.0.1", 0))[0] for app in (checker, aggregator)]
    try:
        async with running_resolver(config, dns=False):
            after = (gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count())
    finally:
        for runner in runners:
            await runner.cleanup()
    assert after == before
