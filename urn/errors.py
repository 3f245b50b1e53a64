"""Every error urn raises on purpose, as one tree.

    UrnError
     +-- ConfigError            a document field is wrong; carries field_path and value
     |    +-- ConfigFetchError  the source could not be read at all (file, http)
     +-- StartupError           a process cannot start (never had a good config, ...)
     +-- BadName                not a DNS name urn can hold (urn.names); also a ValueError
     +-- WireError              a pushed table is refused; `reason` is the metric label
          +-- Oversized         413  body longer than a table of this capacity can be
          +-- Truncated         400  body shorter than its own layout says
          +-- Undecodable       400  not an urn envelope at all
          +-- UnknownVersion    400  envelope version we do not speak
          +-- WrongKind         400  a checker table sent to a resolver, or the reverse
          +-- WrongCapacity     400  capacity differs from this fleet's
          +-- BadMac            401  HMAC-SHA256 matches no accepted key of the table's tier
          +-- UnlistedSender    403  MAC good, but the sender id is not on the allow-list
          +-- Skewed            400  generation time too far from our clock
          +-- Replayed          409  sequence not newer than the last accepted from that sender
     +-- MessageError           a DNS message not answered normally (resolver.dnsmsg);
          |                     `reason` is the metric label
          +-- Dropped           no answer: shorter than a header, or itself a response
          +-- FormErr           FORMERR from the question alone
          +-- NotImplementedOpcode  NOTIMP: an opcode other than QUERY
          +-- BadVersion        BADVERS: an EDNS version other than 0

A receiver that catches a WireError has changed no state: decoding is pure and
acceptance is committed only after every check passed.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "WIRE_ERRORS",
    "BadMac",
    "BadName",
    "ConfigError",
    "ConfigFetchError",
    "Oversized",
    "Replayed",
    "Skewed",
    "StartupError",
    "Truncated",
    "Undecodable",
    "UnknownVersion",
    "UnlistedSender",
    "UrnError",
    "WireError",
    "WrongCapacity",
    "WrongKind",
]


class UrnError(Exception):
    """Root of every error urn raises deliberately."""


class ConfigError(UrnError):
    """A configuration document is invalid; names the field path and the bad value."""

    def __init__(self, field_path: str, value: Any, problem: str) -> None:
        self.field_path = field_path
        self.value = value
        self.problem = problem
        super().__init__(f"{field_path}: {value!r} {problem}" if field_path else problem)


class ConfigFetchError(ConfigError):
    """The configuration source could not be read (missing file, unreachable URL)."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__("", source, f"cannot read config from {source}: {problem}")
        self.source = source


class StartupError(UrnError):
    """A process cannot start; the message says what to fix."""


class BadName(UrnError, ValueError):
    """A string that is not a DNS name urn can hold; the message says why."""


class WireError(UrnError):
    """A pushed table was refused. Subclasses carry the metric label and HTTP status."""

    reason: ClassVar[str] = "undecodable"
    http_status: ClassVar[int] = 400


class Oversized(WireError):
    reason = "oversized"
    http_status = 413


class Truncated(WireError):
    reason = "truncated"


class Undecodable(WireError):
    reason = "undecodable"


class UnknownVersion(WireError):
    reason = "version"


class WrongKind(WireError):
    reason = "kind"


class WrongCapacity(WireError):
    reason = "capacity"


class BadMac(WireError):
    reason = "bad_mac"
    http_status = 401


class UnlistedSender(WireError):
    """The MAC is good, but this receiver's allow-list (config `senders`) lacks the id."""

    reason = "sender"
    http_status = 403


class Replayed(WireError):
    reason = "replayed"
    http_status = 409


class Skewed(WireError):
    reason = "skew"


WIRE_ERRORS: tuple[type[WireError], ...] = (
    Oversized,
    Truncated,
    Undecodable,
    UnknownVersion,
    WrongKind,
    WrongCapacity,
    BadMac,
    UnlistedSender,
    Replayed,
    Skewed,
)
