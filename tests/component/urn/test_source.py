"""The reload loop: whole document every interval, last good kept, errors logged and counted."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from sim.testing import TEST_PUSH_KEY, document_dict, log_events, wait_until
from urn.clock import FakeClock
from urn.errors import StartupError
from urn.http import serve
from urn.metrics import CommonMetrics
from urn.source import ConfigLoader, Loaded
from urn.wire import TableKind

if TYPE_CHECKING:
    import io
    from collections.abc import AsyncIterator
    from pathlib import Path

ENV = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}
INTERVAL = 2.0


def good(port: int = 80, **top: Any) -> str:
    checks = [{"slot": 0, "name": "web", "type": "tcp", "host": "10.0.0.1", "port": port}]
    top.setdefault("intervals", {"probe": 1.0, "push": 1.0, "config": INTERVAL})
    return json.dumps(document_dict(checks, **top))


class Harness:
    def __init__(self, location: str, environ: dict[str, str] | None = None) -> None:
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.metrics = CommonMetrics(self.registry)
        self.applied: list[Loaded] = []
        self.loader = ConfigLoader(
            location,
            self.clock,
            self.metrics,
            ENV if environ is None else environ,
            first_pass=1.0,  # a whole interval after start, so steps land on passes
        )

    def build(self, loaded: Loaded) -> Loaded:
        self.applied.append(loaded)
        return loaded

    def apply(self, loaded: Loaded) -> None:
        self.applied.append(loaded)

    def loads(self, result: str) -> float:
        value = self.registry.get_sample_value("urn_config_loads_total", {"result": result})
        assert value is not None
        return value

    def passes(self) -> float:
        return self.loads("ok") + self.loads("error")

    async def start(self, running: list[asyncio.Task[None]]) -> Loaded:
        """Load the first config, then run the loop (into `running`) until it sleeps."""
        first = await self.loader.load_first(self.build)
        running.append(asyncio.create_task(self.loader.run(self.apply)))
        await wait_until(lambda: self.clock.sleepers == 1, message="the loop to sleep")
        return first

    async def next_pass(self) -> None:
        """Advance virtual time by one interval and wait for that pass to finish."""
        before = self.passes()
        await self.clock.advance(INTERVAL)
        await wait_until(lambda: self.passes() > before, message="a config pass")
        await wait_until(lambda: self.clock.sleepers == 1, message="the loop to sleep again")


@pytest.fixture
async def looping(tmp_path: Path, running: list[asyncio.Task[None]]) -> Harness:
    """A harness on a good config file, started, its loop asleep until the next pass."""
    path = tmp_path / "urn.json"
    path.write_text(good())
    h = Harness(str(path))
    await h.start(running)
    return h


# --- file source -------------------------------------------------------------------------


async def test_first_load_applies_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "urn.json"
    path.write_text(good())
    h = Harness(str(path))
    loaded = await h.loader.load_first(h.build)
    assert h.applied == [loaded]
    assert loaded.document.checks[0].port == 80
    assert loaded.keys.for_kind(TableKind.CHECKER).signing == TEST_PUSH_KEY
    assert h.loader.current is loaded
    assert h.loads("ok") == 1
    assert h.loads("error") == 0
    assert h.registry.get_sample_value("urn_config_last_success_timestamp_seconds") == (
        h.clock.time()
    )


async def test_corrupt_file_mid_run_keeps_last_good_then_heals(
    tmp_path: Path, log_stream: io.StringIO, running: list[asyncio.Task[None]]
) -> None:
    path = tmp_path / "urn.yaml"
    path.write_text(good(port=80))
    h = Harness(str(path))
    first = await h.start(running)

    path.write_text("capacity: 64\nchecks: [{slot: 0, type: tcp, host: h, port: 1}\n")
    await h.next_pass()
    assert h.applied == [first]
    assert h.loader.current is first
    assert h.loads("error") == 1
    assert h.loader.last_error is not None
    assert "is not valid YAML/JSON at line 3" in h.loader.last_error
    [event] = [e for e in log_events(log_stream) if e["event"] == "config_rejected"]
    assert event["level"] == "error"
    assert event["component"] == "urn.config"
    assert event["source"] == str(path)
    assert event["kept"] == "last good"
    assert "not valid YAML/JSON" in event["error"]

    path.write_text(good(capacity=64).replace('"slot": 0', '"slot": 99'))
    await h.next_pass()
    assert h.applied == [first]
    assert h.loads("error") == 2
    assert log_events(log_stream)[-1]["field"] == "checks[0].slot"

    path.write_text(good(port=8080))
    await h.next_pass()
    assert len(h.applied) == 2
    assert h.loader.current.document.checks[0].port == 8080
    assert h.loader.last_error is None
    assert h.loads("ok") == 2


async def test_unchanged_document_is_reapplied_every_pass(looping: Harness) -> None:
    h = looping
    for _ in range(4):
        await h.next_pass()
    assert len(h.applied) == 5
    assert all(loaded.document == h.applied[0].document for loaded in h.applied)
    assert h.loads("ok") == 5


async def test_interval_follows_the_current_document(looping: Harness) -> None:
    h = looping
    await h.clock.advance(INTERVAL - 0.01)
    assert len(h.applied) == 1
    await h.clock.advance(0.01)
    await wait_until(lambda: len(h.applied) == 2, message="the second pass")


async def test_first_pass_comes_at_its_share_of_the_interval(
    tmp_path: Path, running: list[asyncio.Task[None]]
) -> None:
    """Processes started together spread their passes: each one's first comes at its own
    share of the interval (random unless given), then every interval."""
    path = tmp_path / "urn.json"
    path.write_text(good())
    h = Harness(str(path))
    h.loader.first_pass = 0.3
    await h.start(running)
    await h.clock.advance(0.3 * INTERVAL - 0.01)
    assert len(h.applied) == 1
    await h.clock.advance(0.02)
    await wait_until(lambda: len(h.applied) == 2, message="the first pass")
    await h.clock.advance(INTERVAL - 0.02)
    assert len(h.applied) == 2
    await h.clock.advance(0.02)
    await wait_until(lambda: len(h.applied) == 3, message="the second pass")
    shares = {ConfigLoader(str(path), h.clock, h.metrics).first_pass for _ in range(20)}
    assert len(shares) > 1
    assert all(0.0 < share <= 1.0 for share in shares)
    with pytest.raises(ValueError, match="outside"):
        ConfigLoader(str(path), h.clock, h.metrics, first_pass=0.0)


async def test_never_good_is_a_startup_error(tmp_path: Path) -> None:
    path = tmp_path / "urn.yaml"
    path.write_text("capacity: -5\n")
    h = Harness(str(path))
    with pytest.raises(StartupError) as caught:
        await h.loader.load_first(h.build)
    assert str(caught.value) == (f"no usable config at {path}: capacity: -5 must be at least 1")
    assert h.applied == []
    assert h.loads("error") == 1
    with pytest.raises(RuntimeError):
        _ = h.loader.current


async def test_missing_file_is_a_startup_error(tmp_path: Path) -> None:
    h = Harness(str(tmp_path / "absent.yaml"))
    with pytest.raises(StartupError) as caught:
        await h.loader.load_first(h.build)
    assert "cannot read config from" in str(caught.value)
    assert "No such file" in str(caught.value)


async def test_capacity_change_is_refused(tmp_path: Path, log_stream: io.StringIO) -> None:
    path = tmp_path / "urn.json"
    path.write_text(good(capacity=64))
    h = Harness(str(path))
    first = await h.loader.load_first(h.build)
    path.write_text(good(capacity=128))
    assert not await h.loader.poll_once(h.apply)
    assert h.applied == [first]
    assert h.loader.last_error is not None
    assert h.loader.last_error.startswith("capacity: 128 differs from the running 64")
    assert log_events(log_stream)[-1]["field"] == "capacity"


async def test_missing_push_key_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "urn.json"
    path.write_text(good())
    h = Harness(str(path), environ={})
    with pytest.raises(StartupError) as caught:
        await h.loader.load_first(h.build)
    assert "push_key.env: 'URN_PUSH_KEY' is not set in the environment" in str(caught.value)


async def test_short_push_key_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "urn.json"
    path.write_text(good())
    h = Harness(str(path), environ={"URN_PUSH_KEY": "short"})
    assert not await h.loader.poll_once(h.apply)
    assert "shorter than 16 bytes" in (h.loader.last_error or "")


async def test_push_key_from_file_and_previous_keys(tmp_path: Path) -> None:
    (tmp_path / "new.key").write_bytes(b"a-brand-new-push-key-0123456789\n")
    path = tmp_path / "urn.json"
    path.write_text(
        good(
            push_key={"file": str(tmp_path / "new.key")},
            previous_push_keys=[{"env": "URN_PUSH_KEY"}],
        )
    )
    h = Harness(str(path))
    loaded = await h.loader.load_first(h.build)
    ring = loaded.keys.for_kind(TableKind.CHECKER)
    assert ring.signing == b"a-brand-new-push-key-0123456789"
    assert ring.accepted == (ring.signing, TEST_PUSH_KEY)


async def test_a_process_reads_only_the_key_tiers_it_needs(tmp_path: Path) -> None:
    """A sidecar checker has no table key mounted: its passes are good all the same."""
    path = tmp_path / "urn.json"
    path.write_text(good(table_key={"file": str(tmp_path / "mounted-elsewhere")}))
    clock, metrics = FakeClock(), CommonMetrics(CollectorRegistry())
    checker = ConfigLoader(str(path), clock, metrics, ENV, needs={TableKind.CHECKER})
    loaded = await checker.load_first(lambda loaded: loaded)
    assert loaded.keys.for_kind(TableKind.CHECKER).signing == TEST_PUSH_KEY
    assert loaded.keys.table is None
    aggregator = ConfigLoader(str(path), clock, metrics, ENV)  # needs both tiers
    assert not await aggregator.poll_once(lambda _: None)
    assert "table_key.file" in (aggregator.last_error or "")


# --- http(s) source ----------------------------------------------------------------------


class ConfigServer:
    """A real aiohttp server on 127.0.0.1:0 whose answer the test switches."""

    def __init__(self) -> None:
        self.status = 200
        self.body = good()
        self.requests = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handler(self, _: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(status=self.status, text=self.body)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/urn.json", self.handler)
        self.runner, port = await serve(app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{port}/urn.json"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def config_server() -> AsyncIterator[ConfigServer]:
    server = ConfigServer()
    await server.start()
    yield server
    await server.stop()


async def test_http_source_keeps_last_good_through_500_and_outage(
    config_server: ConfigServer, log_stream: io.StringIO, running: list[asyncio.Task[None]]
) -> None:
    h = Harness(config_server.url)
    first = await h.start(running)

    config_server.status = 500
    await h.next_pass()
    assert h.applied == [first]
    assert h.loader.last_error == f"cannot read config from {config_server.url}: HTTP 500"

    config_server.status = 200
    config_server.body = "{not json"
    await h.next_pass()
    assert h.applied == [first]

    config_server.body = good(port=9090)
    await h.next_pass()
    assert h.loader.current.document.checks[0].port == 9090

    await config_server.stop()
    await h.next_pass()
    assert h.loader.current.document.checks[0].port == 9090
    assert h.loads("error") == 3
    assert h.loads("ok") == 2
    assert "ClientConnectorError" in (h.loader.last_error or "")
    rejected = [e for e in log_events(log_stream) if e["event"] == "config_rejected"]
    assert [e["kept"] for e in rejected] == ["last good"] * 3


async def test_http_source_reads_a_large_document_whole(config_server: ConfigServer) -> None:
    """A multi-megabyte document arrives in many chunks; all of them must be read."""
    checks = [
        {
            "slot": i,
            "name": f"web-{i}",
            "type": "http",
            "host": f"10.1.{i // 250}.{i % 250}",
            "path": f"/health/check/number/{i}",
            "search": "service is up and running",
        }
        for i in range(10_000)
    ]
    config_server.body = json.dumps(document_dict(checks, capacity=10_000))
    assert len(config_server.body) > 1_000_000
    h = Harness(config_server.url)
    loaded = await h.loader.load_first(h.build)
    assert len(loaded.document.checks) == 10_000


async def test_http_source_never_reachable_is_a_startup_error() -> None:
    server = ConfigServer()
    await server.start()
    url = server.url
    await server.stop()
    h = Harness(url)
    with pytest.raises(StartupError) as caught:
        await h.loader.load_first(h.build)
    assert f"no usable config at {url}: cannot read config from {url}" in str(caught.value)


@pytest.mark.parametrize("chunked", [False, True])
async def test_http_source_over_the_size_cap_is_refused(
    config_server: ConfigServer, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr("urn.source.MAX_CONFIG_BYTES", 1000)
    config_server.body = good() + " " * 2000
    if chunked:

        async def streamed(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(4):
                await response.write(b" " * 600)
            await response.write_eof()
            return response

        config_server.handler = streamed  # type: ignore[method-assign,assignment]
        await config_server.stop()
        await config_server.start()
    h = Harness(config_server.url)
    assert not await h.loader.poll_once(h.apply)
    assert (h.loader.last_error or "").endswith("larger than 1000 bytes")


async def test_identical_bytes_are_applied_whole_without_revalidating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urn.source

    parsed: list[bytes] = []
    real_parse = urn.source.parse_text

    def counting_parse(raw: bytes, origin: str, now: float | None) -> Any:
        parsed.append(raw)
        assert now == harness.clock.time()  # levers' expiries: the loader's clock
        return real_parse(raw, origin, now)

    monkeypatch.setattr(urn.source, "parse_text", counting_parse)
    path = tmp_path / "urn.json"
    path.write_text(good())
    harness = Harness(str(path))
    await harness.loader.load_first(harness.build)
    assert await harness.loader.poll_once(harness.apply)
    assert await harness.loader.poll_once(harness.apply)
    assert len(harness.applied) == 3  # applied whole every pass ...
    assert len(parsed) == 1  # ... validated once for the same bytes
    assert harness.applied[1].document is harness.applied[0].document

    path.write_text("{ truncated")
    assert not await harness.loader.poll_once(harness.apply)
    path.write_text(good())  # the old bytes again: still known good
    assert await harness.loader.poll_once(harness.apply)
    path.write_text(good(port=81))
    assert await harness.loader.poll_once(harness.apply)
    assert harness.applied[-1].document.checks[0].port == 81
    assert len(parsed) == 3
