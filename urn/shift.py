"""`urn shift start|end|list`: zonal shifts, edited in a file config source.

    urn shift start --az b --for 30m --reason "deploy 4.2" [--config FILE]
    urn shift end --az b [--config FILE]
    urn shift list [--config FILE]

Owns: the file's read-edit-write. The edit (`urn.shiftedit`) changes only `shifts`; the
whole resulting document is validated against the system clock before anything is
written, exactly as every process will validate it at its next config pass. The write is
atomic: a temporary file in the same directory, fsync, `os.replace` over the file (the
target of a symlink), then fsync of the directory; the file's mode is kept, and a file
that changed while we edited is left alone (run again). A URL source is refused: it is
edited where it is served. `list` also reads a URL.
Exit codes: 0 done; 2 bad input, a document that would be refused, or an unreadable file
(the message on stderr names the problem); 1 the file could not be written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from urn import shiftedit
from urn.clock import SystemClock
from urn.config import parse_document
from urn.config.levers import MAX_REASON, format_time
from urn.config.load import load_text
from urn.errors import ConfigError, ConfigFetchError
from urn.source import read_source

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from urn.config import Document

__all__ = ["add_arguments", "run"]

DEFAULT_CONFIG = "urn.yaml"
_URL = ("http://", "https://")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"the file config source to edit (default {DEFAULT_CONFIG}); not a URL",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="start|end|list")
    start = actions.add_parser(
        "start",
        parents=[source],
        help="shift traffic off an AZ until an expiry (replaces that AZ's shift)",
        description="Shift traffic off an AZ: its answers count as unhealthy until the expiry.",
    )
    start.add_argument("--az", required=True, help="an AZ some check is in")
    start.add_argument(
        "--for",
        dest="span",
        required=True,
        metavar="DURATION",
        help="how long: 90s, 30m, 2h, 1h30m (1m to 72h)",
    )
    start.add_argument("--reason", required=True, help="why, for explain and /ui")
    end = actions.add_parser(
        "end", parents=[source], help="end an AZ's shift now", description="End an AZ's shift."
    )
    end.add_argument("--az", required=True)
    actions.add_parser(
        "list",
        parents=[source],
        help="every shift with its remaining time",
        description="Every shift of the document, with its remaining time.",
    )


def run(args: argparse.Namespace) -> int:
    now = SystemClock().time()
    try:
        if args.action == "list":
            print("\n".join(_list(args.config, now)))
            return 0
        lines = _start(args, now) if args.action == "start" else _end(args, now)
    except ConfigError as exc:
        print(f"urn shift {args.action}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"urn shift {args.action}: cannot write {args.config}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _list(location: str, now: float) -> list[str]:
    if location.startswith(_URL):
        raw = load_text(asyncio.run(read_source(location)), location)
    else:
        raw = load_text(_read(location), location)
    return shiftedit.describe_list(_valid(raw, location, now), now)


def _start(args: argparse.Namespace, now: float) -> list[str]:
    span = shiftedit.parse_span(args.span)
    reason: str = args.reason
    if not reason.strip() or len(reason.encode()) > MAX_REASON:
        raise ConfigError("--reason", reason, f"must be 1-{MAX_REASON} bytes of text")
    path, text, raw = _open(args.config)
    current = _valid(raw, args.config, None)
    azs = sorted({c.az for c in current.checks if c.az is not None})
    if args.az not in azs:
        raise ConfigError(
            "--az", args.az, f"is not the AZ of any check in {args.config} (AZs: {_list_of(azs)})"
        )
    until = format_time(now + span)  # to the second, down: never past the horizon
    entry = {"az": args.az, "until": until, "reason": reason}
    entries, replaced = shiftedit.start_shift(shiftedit.shift_entries(raw), entry)
    document = _write(path, text, raw, entries, args.config, now)
    return [*shiftedit.describe_start(document, args.az, now, replaced), f"wrote {args.config}"]


def _end(args: argparse.Namespace, now: float) -> list[str]:
    path, text, raw = _open(args.config)
    _valid(raw, args.config, None)
    entries, ended = shiftedit.end_shift(shiftedit.shift_entries(raw), args.az)
    if ended is None:
        shifted = _list_of([e["az"] for e in entries])
        raise ConfigError("--az", args.az, f"has no shift in {args.config} (shifted: {shifted})")
    document = _write(path, text, raw, entries, args.config, now)
    return [*shiftedit.describe_end(document, ended, now), f"wrote {args.config}"]


def _list_of(names: list[str]) -> str:
    return ", ".join(names) or "none"


def _read(location: str) -> str:
    try:
        data = Path(location).read_bytes()
    except OSError as exc:
        raise ConfigFetchError(location, exc.strerror or str(exc)) from None
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise ConfigFetchError(location, f"not UTF-8 text ({exc.reason})") from None


def _open(location: str) -> tuple[Path, str, Mapping[str, Any]]:
    """The file to edit (a symlink's target), its text and its mapping."""
    if location.startswith(_URL):
        raise ConfigError(
            "--config",
            location,
            "is a URL: a URL source is edited where it is served; urn shift edits a file",
        )
    path = Path(os.path.realpath(location))
    text = _read(location)
    return path, text, load_text(text, location)


def _valid(raw: Mapping[str, Any], location: str, now: float | None) -> Document:
    """The document as it stands; `now` None judges no expiry, so that `start` and `end`
    can mend a shift set too far ahead (by hand, or by a clock since set back)."""
    try:
        return parse_document(raw, now)
    except ConfigError as exc:
        raise ConfigError("", location, f"{location} is refused as it stands: {exc}") from None


def _write(
    path: Path,
    text: str,
    raw: Mapping[str, Any],
    entries: list[dict[str, str]],
    location: str,
    now: float,
) -> Document:
    """Validate the edited document whole, then replace the file with it atomically."""
    try:
        document = parse_document(shiftedit.with_shifts(raw, entries), now)
    except ConfigError as exc:
        raise ConfigError("", location, f"the edited document would be refused: {exc}") from None
    edited = shiftedit.edit_text(text, raw, entries)
    if edited.whole:
        print(
            f"urn shift: warning: could not edit the shifts block of {location} in place; "
            "wrote the document whole, without its comments and layout",
            file=sys.stderr,
        )
    _replace(path, text, edited.text, location)
    return document


def _replace(path: Path, old: str, new: str, location: str) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(new.encode())
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        if path.read_bytes() != old.encode():
            raise ConfigError("", location, f"{location} changed while it was edited: run again")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
