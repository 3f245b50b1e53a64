"""`urn bench SUBCOMMAND ...`: the az-failure benchmark, its helper processes, micro benches.

Subcommands are modules with `add_arguments(parser)` and `run(args) -> int`, or with a
`main(argv) -> int` that parses its own arguments (the micro benches, which get every
word after their name, `--help` included).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bench import (
    aggregator_tick,
    az_failure,
    checker_overhead,
    checker_throughput,
    farm_cost,
    resolver_qps,
    soak,
)
from bench.edge import aggregator as edge_aggregator
from bench.edge import checker as edge_checker
from bench.edge import resolver as edge_resolver
from bench.micro import codec, resolve
from sim import loadgen

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["SUBCOMMANDS", "add_arguments", "run"]

SUBCOMMANDS: dict[str, tuple[ModuleType, str]] = {
    "az-failure": (az_failure, "mass AZ failure: urn vs an edge-triggered design"),
    "checker-throughput": (checker_throughput, "probes per second of one checker"),
    "checker-overhead": (checker_overhead, "CPU per probe: urn's checker vs the edge one"),
    "aggregator-tick": (aggregator_tick, "CPU of one aggregator tick"),
    "resolver-qps": (resolver_qps, "queries per second of one resolver"),
    "codec": (codec, "encode/decode of a whole table"),
    "resolve": (resolve, "one resolve, no sockets: healthy vs unhealthy"),
    "farm-cost": (farm_cost, "CPU per probe served by the target farm"),
    "soak": (soak, "a fleet under load and random kill -9s; memory and wrong answers"),
    "loadgen": (loadgen, "UDP DNS load generator (used by az-failure)"),
    "edge-checker": (edge_checker, "edge-triggered design: checker process"),
    "edge-aggregator": (edge_aggregator, "edge-triggered design: aggregator process"),
    "edge-resolver": (edge_resolver, "edge-triggered design: resolver process"),
}


def _module(name: str) -> Any:
    return SUBCOMMANDS[name][0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name, (_, text) in SUBCOMMANDS.items():
        module = _module(name)
        if not hasattr(module, "add_arguments"):
            # The bench parses its own options: hand it every word untouched ("+" as the
            # option prefix here means "-" and "--" words are not ours to interpret).
            raw = sub.add_parser(name, help=text, add_help=False, prefix_chars="+")
            raw.add_argument("argv", nargs=argparse.REMAINDER)
            continue
        child = sub.add_parser(name, help=text, description=text)
        module.add_arguments(child)
        # urn.cli adds these to the parent; accept them after the subcommand as well.
        child.add_argument(
            "--log-level", default="info", choices=["debug", "info", "warning", "error"]
        )
        child.add_argument("--loop", default="auto", choices=["auto", "uvloop", "asyncio"])


def run(args: argparse.Namespace) -> int:
    module = _module(args.bench)
    if not hasattr(module, "add_arguments"):
        argv: list[str] = [a for a in args.argv if a != "--"]
        code: int = module.main(argv)
        return code
    code = module.run(args)
    return code
