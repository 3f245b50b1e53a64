"""`urn targets`: simulated HTTP/TCP target farms for tests, the demo and benchmarks.

    urn targets serve --azs 3 --per-az 100 [--kinds http|tcp|mixed] [--base-port N]
                      [--control HOST:PORT] [--slow-delay S] [--shard I/N]
    urn targets set   --control URL (--az AZ | --target ID ...) --mode MODE [--delay S]
    urn targets stats --control URL
    urn targets checks --azs 3 --per-az 100 [--kinds ...] [--base-port N] [--first-slot N]

`serve` prints one line `ready control=URL targets=N` on stdout once every listener is
up, and runs until SIGINT or SIGTERM. `checks` prints the config `checks` entries of a
layout as JSON without starting anything. The layout and the modes are described in
`sim.farm_layout` and `sim.farm`; the control API in `sim.farm_control`.

One farm process serves at most about 25,000 probes/s on a core (`bench.farm_cost`);
`--shard I/N` splits a layout over N processes, each with its own control API, so that a
benchmark larger than that measures the fleet and not the farm.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from sim.farm import DEFAULT_SLOW_DELAY, TargetFarm
from sim.farm_layout import (
    KIND_CHOICES,
    MAX_AZS,
    Kind,
    Mode,
    ModeChange,
    TargetSpec,
    az_names,
    checks_for,
    layout,
    parse_mode_change,
)
from urn.errors import StartupError
from urn.logs import get_logger
from urn.runtime import raise_fd_limit, run_main

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "DEFAULT_BASE_PORT",
    "DEFAULT_CONTROL",
    "Kind",
    "Mode",
    "ModeChange",
    "TargetFarm",
    "TargetSpec",
    "add_arguments",
    "checks_for",
    "layout",
    "parse_mode_change",
    "parse_shard",
    "run",
]

log = get_logger("targets")

DEFAULT_BASE_PORT = 20000  # below Linux's ephemeral range (32768-60999)
DEFAULT_CONTROL = "127.0.0.1:19900"
FD_MARGIN = 256


def _layout_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--azs", type=int, default=3, help=f"number of AZs, 1-{MAX_AZS} (a, b, ...)"
    )
    parser.add_argument("--per-az", type=int, default=100, help="targets per AZ")
    parser.add_argument("--kinds", choices=KIND_CHOICES, default="http", help="target kinds")
    parser.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help="first port of the layout (0: an ephemeral port per target)",
    )
    parser.add_argument(
        "--host",
        default=None,
        help="one host for every target, each on its own port (containers: 0.0.0.0)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands serve, set, stats and checks."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = sub.add_parser("serve", help="run a farm until SIGINT or SIGTERM")
    _layout_arguments(serve)
    serve.add_argument(
        "--only-az",
        action="append",
        metavar="AZ",
        help="serve only this AZ's targets of the layout (repeat; one farm per AZ)",
    )
    serve.add_argument(
        "--shard",
        type=parse_shard,
        default=(0, 1),
        metavar="I/N",
        help="serve only every Nth target of the layout, starting at the Ith (0-based)",
    )
    serve.add_argument(
        "--control", default=DEFAULT_CONTROL, metavar="HOST:PORT", help="control API listener"
    )
    serve.add_argument(
        "--slow-delay",
        type=float,
        default=DEFAULT_SLOW_DELAY,
        metavar="S",
        help="seconds a slow target waits before answering",
    )
    # also accepted after `serve` (urn's own parser takes them only before the action)
    serve.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default=argparse.SUPPRESS)
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default=argparse.SUPPRESS
    )
    change = sub.add_parser("set", help="switch the mode of an AZ or of some targets")
    change.add_argument("--control", default=f"http://{DEFAULT_CONTROL}", metavar="URL")
    which = change.add_mutually_exclusive_group(required=True)
    which.add_argument("--az", help="every target of this AZ")
    which.add_argument("--target", action="append", metavar="ID", help="a target id (repeat)")
    change.add_argument("--mode", required=True, choices=[m.value for m in Mode])
    change.add_argument("--delay", type=float, metavar="S", help="answer delay for mode slow")
    stats = sub.add_parser("stats", help="print a running farm's counters")
    stats.add_argument("--control", default=f"http://{DEFAULT_CONTROL}", metavar="URL")
    checks = sub.add_parser("checks", help="print the config checks of a layout as JSON")
    _layout_arguments(checks)
    checks.add_argument("--first-slot", type=int, default=0)


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N): the Ith of N shards, 0 <= I < N."""
    index, slash, count = text.partition("/")
    try:
        if not slash:
            raise ValueError
        shard = (int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N, e.g. 0/4") from None
    if not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: I must be in 0..N-1 and N at least 1")
    return shard


def run(args: argparse.Namespace) -> int:
    action: str = args.action
    if action == "serve":
        return run_main(lambda stop: _serve(args, stop), args.loop)
    if action == "set":
        body: dict[str, Any] = {"mode": args.mode}
        if args.az is not None:
            body["az"] = args.az
        else:
            body["targets"] = args.target
        if args.delay is not None:
            body["delay"] = args.delay
        return _call(args.control, "/v1/mode", body)
    if action == "stats":
        return _call(args.control, "/v1/stats", None)
    try:
        specs = layout(az_names(args.azs), args.per_az, args.base_port, args.kinds, args.host)
        print(json.dumps(checks_for(specs, first_slot=args.first_slot), indent=1))
    except ValueError as exc:
        print(f"urn targets: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> int:
    # aiohttp is imported by the server only, so `set` and `stats` start fast
    from sim.farm_control import serve_control
    from urn.http import parse_listen

    try:
        host, port = parse_listen(args.control, 19900)
        specs = layout(az_names(args.azs), args.per_az, args.base_port, args.kinds, args.host)
        if args.only_az:
            specs = tuple(spec for spec in specs if spec.az in args.only_az)
            if not specs:
                raise ValueError(f"--only-az {args.only_az}: no such AZ in the layout")
        index, shards = args.shard
        specs = specs[index::shards]
        if not specs:
            raise ValueError(f"--shard {index}/{shards}: no target of the layout falls in it")
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    soft, _ = raise_fd_limit()
    if len(specs) + FD_MARGIN > soft:
        raise StartupError(
            f"{len(specs)} listeners need more file descriptors than the limit {soft}"
        )
    farm = TargetFarm(specs, slow_delay=args.slow_delay)
    await farm.start()
    try:
        runner, bound = await serve_control(farm, host, port)
    except OSError as exc:
        await farm.close()
        raise StartupError(f"control listener {host}:{port}: {exc}") from exc
    url = f"http://{host}:{bound}"
    log.info("farm_ready", control=url, targets=len(specs), azs=list(farm.azs))
    print(f"ready control={url} targets={len(specs)}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await farm.close()
    log.info("farm_stopped", served=farm.stats()["served_total"])
    return 0


def _call(control: str, path: str, body: dict[str, Any] | None) -> int:
    base = control if "://" in control else f"http://{control}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(response.read().decode())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, KeyError, TypeError):
            detail = json.loads(detail)["error"]
        print(f"urn targets: {exc.code}: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"urn targets: cannot reach {base}: {exc}", file=sys.stderr)
        return 1
    return 0
