"""`urn checker`: command-line flags -> CheckerSettings -> the checker app on a listener."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from checker.app import SERVICE, TUNING, make_app
from checker.settings import DEFAULT_LISTEN, CheckerSettings
from urn.logs import get_logger
from urn.role import add_role_arguments, serve_role
from urn.runtime import run_main, tune_process

if TYPE_CHECKING:
    import argparse
    import asyncio

__all__ = ["add_arguments", "run"]

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


def run(args: argparse.Namespace) -> int:
    async def main(stop: asyncio.Event) -> int:
        settings = CheckerSettings.from_args(args)
        # The checker sizes its probe concurrency by the fd limit the tuning leaves.
        settings = replace(settings, fd_limit=tune_process(TUNING))
        app = make_app(settings)
        return await serve_role(app, app[SERVICE], stop, log=log, tuning=TUNING)

    return run_main(main, args.loop)
