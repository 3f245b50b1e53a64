"""The one console script: `urn checker|aggregator|resolver|demo|targets|bench|validate|shift`.

Each subcommand's module owns its arguments (`add_arguments(parser)`) and its entry
point (`run(args) -> int`); modules are imported only when their command runs. This is
the composition root: the one product module that reaches `sim/` (demo, targets) and
`bench/`, and only from inside the command that needs them (tests/unit/test_imports.py).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Protocol

from urn import __version__
from urn.logs import setup_logging

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "Command", "main"]


class Command(Protocol):
    """What a subcommand module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> Command:
    """The module of command `name`, imported now (ordinary imports, checked by mypy)."""
    if name == "checker":
        from checker import main as checker

        return checker
    if name == "aggregator":
        from aggregator import main as aggregator

        return aggregator
    if name == "resolver":
        from resolver import main as resolver

        return resolver
    if name == "demo":
        from sim import demo

        return demo
    if name == "targets":
        from sim import targets

        return targets
    if name == "bench":
        from bench import cli as bench

        return bench
    if name == "shift":
        from urn import shift

        return shift
    from urn import validate

    return validate


COMMANDS: dict[str, str] = {
    "checker": "probe assigned checks every interval, push whole tables",
    "aggregator": "judge per checker, then by quorum; push the health table",
    "resolver": "answer DNS-style queries over HTTP JSON, DoH and DNS",
    "demo": "a whole local fleet in three AZs that loses one AZ and recovers",
    "targets": "simulated HTTP/TCP target farms, switchable per target or AZ",
    "bench": "benchmarks: az-failure and the micro benches",
    "validate": "validate a config document and print what is wrong",
    "shift": "zonal shifts in a file config: start, end, list",
}


def _usage() -> str:
    lines = [f"urn {__version__}: constant-work health checks and DNS failover", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, text in COMMANDS.items()]
    lines += ["", "run `urn COMMAND --help` for a command's options"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        print(__version__)
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"urn: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = _load(name)
    parser = argparse.ArgumentParser(prog=f"urn {name}", description=COMMANDS[name])
    module.add_arguments(parser)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--loop", default="auto", choices=["auto", "uvloop", "asyncio"], help="event loop"
    )
    parsed = parser.parse_args(args[1:])
    setup_logging(parsed.log_level)
    code: int = module.run(parsed)
    return code
