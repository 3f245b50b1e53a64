"""`urn resolver --config SRC --id ID [--listen HOST:PORT] [--dns HOST:PORT|none]
[--dot HOST:PORT]`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resolver.app import SERVICE, TUNING, make_app
from resolver.settings import DEFAULT_DNS, DEFAULT_LISTEN, ResolverSettings
from urn.logs import get_logger
from urn.role import add_role_arguments, run_role

if TYPE_CHECKING:
    import argparse

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
    parser.add_argument(
        "--dot",
        metavar="HOST:PORT",
        help="DNS over TLS (RFC 7858), with the config's tls certificate (default: off)",
    )
    parser.add_argument(
        "--tcp-connections",
        dest="max_tcp_connections",
        type=int,
        metavar="N",
        help="DNS/TCP connections held at once; past it the idlest is closed (default 1024)",
    )
    parser.add_argument(
        "--tcp-per-source",
        type=int,
        metavar="N",
        help="DNS/TCP connections one address (IPv6: one /64) may hold (default 64)",
    )


def run(args: argparse.Namespace) -> int:
    return run_role(args, ResolverSettings.from_args, make_app, SERVICE, tuning=TUNING, log=log)
