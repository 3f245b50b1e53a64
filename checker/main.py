"""`urn checker`: command-line flags -> CheckerSettings -> the service on a listener."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from checker.service import APP_SERVICE, make_app
from checker.settings import DEFAULT_LISTEN, CheckerSettings, parse_selector
from urn.clock import SystemClock
from urn.errors import StartupError
from urn.http import parse_listen, server_ssl_context, start_runner
from urn.logs import get_logger
from urn.role import add_role_arguments
from urn.runtime import run_main

if TYPE_CHECKING:
    import argparse
    import asyncio

__all__ = ["add_arguments", "run", "settings_from_args"]

log = get_logger("checker")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_role_arguments(parser, DEFAULT_LISTEN)
    parser.add_argument("--az", required=True, help="availability zone this checker runs in")
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="name=GLOB|label=KEY=VALUE",
        help="sidecar mode: probe only checks matching any selector (repeatable)",
    )
    parser.add_argument(
        "--probe-ca",
        metavar="FILE",
        help="CA bundle for HTTPS checks with verify_tls (default: the system store)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="cap on probes in flight (default: sized from the config and fd limit)",
    )


def settings_from_args(args: argparse.Namespace) -> CheckerSettings:
    """Validated settings; StartupError naming the bad flag otherwise."""
    try:
        host, port = parse_listen(args.listen, 7301)
        select = tuple(parse_selector(text) for text in args.select)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    if args.max_concurrency is not None and args.max_concurrency < 1:
        raise StartupError(f"--max-concurrency {args.max_concurrency}: must be at least 1")
    try:
        return CheckerSettings(
            id=args.id,
            az=args.az,
            config=args.config,
            listen_host=host,
            listen_port=port,
            select=select,
            probe_ca=args.probe_ca,
            max_concurrency=args.max_concurrency,
        )
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    async def main(stop: asyncio.Event) -> int:
        settings = settings_from_args(args)
        app = make_app(settings, SystemClock(), CollectorRegistry())
        runner = await start_runner(app)  # loads the first config (StartupError if none)
        # HTTPS when the document's tls block names a certificate, like every listener.
        ssl_context = server_ssl_context(app[APP_SERVICE].document.tls)
        site = web.TCPSite(
            runner,
            settings.listen_host,
            settings.listen_port,
            ssl_context=ssl_context,
            reuse_address=True,
        )
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else settings.listen_port
        log.info("listening", host=settings.listen_host, port=port, https=ssl_context is not None)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
        log.info("checker_stopped", id=settings.id)
        return 0

    return run_main(main, args.loop)
