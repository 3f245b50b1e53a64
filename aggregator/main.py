"""`urn aggregator --config SRC --id ID [--listen HOST:PORT] [--window K]`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aggregator.app import SERVICE, TUNING, make_app
from aggregator.settings import DEFAULT_LISTEN, AggregatorSettings
from aggregator.window import DEFAULT_DEPTH
from urn.logs import get_logger
from urn.role import add_role_arguments, serve_role
from urn.runtime import run_main, tune_process

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
    async def main(stop: asyncio.Event) -> int:
        settings = AggregatorSettings.from_args(args)
        tune_process(TUNING)
        app = make_app(settings)
        return await serve_role(app, app[SERVICE], stop, log=log, tuning=TUNING)

    return run_main(main, args.loop)
