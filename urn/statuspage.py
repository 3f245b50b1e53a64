"""The status page's HTTP side: `/ui`, `/v1/status` and `/v1/status/checks` on every role.

Owns: serving bytes a service built beforehand (`StatusCache`): the snapshot, rebuilt
once per push interval by the role's own loop (urn.status encodes it), and the config
side, rebuilt once per config pass. A viewer's request copies nothing and computes
nothing, so ten viewers cost ten socket writes of the same bytes, whatever the health.
Never: builds a snapshot on a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import web

from urn.status import Timeline

if TYPE_CHECKING:
    from collections.abc import Callable

    from urn.logs import EventLogger

__all__ = [
    "STATUS_CHECKS_PATH",
    "STATUS_PATH",
    "UI_PATH",
    "StatusCache",
    "add_status_routes",
    "refresh_quietly",
    "reshaped",
]

STATUS_PATH = "/v1/status"
STATUS_CHECKS_PATH = "/v1/status/checks"
UI_PATH = "/ui"
_JSON = "application/json"
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(slots=True)
class StatusCache:
    """The encoded snapshot and config side a role serves; the service replaces them."""

    snapshot: bytes = b'{"v":1,"starting":true}'
    checks: bytes = b'{"v":1,"starting":true}'


@cache
def page() -> bytes:
    """The page's bytes, read once from the package."""
    return resources.files("urn.ui").joinpath("index.html").read_bytes()


def add_status_routes(app: web.Application, status: Callable[[], StatusCache]) -> None:
    """`GET /ui`, `/v1/status` and `/v1/status/checks`, from the cache `status()` holds."""

    async def snapshot(_: web.Request) -> web.Response:
        return web.Response(body=status().snapshot, content_type=_JSON, headers=_NO_STORE)

    async def checks(_: web.Request) -> web.Response:
        return web.Response(body=status().checks, content_type=_JSON, headers=_NO_STORE)

    async def ui(_: web.Request) -> web.Response:
        return web.Response(body=page(), content_type="text/html", charset="utf-8")

    app.router.add_get(STATUS_PATH, snapshot)
    app.router.add_get(STATUS_CHECKS_PATH, checks)
    app.router.add_get(UI_PATH, ui)


def reshaped(timeline: Timeline | None, columns: list[str], step: float) -> Timeline:
    """A config pass's timeline: a new one, or the old one keeping what still fits."""
    return Timeline(columns, step) if timeline is None else timeline.resized(columns, step)


def refresh_quietly(build: Callable[[], None], log: EventLogger) -> None:
    """`build()` a role's snapshot, never raising: one that cannot be built is logged
    and the last one stays, so the status page can never stop the role's own loop."""
    try:
        build()
    except Exception as exc:
        log.error("status_snapshot_failed", error=f"{type(exc).__name__}: {exc}")
