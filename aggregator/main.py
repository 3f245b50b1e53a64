"""`urn aggregator --config SRC --id ID [--listen HOST:PORT] [--window K]`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aggregator.app import SERVICE, TUNING, make_app
from aggregator.settings import DEFAULT_LISTEN, AggregatorSettings
from aggregator.window import DEFAULT_DEPTH
from urn.logs import get_logger
from urn.role import add_role_arguments, run_role

if TYPE_CHECKING:
    import argparse

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
    return run_role(args, AggregatorSettings.from_args, make_app, SERVICE, tuning=TUNING, log=log)
