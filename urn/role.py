"""The contract every long-running role (checker, aggregator, resolver) keeps at its edges.

Each role has the same shape, so the three read alike:
  ROLE/settings.py  a frozen Settings with `id`, `config`, `listen_host`, `listen_port`
                    and `Settings.from_args(args)`, which raises StartupError naming
                    the bad flag
  ROLE/app.py       `make_app(settings, *, clock=, registry=, environ=, transport=)`,
                    which builds the service (under the app key `SERVICE`) with its
                    routes and lifecycle, and the role's process `TUNING`
  ROLE/main.py      its flags (`add_role_arguments` plus its own) and `run(args)`:
                    settings, then `tune_process(TUNING)`, then `serve_role`

Owns: the shared flags and serving a built app. Never: knows a role's own flags or
builds a service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from urn.errors import StartupError
from urn.http import open_site, parse_listen, server_ssl_context, start_runner
from urn.runtime import settle_process

if TYPE_CHECKING:
    import argparse
    import asyncio

    from aiohttp import web

    from urn.config import Document
    from urn.logs import EventLogger
    from urn.runtime import Tuning

__all__ = ["RoleService", "RoleSettings", "add_role_arguments", "address_flag", "serve_role"]


class RoleSettings(Protocol):
    """What every role's settings hold, under the same names."""

    @property
    def id(self) -> str: ...

    @property
    def config(self) -> str: ...  # file path or http(s) URL of the document

    @property
    def listen_host(self) -> str: ...

    @property
    def listen_port(self) -> int: ...  # 0 picks a free port


class RoleService(Protocol):
    """What `serve_role` reads of a role's service once its app has started."""

    @property
    def settings(self) -> RoleSettings: ...

    @property
    def document(self) -> Document | None: ...


def add_role_arguments(parser: argparse.ArgumentParser, default_listen: str) -> None:
    """The flags every long-running role shares."""
    parser.add_argument("--config", required=True, metavar="SRC", help="file path or http(s) URL")
    parser.add_argument("--id", required=True, help="this process's id (at most 32 bytes)")
    parser.add_argument(
        "--listen", default=default_listen, metavar="HOST:PORT", help="HTTP listen address"
    )


def address_flag(flag: str, value: str, default_port: int) -> tuple[str, int]:
    """A `HOST:PORT` flag's value as a pair; StartupError naming `flag` otherwise."""
    try:
        return parse_listen(value, default_port)
    except ValueError as exc:
        raise StartupError(f"{flag}: {exc}") from None


async def serve_role(
    app: web.Application,
    service: RoleService,
    stop: asyncio.Event,
    *,
    log: EventLogger,
    tuning: Tuning,
) -> int:
    """Serve `app` on the settings' listen address until `stop`; the exit code.

    Starting the app runs its lifecycle, which loads the first config (StartupError
    without one). The listener then speaks HTTPS when that config's tls block names a
    certificate, as every listener does. A taken port is a StartupError naming it.
    """
    settings = service.settings
    host, port = settings.listen_host, settings.listen_port
    runner = await start_runner(app)
    try:
        settle_process(tuning)
        document = service.document
        if document is None:  # pragma: no cover - the lifecycle loads it or raises
            raise StartupError("started without a config")
        ssl_context = server_ssl_context(document.tls)
        try:
            bound = await open_site(runner, host, port, ssl_context)
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port}: {exc}") from None
        log.info("listening", id=settings.id, host=host, port=bound, https=ssl_context is not None)
        await stop.wait()
    finally:
        await runner.cleanup()
    log.info("stopped", id=settings.id)
    return 0
