"""AggregatorSettings: what this process is, from its command line.

Everything else (thresholds, staleness, peers, keys, TLS) comes from the config
document, re-applied whole every config interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aggregator.window import DEFAULT_DEPTH
from urn.role import role_fields, validated
from urn.wire import SENDER_BYTES

if TYPE_CHECKING:
    import argparse
    from typing import Self

__all__ = ["DEFAULT_LISTEN", "DEFAULT_PORT", "AggregatorSettings"]

DEFAULT_PORT = 7101
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"


@dataclass(frozen=True, slots=True)
class AggregatorSettings:
    id: str
    config: str  # file path or http(s) URL of the document
    listen_host: str = "127.0.0.1"
    listen_port: int = DEFAULT_PORT
    window: int = DEFAULT_DEPTH  # tables kept per checker
    # Seconds after start before the first push; None: long enough to fill the window
    # (window x push interval, at most staleness). See Aggregator.warm_up.
    warm_up: float | None = None

    def __post_init__(self) -> None:
        raw = self.id.encode()
        if not raw or len(raw) > SENDER_BYTES or b"\0" in raw:
            raise ValueError(f"--id {self.id!r}: must be 1-{SENDER_BYTES} UTF-8 bytes")
        if not 1 <= self.window <= 255:
            raise ValueError(f"--window {self.window}: must be 1-255 tables per checker")
        if self.warm_up is not None and self.warm_up < 0:
            raise ValueError(f"warm_up {self.warm_up}: must not be negative")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Self:
        """Validated settings from `urn aggregator` flags; StartupError naming the bad flag."""
        shared = role_fields(args, DEFAULT_PORT)
        return validated(lambda: cls(**shared, window=args.window))
