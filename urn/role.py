"""What every long-running role (checker, aggregator, resolver) shares at its edges.

Owns: the flags every role takes (`--config`, `--id`, `--listen`), so the three command
lines read alike. Never: knows a role's own flags or starts anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

__all__ = ["add_role_arguments"]


def add_role_arguments(parser: argparse.ArgumentParser, default_listen: str) -> None:
    """The flags every long-running role shares."""
    parser.add_argument("--config", required=True, metavar="SRC", help="file path or http(s) URL")
    parser.add_argument("--id", required=True, help="this process's id (at most 32 bytes)")
    parser.add_argument(
        "--listen", default=default_listen, metavar="HOST:PORT", help="HTTP listen address"
    )
