"""`urn validate --config SRC`: check a document the way every process will."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from urn.clock import SystemClock
from urn.config import parse_text
from urn.errors import ConfigError
from urn.keys import load_keys
from urn.source import read_source

if TYPE_CHECKING:
    import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="SRC", help="file path or http(s) URL")
    parser.add_argument("--keys", action="store_true", help="also resolve every key it names")


def run(args: argparse.Namespace) -> int:
    try:
        raw = asyncio.run(read_source(args.config))
        document = parse_text(raw, args.config, SystemClock().time())
        if args.keys:
            load_keys(document)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    probed = sum(1 for c in document.checks if c.is_probed)
    delegable = sum(1 for z in document.zones if z.ns)
    print(
        f"ok: capacity {document.capacity}, {len(document.checks)} checks ({probed} probed), "
        f"{len(document.records)} records, {len(document.zones)} zones ({delegable} with NS), "
        f"digest {document.digest.hex()[:16]}"
    )
    return 0
