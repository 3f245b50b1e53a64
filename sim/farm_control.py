"""The farm's control listener (aiohttp; not a hot path).

GET  /v1/targets  every target's spec, mode, listener state and count, plus /v1/stats
GET  /v1/stats    served per AZ and mode, modes per AZ, open connections, CPU seconds
POST /v1/mode     {"az": "b", "mode": "refuse"} or {"targets": ["b-17"], "mode": "slow",
                  "delay": 3}: answers {"mode", "delay", "changed": [ids], "unchanged": n,
                  "applied": [wall-clock start, end of the switch]}; bad input gets
                  400 {"error": ...} and changes nothing
GET  /healthz     ok
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from sim.farm import TargetFarm
from sim.farm_layout import Kind, Mode, TargetSpec, mode_change_body, parse_mode_change
from urn.http import serve

__all__ = [
    "FARM_KEY",
    "FarmClient",
    "FarmControlError",
    "FarmProcess",
    "make_control_app",
    "serve_control",
]

FARM_KEY = web.AppKey("farm", TargetFarm)
MAX_BODY = 1 << 20

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiohttp.web_runner import AppRunner


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _targets(request: web.Request) -> web.Response:
    farm = request.app[FARM_KEY]
    return web.json_response({"targets": farm.state(), "stats": farm.stats()})


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[FARM_KEY].stats())


async def _mode(request: web.Request) -> web.Response:
    farm = request.app[FARM_KEY]
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body is larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"body is not JSON: {exc}")
    try:
        change = parse_mode_change(body, farm.az_of, farm.azs)
    except ValueError as exc:
        return _error(400, str(exc))
    try:
        changed = await farm.apply(change)
    except OSError as exc:
        return _error(500, str(exc))
    return web.json_response(
        {
            "mode": change.mode.value,
            "delay": change.delay,
            "changed": changed,
            "unchanged": len(change.targets) - len(changed),
            "applied": farm.last_change,
        }
    )


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_control_app(farm: TargetFarm) -> web.Application:
    """The control API over `farm`."""
    app = web.Application(client_max_size=MAX_BODY)
    app[FARM_KEY] = farm
    app.router.add_get("/v1/targets", _targets)
    app.router.add_get("/v1/stats", _stats)
    app.router.add_post("/v1/mode", _mode)
    app.router.add_get("/healthz", _healthz)
    return app


async def serve_control(farm: TargetFarm, host: str, port: int) -> tuple[AppRunner, int]:
    """Start the control API on host:port (0: a free port); return the runner and port."""
    return await serve(make_control_app(farm), host, port)


class FarmControlError(Exception):
    """The control API refused a request (400) or failed; the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class FarmClient:
    """A running farm's control API: `await client.set_mode("refuse", az="b")`."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = (url if "://" in url else f"http://{url}").rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FarmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.request(method, self.url + path, json=body) as response:
            answer = await response.json(content_type=None)
            if response.status != 200:
                raise FarmControlError(response.status, str(answer.get("error", answer)))
            return answer

    async def set_mode(
        self,
        mode: Mode | str,
        *,
        az: str | None = None,
        targets: Sequence[str] | None = None,
        delay: float | None = None,
    ) -> list[str]:
        """Switch an AZ or some targets; return the ids that changed."""
        body = mode_change_body(mode, az, targets, delay)
        answer = await self._call("POST", "/v1/mode", body)
        return list(answer["changed"])

    async def stats(self) -> dict[str, Any]:
        """Served per AZ and mode, modes per AZ, open connections, CPU seconds, uptime."""
        answer: dict[str, Any] = await self._call("GET", "/v1/stats")
        return answer

    async def specs(self) -> tuple[TargetSpec, ...]:
        """Every target as bound (ports included), in layout order."""
        answer = await self._call("GET", "/v1/targets")
        return tuple(
            TargetSpec(t["id"], t["az"], Kind(t["kind"]), t["host"], t["port"], t["path"])
            for t in answer["targets"]
        )


class FarmProcess:
    """`urn targets serve` as a child process; `async with await FarmProcess.start(...)`."""

    def __init__(self, proc: asyncio.subprocess.Process, control: str) -> None:
        self.proc = proc
        self.control = control
        self.client = FarmClient(control)

    @classmethod
    async def start(
        cls,
        azs: int = 3,
        per_az: int = 100,
        *,
        kinds: str = "http",
        base_port: int = 0,
        control: str = "127.0.0.1:0",
        slow_delay: float | None = None,
        shard: tuple[int, int] = (0, 1),
        ready_timeout: float = 60.0,
        stderr: int | None = asyncio.subprocess.DEVNULL,
    ) -> FarmProcess:
        """Start a farm and wait for its ready line; raise RuntimeError if it exits first."""
        argv = [
            sys.executable, "-m", "urn", "targets", "serve", "--azs", str(azs),
            "--per-az", str(per_az), "--kinds", kinds, "--base-port", str(base_port),
            "--control", control, "--shard", f"{shard[0]}/{shard[1]}",
        ]  # fmt: skip
        if slow_delay is not None:
            argv += ["--slow-delay", str(slow_delay)]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
        assert proc.stdout is not None
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), ready_timeout)).decode()
            if not line.startswith("ready control="):
                raise RuntimeError(f"urn targets serve did not start (exit {await proc.wait()})")
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        return cls(proc, line.split("control=", 1)[1].split()[0])

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait (SIGKILL after `timeout`); return the exit status."""
        await self.client.close()
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def __aenter__(self) -> FarmProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
