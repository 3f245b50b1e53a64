"""`urn aggregator --config SRC --id ID [--listen HOST:PORT] [--window K]`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from aggregator.service import Aggregator, make_app
from aggregator.settings import DEFAULT_LISTEN, AggregatorSettings
from aggregator.window import DEFAULT_DEPTH
from urn.errors import StartupError
from urn.http import serve, server_ssl_context
from urn.logs import get_logger
from urn.role import add_role_arguments
from urn.runtime import run_main

if TYPE_CHECKING:
    import argparse
    import asyncio

__all__ = ["add_arguments", "run"]

log = get_logger("aggregator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_role_arguments(parser, DEFAULT_LISTEN)
    parser.add_argument(
        "--window",
        type=int,
        default=DEFAULT_DEPTH,
        metavar="K",
        help=f"tables kept per checker (default {DEFAULT_DEPTH})",
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = AggregatorSettings.from_args(args)
    except ValueError as exc:
        print(f"urn aggregator: {exc}", file=sys.stderr)
        return 2

    async def main(stop: asyncio.Event) -> int:
        service = Aggregator(settings)
        await service.start()  # StartupError: run_main prints it and exits 2
        ssl_context = server_ssl_context(service.document.tls)
        try:
            runner, port = await serve(make_app(service), settings.host, settings.port, ssl_context)
        except OSError as exc:
            raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
        log.info("aggregator_listening", id=settings.id, host=settings.host, port=port)
        try:
            await stop.wait()
        finally:
            log.info("aggregator_stopping", id=settings.id)
            await runner.cleanup()
        return 0

    return run_main(main, args.loop)
