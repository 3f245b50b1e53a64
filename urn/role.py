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

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, TypeVar

from aiohttp import web

from urn.errors import StartupError
from urn.http import client_ssl_context, open_site, parse_listen, start_runner
from urn.push import AiohttpTransport
from urn.runtime import cancel_and_wait, run_main, settle_process, tune_process
from urn.ticker import run_every
from urn.tlsfiles import CERT_POLL_INTERVAL, REFRESH_RESULTS, RotatingContext

if TYPE_CHECKING:
    import argparse
    import ssl
    from collections.abc import AsyncIterator, Awaitable, Callable

    from urn.clock import Clock
    from urn.config import Document, Tls
    from urn.logs import EventLogger
    from urn.metrics import CommonMetrics
    from urn.push import Transport
    from urn.runtime import Tuning
    from urn.source import ConfigLoader, Loaded

__all__ = [
    "LISTENER",
    "AiohttpListener",
    "Listener",
    "RoleFields",
    "RoleService",
    "RoleSettings",
    "Running",
    "Wiring",
    "add_role_arguments",
    "address_flag",
    "role_fields",
    "run_role",
    "serve_role",
    "start_role",
    "validated",
    "wire",
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
    """What every role's service offers its shell once built from the first good config."""

    @property
    def settings(self) -> RoleSettings: ...

    @property
    def document(self) -> Document: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def metrics(self) -> CommonMetrics: ...

    async def start(self) -> None:
        """Start the role's loops (its config loop among them)."""

    async def stop(self) -> None:
        """Stop every loop and release what `start` opened."""


class Listener(Protocol):
    """How a role's HTTP port is opened: aiohttp's own (`AiohttpListener`), or one a role
    puts under the app key `LISTENER` (the resolver's, which also speaks HTTP/2)."""

    @property
    def alpn(self) -> tuple[str, ...]:
        """What the listener offers in TLS ALPN, in preference order."""
        ...

    async def open(
        self, runner: web.AppRunner, host: str, port: int, context: ssl.SSLContext | None
    ) -> int:
        """Listen on host:port (0 picks one) for the set-up runner; the bound port.
        OSError when the address cannot be had."""
        ...

    async def close(self) -> None:
        """Stop listening and end the connections the runner does not own."""
        ...


class AiohttpListener:
    """aiohttp's own HTTP/1.1 listener: the runner's cleanup closes everything."""

    alpn = ("http/1.1",)

    async def open(
        self, runner: web.AppRunner, host: str, port: int, context: ssl.SSLContext | None
    ) -> int:
        return await open_site(runner, host, port, context)

    async def close(self) -> None:
        pass


LISTENER: web.AppKey[Listener] = web.AppKey("listener", Listener)

R = TypeVar("R", bound=RoleService)
M = TypeVar("M", bound="CommonMetrics")


@dataclass(frozen=True, slots=True)
class Wiring(Generic[M]):
    """What a role's shell hands the service it builds: the one clock, the metrics, the
    config loader (whose later passes the service applies) and the push transport."""

    clock: Clock
    metrics: M
    loader: ConfigLoader
    transport: Transport
    owns_transport: bool  # made for this process from the first config's tls block

    async def close(self) -> None:
        if self.owns_transport and isinstance(self.transport, AiohttpTransport):
            await self.transport.close()


def wire(
    clock: Clock, metrics: M, loader: ConfigLoader, transport: Transport | None, tls: Tls
) -> Wiring[M]:
    """The wiring for a service built under a config whose tls block is `tls`: the
    given transport, else an HTTPS-capable one trusting that block's CA."""
    if transport is not None:
        return Wiring(clock, metrics, loader, transport, owns_transport=False)
    return Wiring(clock, metrics, loader, AiohttpTransport(client_ssl_context(tls)), True)


class Running(Generic[R]):
    """A role app's service, which the app's startup builds from the first good config.

    Routes are registered when the app is made, before any config is in; they reach the
    service through this. An app serves no request before its startup has finished, so
    `service` is always there for a handler to read.
    """

    __slots__ = ("_service",)

    def __init__(self) -> None:
        self._service: R | None = None

    @property
    def service(self) -> R:
        if self._service is None:
            raise RuntimeError("the role's app has not started: no service yet")
        return self._service

    @property
    def started(self) -> bool:
        return self._service is not None

    def __call__(self) -> R:
        return self.service

    def _set(self, service: R | None) -> None:
        self._service = service


def start_role(
    app: web.Application,
    running: Running[R],
    loader: ConfigLoader,
    build: Callable[[Loaded], Awaitable[R] | R],
) -> None:
    """On `app`'s startup: build the service from the first good config (StartupError
    without one) and start it; on cleanup, stop it."""

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        service = await loader.load_first(build)
        running._set(service)
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
    service: web.AppKey[Running[Any]],
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
    running: Running[Any],
    stop: asyncio.Event,
    *,
    log: EventLogger,
    tuning: Tuning,
) -> int:
    """Serve `app` on the settings' listen address until `stop`; the exit code.

    Starting the app runs its lifecycle, which loads the first config (StartupError
    without one). The listener (the app's `LISTENER`, else aiohttp's) then speaks HTTPS
    when that config's tls block names a certificate, as every listener does, and
    follows the certificate files as they are rotated (`urn.tlsfiles`). A taken port is
    a StartupError naming it.
    """
    runner = await start_runner(app)
    listener = app.get(LISTENER) or AiohttpListener()
    watching: list[asyncio.Task[None]] = []
    try:
        settle_process(tuning)
        service = running.service
        settings = service.settings
        host, port = settings.listen_host, settings.listen_port
        tls = service.document.tls
        rotating = RotatingContext(tls, listener.alpn) if tls.serves_https else None
        try:
            context = None if rotating is None else rotating.context
            bound = await listener.open(runner, host, port, context)
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port}: {exc}") from None
        if rotating is not None:
            watching.append(asyncio.create_task(_follow_certificate(service, rotating)))
        log.info("listening", id=settings.id, host=host, port=bound, https=rotating is not None)
        await stop.wait()
    finally:
        await cancel_and_wait(watching)
        await listener.close()
        await runner.cleanup()
    log.info("stopped", id=running.service.settings.id)
    return 0


async def _follow_certificate(service: RoleService, rotating: RotatingContext) -> None:
    """Re-read the listener's certificate files every CERT_POLL_INTERVAL, counted."""
    reloads = service.metrics.certificate_reloads
    for result in REFRESH_RESULTS:
        reloads.labels("https", result)

    async def look() -> None:
        result = rotating.refresh(service.document.tls)
        if result != "unchanged":
            reloads.labels("https", result).inc()

    await run_every(service.clock, lambda: CERT_POLL_INTERVAL, look)
