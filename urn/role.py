"""The contract every long-running role (checker, aggregator, resolver) keeps at its edges.

Each role has the same shape, so the three read alike:
  ROLE/settings.py  a frozen Settings with `id`, `config`, `listen_host`, `listen_port`
                    and `Settings.from_args(args)`, which raises StartupError naming
                    the bad flag (`role_fields` reads the shared ones, `validated`
                    turns a failed check into the StartupError)
  ROLE/app.py       `make_app(settings, *, clock=, registry=, environ=, transport=)`,
                    which builds the service (under the app key `SERVICE`) with its
                    routes and lifecycle, and the role's process `TUNING`
  ROLE/main.py      its flags (`add_role_arguments` plus its own) and `run(args)`,
                    which hands its settings, make_app and TUNING to `run_role`

Owns: the shared flags, the run path (settings, then `tune_process`, then the app)
and serving a built app. Never: knows a role's own flags or builds a service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar

from urn.errors import StartupError
from urn.http import open_site, parse_listen, server_ssl_context, start_runner
from urn.runtime import run_main, settle_process, tune_process

if TYPE_CHECKING:
    import argparse
    import asyncio
    from collections.abc import AsyncIterator, Callable

    from aiohttp import web

    from urn.config import Document
    from urn.logs import EventLogger
    from urn.runtime import Tuning

__all__ = [
    "RoleFields",
    "RoleService",
    "RoleSettings",
    "add_role_arguments",
    "address_flag",
    "role_fields",
    "run_role",
    "serve_role",
    "start_with_app",
    "validated",
]

S = TypeVar("S")


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


class _StartsAndStops(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def start_with_app(app: web.Application, service: _StartsAndStops) -> None:
    """Start `service` when `app` starts and stop it when the app is cleaned up."""

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)


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


class RoleFields(TypedDict):
    """The settings fields every role reads from the shared flags."""

    id: str
    config: str
    listen_host: str
    listen_port: int


def role_fields(args: argparse.Namespace, default_port: int) -> RoleFields:
    """The shared flags as settings fields; StartupError naming a bad --listen."""
    host, port = address_flag("--listen", args.listen, default_port)
    return RoleFields(id=args.id, config=args.config, listen_host=host, listen_port=port)


def validated(build: Callable[[], S]) -> S:
    """`build()`, a settings check's ValueError raised as a StartupError with its message."""
    try:
        return build()
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def run_role(
    args: argparse.Namespace,
    settings_from_args: Callable[[argparse.Namespace], S],
    make_app: Callable[[S], web.Application],
    service: web.AppKey[Any],
    *,
    tuning: Tuning,
    log: EventLogger,
    fit_to_process: Callable[[S, tuple[int, int]], S] | None = None,
) -> int:
    """A role's whole process: its settings, `tune_process(tuning)`, then the app served.

    The settings come first, so a bad flag stops the process before it is tuned.
    `fit_to_process` gives a role that sizes itself by the fd limit (soft, hard) the
    tuning leaves its settings for it. The exit code is `run_main`'s.
    """

    async def main(stop: asyncio.Event) -> int:
        settings = settings_from_args(args)
        fd_limit = tune_process(tuning)
        if fit_to_process is not None:
            settings = fit_to_process(settings, fd_limit)
        app = make_app(settings)
        return await serve_role(app, app[service], stop, log=log, tuning=tuning)

    return run_main(main, args.loop)


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
