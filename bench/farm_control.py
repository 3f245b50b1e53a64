"""The farm's control listener (aiohttp; not a hot path).

GET  /v1/targets  every target's spec, mode, listener state and count, plus /v1/stats
GET  /v1/stats    served per AZ and mode, modes per AZ, open connections, CPU seconds
POST /v1/mode     {"az": "b", "mode": "refuse"} or {"targets": ["b-17"], "mode": "slow",
                  "delay": 3}: answers {"mode", "changed": [ids], "unchanged": n};
                  bad input gets 400 {"error": ...} and changes nothing
GET  /healthz     ok
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from bench.farm import TargetFarm
from bench.farm_layout import parse_mode_change
from urn.http import serve

__all__ = ["FARM_KEY", "make_control_app", "serve_control"]

FARM_KEY = web.AppKey("farm", TargetFarm)
MAX_BODY = 1 << 20

if TYPE_CHECKING:
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
