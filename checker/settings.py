"""CheckerSettings: everything a checker takes from its command line, in one frozen place.

Owns: the checker's identity (id, AZ), where it listens, its sidecar selection, the
probe CA bundle and the file-descriptor limit it may size itself by. Everything else
(checks, intervals, peers) comes from the document on every config pass. Never: reads
the document; the service combines the two.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from urn.errors import StartupError
from urn.role import role_fields, validated

if TYPE_CHECKING:
    import argparse
    from typing import Self

    from urn.config import Check

__all__ = ["DEFAULT_LISTEN", "DEFAULT_PORT", "CheckerSettings", "Selector", "parse_selector"]

DEFAULT_PORT = 7301
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"


@dataclass(frozen=True, slots=True)
class Selector:
    """One sidecar filter: `name=GLOB` or `label=KEY=VALUE` (VALUE may be a glob too)."""

    kind: Literal["name", "label"]
    pattern: str
    key: str = ""

    def matches(self, check: Check) -> bool:
        if self.kind == "name":
            return fnmatch.fnmatchcase(check.name, self.pattern)
        value = check.labels.get(self.key)
        return value is not None and fnmatch.fnmatchcase(value, self.pattern)

    def __str__(self) -> str:
        if self.kind == "name":
            return f"name={self.pattern}"
        return f"label={self.key}={self.pattern}"


def parse_selector(text: str) -> Selector:
    """`name=web-*` or `label=app=shop`; ValueError saying what is wrong otherwise."""
    kind, sep, rest = text.partition("=")
    if not sep or not rest:
        raise ValueError(f"selector {text!r}: expected name=GLOB or label=KEY=VALUE")
    if kind == "name":
        return Selector("name", rest)
    if kind == "label":
        key, sep, value = rest.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"selector {text!r}: expected label=KEY=VALUE")
        return Selector("label", value, key)
    raise ValueError(f"selector {text!r}: kind must be name or label, not {kind!r}")


@dataclass(frozen=True, slots=True)
class CheckerSettings:
    """One checker process: who it is and what it was told on the command line."""

    id: str
    az: str
    config: str = ""  # file path or http(s) URL of the document
    listen_host: str = "127.0.0.1"
    listen_port: int = DEFAULT_PORT
    select: tuple[Selector, ...] = ()  # sidecar: probe only checks matching ANY selector
    probe_ca: str | None = None  # CA bundle for checks with verify_tls (default: system store)
    max_concurrency: int | None = None  # cap on probes in flight (default: from the config)
    fd_reserve: int = 256  # descriptors kept back for listeners, pushes and config reads
    # (soft, hard) descriptor limit the process runs under, as `urn.runtime.tune_process`
    # left it; None: the limit in force when the service is built.
    fd_limit: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name, value, width in (("id", self.id, 32), ("az", self.az, 16)):
            raw = value.encode()
            if not raw or len(raw) > width or b"\0" in raw:
                raise ValueError(f"--{name} {value!r}: must be 1-{width} UTF-8 bytes without NUL")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Self:
        """Validated settings from `urn checker` flags; StartupError naming the bad flag."""
        shared = role_fields(args, DEFAULT_PORT)
        try:
            select = tuple(parse_selector(text) for text in args.select)
        except ValueError as exc:
            raise StartupError(f"--select: {exc}") from None
        if args.max_concurrency is not None and args.max_concurrency < 1:
            raise StartupError(f"--max-concurrency {args.max_concurrency}: must be at least 1")
        return validated(
            lambda: cls(
                **shared,
                az=args.az,
                select=select,
                probe_ca=args.probe_ca,
                max_concurrency=args.max_concurrency,
            )
        )

    def selects(self, check: Check) -> bool:
        """True when no selector is given or any selector matches."""
        return not self.select or any(s.matches(check) for s in self.select)
