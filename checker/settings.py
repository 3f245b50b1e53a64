"""CheckerSettings: everything a checker takes from its command line, in one frozen place.

Owns: the checker's identity (id, AZ), where it listens, its sidecar selection and the
probe CA bundle. Everything else (checks, intervals, peers) comes from the document on
every config pass. Never: reads the document; the service combines the two.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from urn.config import Check

__all__ = ["DEFAULT_LISTEN", "CheckerSettings", "Selector", "parse_selector"]

DEFAULT_LISTEN = "127.0.0.1:7301"


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
    listen_port: int = 7301
    select: tuple[Selector, ...] = ()  # sidecar: probe only checks matching ANY selector
    probe_ca: str | None = None  # CA bundle for checks with verify_tls (default: system store)
    max_concurrency: int | None = None  # cap on probes in flight (default: from the config)
    fd_reserve: int = 256  # descriptors kept back for listeners, pushes and config reads

    def __post_init__(self) -> None:
        for name, value, width in (("id", self.id, 32), ("az", self.az, 16)):
            raw = value.encode()
            if not raw or len(raw) > width or b"\0" in raw:
                raise ValueError(f"--{name} {value!r}: must be 1-{width} UTF-8 bytes without NUL")

    def selects(self, check: Check) -> bool:
        """True when no selector is given or any selector matches."""
        return not self.select or any(s.matches(check) for s in self.select)
