"""The one console script: `urn checker|aggregator|resolver|demo|targets|bench|validate`.

Each subcommand's module owns its arguments (`add_arguments(parser)`) and its entry
point (`run(args) -> int`); modules are imported only when their command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

from urn import __version__
from urn.logs import setup_logging

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "add_role_arguments", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "checker": ("checker.main", "probe assigned checks every interval, push whole tables"),
    "aggregator": ("aggregator.main", "N-of-M over checker tables, push the health table"),
    "resolver": ("resolver.main", "answer DNS-style queries over HTTP JSON, DoH and DNS"),
    "demo": ("bench.demo", "a whole local fleet in three AZs that loses one AZ and recovers"),
    "targets": ("bench.targets", "simulated HTTP/TCP target farms, switchable per target or AZ"),
    "bench": ("bench.cli", "benchmarks: az-failure and the micro benches"),
    "validate": ("urn.validate", "validate a config document and print what is wrong"),
}


def add_role_arguments(parser: argparse.ArgumentParser, default_listen: str) -> None:
    """The flags every long-running role shares."""
    parser.add_argument("--config", required=True, metavar="SRC", help="file path or http(s) URL")
    parser.add_argument("--id", required=True, help="this process's id (at most 32 bytes)")
    parser.add_argument(
        "--listen", default=default_listen, metavar="HOST:PORT", help="HTTP listen address"
    )


def _usage() -> str:
    lines = [f"urn {__version__}: constant-work health checks and DNS failover", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
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
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"urn {name}", description=COMMANDS[name][1])
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
