"""`urn checker`: command-line flags -> CheckerSettings -> the checker app on a listener."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from checker.app import SERVICE, TUNING, make_app
from checker.settings import DEFAULT_LISTEN, CheckerSettings
from urn.logs import get_logger
from urn.role import add_role_arguments, run_role

if TYPE_CHECKING:
    import argparse

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
    return run_role(
        args,
        CheckerSettings.from_args,
        make_app,
        SERVICE,
        tuning=TUNING,
        log=log,
        fit_to_process=_with_fd_limit,
    )


def _with_fd_limit(settings: CheckerSettings, fd_limit: tuple[int, int]) -> CheckerSettings:
    # The checker sizes its probe concurrency by the fd limit the tuning leaves.
    return replace(settings, fd_limit=fd_limit)
