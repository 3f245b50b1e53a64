"""The simulated target farm: layout (pure), every mode over real loopback sockets, the
control API, and the `urn targets` CLI as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from sim.farm import TargetFarm
from sim.farm_control import FarmControlError, FarmProcess, serve_control
from sim.farm_layout import (
    PER_HOST,
    Kind,
    Mode,
    TargetSpec,
    az_index,
    checks_for,
    layout,
    parse_mode_change,
)
from sim.testing import document_dict, wait_until
from urn.config import CheckType, parse_document
from urn.errors import StartupError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

DEADLINE = 0.4  # a client-side deadline: "nothing arrived before it"


# --- layout (pure) -------------------------------------------------------------------


def test_layout_is_deterministic_with_one_address_per_target_per_az_subnet() -> None:
    specs = layout(3, 600, 30000, "http")
    assert specs == layout(3, 600, 30000, "http")
    assert len(specs) == 1800
    assert specs[0] == TargetSpec("a-0", "a", Kind.HTTP, "127.0.1.1", 30000, "/t/a-0")
    b = [s for s in specs if s.az == "b"]
    assert b[PER_HOST].host == "127.0.2.1"
    assert b[PER_HOST].port == 30001
    assert b[-1].port == 30000 + 599 // PER_HOST
    assert len({(s.host, s.port) for s in specs}) == len(specs)
    assert all(s.host.startswith(f"127.0.{az_index(s.az)}.") for s in specs)


def test_layout_kinds_and_ephemeral_ports() -> None:
    mixed = layout(["a", "c"], 8, 0, "mixed")
    assert [s.kind for s in mixed[:4]] == [Kind.HTTP, Kind.HTTP, Kind.HTTP, Kind.TCP]
    assert mixed[3].path == ""
    assert mixed[8].host == "127.0.3.1"
    assert {s.port for s in mixed} == {0}
    assert {s.kind for s in layout(1, 4, 0, "tcp")} == {Kind.TCP}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, 1000), "azs"),
        ((27, 1, 1000), "azs"),
        ((["a", "a"], 1, 1000), "repeats"),
        ((["A"], 1, 1000), "az"),
        ((1, 0, 1000), "per_az"),
        ((1, 251, 65535), "base_port"),
        ((1, 1, -1), "base_port"),
    ],
)
def test_layout_rejects_bad_input(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layout(*args)
    with pytest.raises(ValueError, match="kinds"):
        layout(1, 1, 1000, "udp")


def test_checks_for_builds_a_valid_document() -> None:
    specs = layout(2, 4, 31000, "mixed")
    checks = checks_for(specs, first_slot=10, extra={"timeout": 0.5})
    document = parse_document(document_dict(checks=checks, capacity=64))
    by_name = {c.name: c for c in document.checks}
    http, tcp = by_name["b-0"], by_name["b-3"]
    assert (http.slot, http.type, http.host, http.port) == (14, CheckType.HTTP, "127.0.2.1", 31000)
    assert (http.path, http.search, http.az, http.timeout) == ("/t/b-0", "ok", "b", 0.5)
    assert (tcp.type, tcp.host, tcp.az) == (CheckType.TCP, "127.0.2.4", "b")
    with pytest.raises(ValueError, match="no port"):
        checks_for(layout(1, 1, 0))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"az": "a"}, "mode"),
        ({"az": "a", "mode": "down"}, "mode"),
        ({"az": "a", "mode": 3}, "mode"),
        ({"mode": "refuse"}, "exactly one"),
        ({"az": "a", "targets": ["a-0"], "mode": "refuse"}, "exactly one"),
        ({"az": "z", "mode": "refuse"}, "az"),
        ({"targets": [], "mode": "refuse"}, "non-empty"),
        ({"targets": "a-0", "mode": "refuse"}, "non-empty"),
        ({"targets": ["a-0", "q-9"], "mode": "refuse"}, "unknown id"),
        ({"targets": ["a-0"], "mode": "refuse", "delay": 1}, "only to mode slow"),
        ({"targets": ["a-0"], "mode": "slow", "delay": -1}, "delay"),
        ({"targets": ["a-0"], "mode": "slow", "delay": True}, "delay"),
        ({"targets": ["a-0"], "mode": "slow", "colour": 1}, "unknown field"),
    ],
)
def test_parse_mode_change_rejects(body: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mode_change(body, {"a-0": "a", "a-1": "a", "b-0": "b"}, ("a", "b"))


def test_parse_mode_change_selects() -> None:
    known = {"a-0": "a", "a-1": "a", "b-0": "b"}
    by_az = parse_mode_change({"az": "a", "mode": "blackhole"}, known, ("a", "b"))
    assert (by_az.mode, by_az.targets, by_az.delay) == (Mode.BLACKHOLE, ("a-0", "a-1"), None)
    by_id = parse_mode_change(
        {"targets": ["b-0", "b-0"], "mode": "slow", "delay": 2}, known, ("a", "b")
    )
    assert (by_id.targets, by_id.delay) == (("b-0",), 2.0)


# --- the farm over loopback ----------------------------------------------------------


@pytest.fixture
async def farm() -> AsyncIterator[TargetFarm]:
    # a-0..a-2 and b-0..b-2 are HTTP, a-3 and b-3 TCP
    farm = TargetFarm(layout(2, 4, 0, "mixed"), slow_delay=0.3)
    await farm.start()
    try:
        yield farm
    finally:
        await farm.close()


def _spec(farm: TargetFarm, target_id: str) -> TargetSpec:
    return farm.targets[target_id].spec


async def _connect(spec: TargetSpec) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(spec.host, spec.port), DEADLINE)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _request(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n".encode()


async def _get(spec: TargetSpec, path: str | None = None, deadline: float = 5.0) -> bytes:
    """One probe: connect, send, read to EOF (raises on refuse, reset, or deadline)."""
    reader, writer = await _connect(spec)
    try:
        writer.write(_request(spec.path if path is None else path))
        return await asyncio.wait_for(reader.read(), deadline)
    finally:
        await _close(writer)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _body(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


async def _exercise_http_modes(farm: TargetFarm) -> None:
    """Every HTTP mode as a client sees it; shared by the asyncio and uvloop runs."""
    spec = _spec(farm, "a-0")
    response = await _get(spec)
    assert (_status(response), _body(response)) == (200, b"ok\n")

    await farm.set_mode("bad_status", targets=["a-0"])
    assert _status(await _get(spec)) == 503

    await farm.set_mode("body_mismatch", targets=["a-0"])
    response = await _get(spec)
    assert _status(response) == 200
    assert b"ok" not in _body(response)

    await farm.set_mode("close_mid_response", targets=["a-0"])
    response = await _get(spec)
    assert response.startswith(b"HTTP/1.1 200")
    assert b"\r\n\r\n" not in response

    await farm.set_mode("reset", targets=["a-0"])
    with pytest.raises(ConnectionResetError):
        await _get(spec)

    await farm.set_mode("refuse", targets=["a-0"])
    with pytest.raises(ConnectionRefusedError):
        await _get(spec)

    await farm.set_mode("blackhole", targets=["a-0"])
    reader, writer = await _connect(spec)  # accepted ...
    writer.write(_request(spec.path))
    with pytest.raises(TimeoutError):  # ... never answered
        await asyncio.wait_for(reader.read(1), DEADLINE)
    assert farm.open_connections == 1  # held, not closed
    await _close(writer)
    await wait_until(lambda: farm.open_connections == 0, message="held connection released")

    await farm.set_mode("drop", targets=["a-0"])
    with pytest.raises(TimeoutError):  # the handshake itself never completes
        await _connect(spec)

    await farm.set_mode("healthy", targets=["a-0"])  # the listener comes back on its port
    assert _status(await _get(spec)) == 200


async def test_every_http_mode_behaves_as_documented(farm: TargetFarm) -> None:
    await _exercise_http_modes(farm)
    served = farm.served["a"]
    for mode in ("healthy", "bad_status", "body_mismatch", "close_mid_response", "reset"):
        assert served[mode] >= 1, mode
    assert served["healthy"] == 2
    assert served["blackhole"] == 1
    assert served["refuse"] == served["drop"] == 0  # the kernel turned those away
    assert sum(farm.served["b"].values()) == 0


def test_every_http_mode_behaves_as_documented_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        farm = TargetFarm(layout(1, 1, 0), slow_delay=0.3)
        await farm.start()
        try:
            await _exercise_http_modes(farm)
        finally:
            await farm.close()

    uvloop.run(main())


async def test_bad_requests_get_clear_statuses(farm: TargetFarm) -> None:
    spec = _spec(farm, "a-1")
    assert _status(await _get(spec, path="/t/a-2")) == 404
    assert _status(await _get(spec, path=spec.path + "?x=1")) == 200
    reader, writer = await _connect(spec)
    writer.write(b"NONSENSE\r\n\r\n")
    assert _status(await asyncio.wait_for(reader.read(), 5)) == 400
    await _close(writer)
    reader, writer = await _connect(spec)
    writer.write(_request(spec.path, extra="X-Pad: " + "x" * 9000 + "\r\n"))
    assert _status(await asyncio.wait_for(reader.read(), 5)) == 431
    await _close(writer)
    # a head that arrives in pieces is still one request
    reader, writer = await _connect(spec)
    request = _request(spec.path)
    for i in range(0, len(request), 7):
        writer.write(request[i : i + 7])
        await writer.drain()
    assert _status(await asyncio.wait_for(reader.read(), 5)) == 200
    await _close(writer)


async def test_slow_answers_after_others_and_a_blackhole_meanwhile_never_answers(
    farm: TargetFarm,
) -> None:
    await farm.set_mode("slow", targets=["a-0"], delay=1.0)
    slow = asyncio.create_task(_get(_spec(farm, "a-0")))
    await wait_until(lambda: farm.open_connections == 1, message="slow probe accepted")
    assert _status(await _get(_spec(farm, "b-0"))) == 200
    assert not slow.done()  # the healthy target answered while the slow one waits
    response = await slow
    assert (_status(response), _body(response)) == (200, b"ok\n")

    await farm.set_mode("slow", targets=["a-1"], delay=0.1)
    spec = _spec(farm, "a-1")
    reader, writer = await _connect(spec)
    writer.write(_request(spec.path))
    await writer.drain()
    await wait_until(lambda: farm.targets["a-1"].counts[Mode.SLOW] == 1, message="slow accept")
    await farm.set_mode("blackhole", targets=["a-1"])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), DEADLINE + 0.1)
    await _close(writer)


async def test_tcp_targets(farm: TargetFarm) -> None:
    spec = _spec(farm, "a-3")
    reader, writer = await _connect(spec)  # healthy: accepted, then closed by the target
    assert await asyncio.wait_for(reader.read(), 5) == b""
    await _close(writer)
    for mode in ("blackhole", "slow", "drop"):
        await farm.set_mode(mode, targets=["a-3"])
        with pytest.raises(TimeoutError):  # a TCP check sees no accept at all
            await _connect(spec)
    await farm.set_mode("refuse", targets=["a-3"])
    with pytest.raises(ConnectionRefusedError):
        await _connect(spec)
    await farm.set_mode("reset", targets=["a-3"])
    reader, writer = await _connect(spec)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 5)
    await _close(writer)
    assert farm.served["a"]["healthy"] == 1
    assert farm.served["a"]["reset"] == 1


async def test_an_az_switched_dark_holds_connections_already_open(farm: TargetFarm) -> None:
    spec = _spec(farm, "b-1")
    reader, writer = await _connect(spec)  # opened while healthy
    changed = await farm.set_mode("blackhole", az="b")
    assert changed == ["b-0", "b-1", "b-2", "b-3"]
    writer.write(_request(spec.path))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), DEADLINE)
    await _close(writer)
    assert _status(await _get(_spec(farm, "a-0"))) == 200
    assert await farm.set_mode("blackhole", az="b") == []  # nothing left to change


async def test_hundreds_of_targets_switch_by_az() -> None:
    farm = TargetFarm(layout(3, 300, 0, "mixed"))
    await farm.start()
    try:
        assert len({(s.host, s.port) for s in farm.specs}) == 900
        assert len(await farm.set_mode("refuse", az="b")) == 300
        sample = [s for s in farm.specs if s.id.endswith(("-0", "-3", "-299"))]
        for spec in sample:
            if spec.az == "b":
                with pytest.raises(ConnectionRefusedError):
                    await _connect(spec)
            else:
                _, writer = await _connect(spec)
                await _close(writer)
        assert farm.stats()["modes"]["b"]["refuse"] == 300
    finally:
        await farm.close()


# --- control API -------------------------------------------------------------------


async def test_control_api_switches_an_az_and_a_target(farm: TargetFarm) -> None:
    runner, port = await serve_control(farm, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{base}/v1/mode", json={"az": "b", "mode": "refuse"}
            ) as response:
                assert response.status == 200
                answer = await response.json()
            assert answer["changed"] == ["b-0", "b-1", "b-2", "b-3"]
            assert answer["applied"][0] <= answer["applied"][1]
            for i in range(4):
                with pytest.raises(ConnectionRefusedError):
                    await _connect(_spec(farm, f"b-{i}"))
            async with session.post(
                f"{base}/v1/mode", json={"targets": ["b-2"], "mode": "healthy"}
            ) as response:
                assert (await response.json())["changed"] == ["b-2"]
            assert _status(await _get(_spec(farm, "b-2"))) == 200
            async with session.post(
                f"{base}/v1/mode", json={"targets": ["a-0"], "mode": "slow", "delay": 2.5}
            ) as response:
                assert (await response.json())["delay"] == 2.5
            async with session.get(f"{base}/v1/targets") as response:
                state = await response.json()
            by_id = {t["id"]: t for t in state["targets"]}
            assert by_id["b-0"]["mode"] == "refuse"
            assert by_id["b-0"]["listener"] == "closed"
            assert by_id["b-2"]["served"] == 1
            assert (by_id["a-0"]["mode"], by_id["a-0"]["delay"]) == ("slow", 2.5)
            assert by_id["a-0"]["port"] == _spec(farm, "a-0").port
            async with session.get(f"{base}/v1/stats") as response:
                stats = await response.json()
            assert stats["served"]["b"]["healthy"] == 1
            assert stats["modes"]["b"] == {**dict.fromkeys(Mode, 0), "refuse": 3, "healthy": 1}
            assert stats["cpu_seconds"] > 0
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"az": "b", "mode": "sideways"}',
        b'{"az": "q", "mode": "refuse"}',
        b'{"targets": ["b-0", "nope"], "mode": "refuse"}',
        b'{"az": "b", "targets": ["b-0"], "mode": "refuse"}',
        b'{"az": "b", "mode": "refuse", "delay": 3}',
        b'["b"]',
    ],
)
async def test_control_api_rejects_bad_input_and_changes_nothing(
    farm: TargetFarm, body: bytes
) -> None:
    runner, port = await serve_control(farm, "127.0.0.1", 0)
    before = farm.state()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/v1/mode", data=body) as response,
        ):
            assert response.status == 400
            assert (await response.json())["error"]
    finally:
        await runner.cleanup()
    assert farm.state() == before
    assert _status(await _get(_spec(farm, "b-0"))) == 200


async def test_start_fails_clearly_when_a_port_is_taken() -> None:
    first = TargetFarm(layout(1, 1, 0))
    await first.start()
    try:
        taken = first.specs[0].port
        second = TargetFarm(
            [
                TargetSpec("a-0", "a", Kind.HTTP, "127.0.1.1", 0, "/t/a-0"),
                TargetSpec("a-1", "a", Kind.HTTP, "127.0.1.1", taken, "/t/a-1"),
            ]
        )
        with pytest.raises(StartupError, match=f"a-1 cannot listen on 127.0.1.1:{taken}"):
            await second.start()
        assert second.targets["a-0"].listener == "closed"
    finally:
        await first.close()


# --- the CLI ---------------------------------------------------------------------------


async def _python_m(module: str, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """`python -m MODULE ARGS` run to its end: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _urn(*args: str) -> tuple[int, str, str]:
    return await _python_m("urn", "targets", *args)


async def test_cli_serve_set_stats_and_sigterm() -> None:
    farm = await FarmProcess.start(2, 2, base_port=0, control="127.0.0.1:0")
    try:
        assert farm.control.startswith("http://127.0.0.1:")
        code, out, _ = await _urn("set", "--control", farm.control, "--az", "b", "--mode", "refuse")
        assert code == 0
        assert json.loads(out)["changed"] == ["b-0", "b-1"]
        code, _, err = await _urn(
            "set", "--control", farm.control, "--target", "x-1", "--mode", "drop"
        )
        assert code == 1
        assert "unknown id" in err
        code, out, _ = await _urn("stats", "--control", farm.control)
        assert code == 0
        assert json.loads(out)["modes"]["b"]["refuse"] == 2
        specs = await farm.client.specs()
        assert [s.id for s in specs] == ["a-0", "a-1", "b-0", "b-1"]
        assert _status(await _get(specs[0])) == 200
        assert await farm.client.set_mode("healthy", targets=["b-1"]) == ["b-1"]
        assert _status(await _get(specs[3])) == 200
        with pytest.raises(FarmControlError, match="400: az: 'q'"):
            await farm.client.set_mode("refuse", az="q")
        stats = await farm.client.stats()
        assert stats["served"]["a"]["healthy"] == 1
        assert stats["modes"]["b"]["refuse"] == 1
        assert await farm.stop() == 0  # SIGTERM: a clean exit
    finally:
        await farm.stop()


async def test_shards_split_a_layout_and_each_switches_its_own_part() -> None:
    shards = [
        await FarmProcess.start(2, 3, base_port=0, control="127.0.0.1:0", shard=(i, 2))
        for i in range(2)
    ]
    try:
        ids = [[s.id for s in await farm.client.specs()] for farm in shards]
        assert ids == [["a-0", "a-2", "b-1"], ["a-1", "b-0", "b-2"]]
        changed = [await farm.client.set_mode("refuse", az="b") for farm in shards]
        assert changed == [["b-1"], ["b-0", "b-2"]]
        for farm in shards:
            for spec in await farm.client.specs():
                if spec.az == "a":
                    assert _status(await _get(spec)) == 200
                else:
                    with pytest.raises(ConnectionRefusedError):
                        await _connect(spec)
    finally:
        for farm in shards:
            await farm.stop()


@pytest.mark.parametrize(
    ("shard", "message"),
    [("2/2", "I must be in 0..N-1"), ("0/0", "I must be in 0..N-1"), ("1", "is not I/N")],
)
async def test_cli_serve_rejects_a_bad_shard(shard: str, message: str) -> None:
    code, _, err = await _urn("serve", "--shard", shard, "--control", "127.0.0.1:0")
    assert code == 2
    assert "--shard" in err
    assert message in err


async def test_cli_serve_rejects_a_shard_with_no_target() -> None:
    code, _, err = await _urn(
        "serve", "--azs", "1", "--per-az", "2", "--shard", "2/3", "--control", "127.0.0.1:0"
    )
    assert code == 2
    assert "no target of the layout falls in it" in err


async def test_farm_process_reports_a_failed_start() -> None:
    with pytest.raises(RuntimeError, match="exit 2"):
        await FarmProcess.start(40, 1)


async def test_cli_checks_and_bad_arguments() -> None:
    code, out, _ = await _urn("checks", "--azs", "2", "--per-az", "3", "--base-port", "25000")
    assert code == 0
    assert [c["name"] for c in json.loads(out)] == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"]
    code, _, err = await _urn("serve", "--azs", "40", "--control", "127.0.0.1:0")
    assert code == 2
    assert "azs" in err
    code, _, err = await _urn(
        "set", "--control", "http://127.0.0.1:1", "--az", "a", "--mode", "drop"
    )
    assert code == 1
    assert "cannot reach" in err


async def test_farm_cost_bench_runs_and_ends_with_a_json_line() -> None:
    code, out, err = await _python_m(
        "bench.farm_cost", "--seconds", "0.2", "--per-az", "2", "--concurrency", "2", timeout=120
    )
    assert code == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    assert last["bench"] == "farm_cost"
    assert last["figures"]["farm_probes"] > 0
    assert last["figures"]["farm_failed"] == last["figures"]["aiohttp_failed"] == 0
