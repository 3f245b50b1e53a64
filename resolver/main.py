"""`urn resolver --config SRC --id ID [--listen HOST:PORT] [--dns HOST:PORT|none]`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from aiohttp import web

from resolver.app import SERVICE, make_app
from resolver.settings import DEFAULT_DNS, DEFAULT_LISTEN, ResolverSettings
from urn.errors import StartupError
from urn.http import server_ssl_context, start_runner
from urn.logs import get_logger
from urn.role import add_role_arguments
from urn.runtime import raise_fd_limit, run_main

if TYPE_CHECKING:
    import argparse
    import asyncio

__all__ = ["add_arguments", "run"]

log = get_logger("resolver")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_role_arguments(parser, DEFAULT_LISTEN)
    parser.add_argument(
        "--dns",
        default=DEFAULT_DNS,
        metavar="HOST:PORT",
        help=f"classic DNS over UDP and TCP (default {DEFAULT_DNS}; 'none' disables)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = ResolverSettings.from_flags(
            id=args.id, config=args.config, listen=args.listen, dns=args.dns
        )
    except ValueError as exc:
        print(f"urn resolver: {exc}", file=sys.stderr)
        return 2
    return run_main(lambda stop: _main(settings, stop), args.loop)


async def _main(settings: ResolverSettings, stop: asyncio.Event) -> int:
    raise_fd_limit()
    app = make_app(settings)
    runner = await start_runner(app)  # loads the config (StartupError if none), opens DNS
    try:
        service = app[SERVICE]
        assert service.document is not None
        ssl_context = server_ssl_context(service.document.tls)
        site = web.TCPSite(
            runner,
            settings.http_host,
            settings.http_port,
            ssl_context=ssl_context,
            reuse_address=True,
        )
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen for HTTP on {settings.http_host}:{settings.http_port}: {exc}"
            ) from None
        log.info(
            "listening",
            http=f"{'https' if ssl_context else 'http'}://{settings.http_host}:{settings.http_port}",
            dns=None if service.dns is None else f"{settings.dns_host}:{service.dns.port}",
        )
        await stop.wait()
    finally:
        await runner.cleanup()
    log.info("stopped")
    return 0
