"""The operator levers' fields: zonal shifts, check overrides, record thresholds, expiries.

Owns: reading `shifts`, a check's `override`, and a record's (or the fleet default's)
`min_healthy`, `when_all_down` and `ttl_when_degraded`, each error naming its field
(`shifts[0].until: ... is more than 72 hours after ...`), and the one rule for an expiry:
an RFC 3339 time in UTC no later than LEVER_HORIZON after the moment the document is
validated. An expiry already past is valid: that lever is simply inactive, so a document
is never refused on a later pass because a shift in it ran out (docs/resolver.md).
Never: reads a clock (`now` is an argument; None judges no horizon) or decides what a
lever does to an answer (`resolver.levers` does).
Cost: O(levers) per config pass.
"""

# urn: pure

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from urn.config.fields import Fields, as_mapping
from urn.config.model import Autoshift, Forced, MinHealthy, Override, Shift, WhenAllDown
from urn.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

__all__ = [
    "LEVER_HORIZON",
    "MAX_REASON",
    "MIN_LEVER_SPAN",
    "autoshift",
    "format_time",
    "min_healthy",
    "old_fail_open",
    "override",
    "parse_time",
    "shifts",
    "ttl_when_degraded",
    "when_all_down",
]

# Route 53 ARC: a zonal shift lasts 1 minute to 72 hours, and always ends by itself.
LEVER_HORIZON = 72 * 3600.0
# The shortest lever `urn shift start` will write. Validation cannot hold a document to
# it: a document is re-validated on later passes, when every expiry is nearer.
MIN_LEVER_SPAN = 60.0
MAX_REASON = 500  # bytes: a sentence for explain and /ui, not a log

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]00:00)",
)


def parse_time(value: object, path: str) -> float:
    """Unix seconds of an RFC 3339 UTC time (`2026-12-01T12:00:00Z`), or ConfigError.

    YAML reads an unquoted timestamp as a datetime; one in UTC is as good as its text.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
            raise ConfigError(path, str(value), "must be a UTC time (end it in Z)")
        return value.timestamp()
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ConfigError(path, value, "must be an RFC 3339 UTC time like 2026-12-01T12:00:00Z")
    text = value.upper().replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise ConfigError(path, value, f"is not a valid time: {exc}") from None


def format_time(seconds: float) -> str:
    """The RFC 3339 UTC form of Unix seconds, as explain, /ui and the docs write it."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _until(fields: Fields, now: float | None) -> float:
    path = fields.path("until")
    fields.seen.add("until")
    raw = fields.raw.get("until")
    if raw is None:
        raise ConfigError(path, None, "is required: every lever ends by itself")
    until = parse_time(raw, path)
    if now is not None and until > now + LEVER_HORIZON:
        raise ConfigError(
            path,
            format_time(until),
            f"is more than {LEVER_HORIZON / 3600:g} hours after {format_time(now)}, when "
            "this document was validated: a lever always has a near expiry",
        )
    return until


def _reason(fields: Fields) -> str:
    reason = fields.string("reason", None)
    if not reason.strip() or len(reason.encode()) > MAX_REASON:
        raise ConfigError(fields.path("reason"), reason, f"must be 1-{MAX_REASON} bytes of text")
    return reason


def shifts(items: Sequence[Any], azs: Collection[str], now: float | None) -> tuple[Shift, ...]:
    """`shifts`: at most one per AZ, each AZ one that some check has, each with an expiry."""
    result: list[Shift] = []
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"shifts[{i}]"
        fields = Fields(as_mapping(item, path), path)
        az = fields.string("az", None)
        if az not in azs:
            known = ", ".join(sorted(azs)) or "none"
            raise ConfigError(fields.path("az"), az, f"is not the AZ of any check ({known})")
        if az in first:
            raise ConfigError(
                fields.path("az"), az, f"is already shifted by shifts[{first[az]}]: one per AZ"
            )
        first[az] = i
        shift = Shift(az=az, until=_until(fields, now), reason=_reason(fields))
        fields.done()
        result.append(shift)
    return tuple(result)


def autoshift(top: Fields) -> Autoshift:
    """`autoshift: {unhealthy_share, min_checks, clear_share, clear_after}`; absent or
    null, off. `enabled: false` keeps the section but switches it off."""
    if top.raw.get("autoshift") is None:
        top.seen.add("autoshift")
        return Autoshift()
    section = top.mapping("autoshift")
    off = Autoshift()
    enabled = section.boolean("enabled", True)
    share = section.number("unhealthy_share", off.unhealthy_share, low=0.0, high=1.0)
    if share == 0.0:
        raise ConfigError(
            section.path("unhealthy_share"), share, "must be above 0: no AZ is ever all healthy"
        )
    min_checks = section.integer("min_checks", off.min_checks, low=1)
    clear_share = section.number("clear_share", share / 2, low=0.0)
    if clear_share >= share:
        raise ConfigError(
            section.path("clear_share"),
            clear_share,
            f"must be below unhealthy_share ({share:g}): the gap is the hysteresis",
        )
    clear_after = section.number("clear_after", off.clear_after, low=0.0)
    section.done()
    return Autoshift(
        enabled=enabled,
        unhealthy_share=share,
        min_checks=min_checks,
        clear_share=clear_share,
        clear_after=clear_after,
    )


def override(fields: Fields, now: float | None) -> Override | None:
    """A check's `override: {status, until, reason}`, or None when it has none."""
    if fields.raw.get("override") is None:
        fields.seen.add("override")
        return None
    section = fields.mapping("override")
    status = section.choice("status", Forced, None)
    result = Override(status=status, until=_until(section, now), reason=_reason(section))
    section.done()
    return result


def min_healthy(fields: Fields, key: str, default: MinHealthy, answers: int | None) -> MinHealthy:
    """`min_healthy: {count, percent}`; absent, the default. `answers`: the record's
    answer count, which an explicit count may not exceed (None for the fleet default)."""
    if fields.raw.get(key) is None:
        fields.seen.add(key)
        return default
    section = fields.mapping(key)
    if not any(name in section.raw for name in ("count", "percent")):
        raise ConfigError(
            fields.path(key), dict(section.raw), "needs count, percent or both (0 for none)"
        )
    count = section.integer("count", 0, low=0, high=0xFFFF)
    percent = section.number("percent", 0.0, low=0.0, high=100.0)
    section.done()
    if answers is not None and count > answers:
        raise ConfigError(section.path("count"), count, f"exceeds the record's {answers} answers")
    return MinHealthy(count=count, percent=percent)


def ttl_when_degraded(
    fields: Fields, default: int | None, ttl: int | None, high: int
) -> int | None:
    """`ttl_when_degraded`: no longer than the record's `ttl` when the record gives it;
    the fleet default is cut to each record's TTL."""
    explicit = fields.raw.get("ttl_when_degraded") is not None
    value = fields.optional_integer("ttl_when_degraded", low=0)
    if value is not None and value > high:
        raise ConfigError(fields.path("ttl_when_degraded"), value, f"must be at most {high}")
    if ttl is None:  # the fleet default itself
        return value
    if explicit:
        assert value is not None
        if value > ttl:
            raise ConfigError(
                fields.path("ttl_when_degraded"), value, f"exceeds the record's ttl {ttl}"
            )
        return value
    return None if default is None else min(default, ttl)


def when_all_down(fields: Fields, default: WhenAllDown) -> WhenAllDown:
    return fields.choice("when_all_down", WhenAllDown, default)


def old_fail_open(top: Fields, defaults: Mapping[str, Any]) -> WhenAllDown | None:
    """`fail_open: true|false`, the old spelling of `defaults.when_all_down: open|closed`."""
    if top.raw.get("fail_open") is None:
        top.seen.add("fail_open")
        return None
    fail_open = top.boolean("fail_open", True)
    if defaults.get("when_all_down") is not None:
        raise ConfigError(
            "fail_open",
            fail_open,
            "is the old spelling of defaults.when_all_down: give one or the other",
        )
    return WhenAllDown.OPEN if fail_open else WhenAllDown.CLOSED
