"""The field reader: typed reads from one mapping, each error naming its full field path.

Owns: type and bound checks on single values (`checks[3].port: 70000 must be at most 65535`),
the "is not a known field" rule, and the small shared checks (a mapping, no duplicates).
Never: knows what any section means; the rules between fields live in
`urn.config.validate`.
Cost: O(1) a read; O(keys) for `done()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from urn.errors import ConfigError

__all__ = ["Fields", "as_mapping", "unique"]

T = TypeVar("T")

_MISSING = object()


class Fields:
    """Typed reads from one mapping, each error carrying its full field path.

    `done()` rejects fields nobody read, so a misspelt key is an error, not a silent default.
    """

    def __init__(self, raw: Mapping[str, Any], prefix: str) -> None:
        self.raw = raw
        self.prefix = prefix
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        if key.startswith("["):
            return f"{self.prefix}{key}"
        return f"{self.prefix}.{key}" if self.prefix else key

    def _get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        value = self.raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is None:
                raise ConfigError(self.path(key), None, "is required")
            return default
        return value

    def integer(
        self, key: str, default: int | None, low: int | None = None, high: int | None = None
    ) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.path(key), value, "must be an integer")
        _bounds(self.path(key), value, low, high)
        return value

    def optional_integer(self, key: str, low: int | None = None) -> int | None:
        if self.raw.get(key) is None:
            self.seen.add(key)
            return None
        return self.integer(key, 0, low=low)

    def number(
        self, key: str, default: float | None, low: float | None = None, high: float | None = None
    ) -> float:
        value = self._get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(self.path(key), value, "must be a number")
        _bounds(self.path(key), value, low, high)
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        self.seen.add(key)
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(self.path(key), value, "must be true or false")
        return value

    def string(self, key: str, default: str | None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise ConfigError(self.path(key), value, "must be a string")
        return value

    def optional_string(self, key: str) -> str | None:
        self.seen.add(key)
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(self.path(key), value, "must be a string")
        return value

    def choice(self, key: str, enum: Callable[[str], T], default: T | None) -> T:
        value = self._get(key, default)
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(str(m) for m in enum)  # type: ignore[attr-defined]
            raise ConfigError(self.path(key), value, f"must be one of {allowed}") from None

    def mapping(self, key: str, default: Mapping[str, Any] | None = None) -> Fields:
        self.seen.add(key)
        value = self.raw.get(key)
        if value is None:
            value = default if default is not None else {}
        return Fields(as_mapping(value, self.path(key)), self.path(key))

    def sequence(self, key: str) -> Sequence[Any]:
        self.seen.add(key)
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ConfigError(self.path(key), value, "must be a list")
        return value

    def strings(self, key: str, default: Sequence[str]) -> Iterator[str]:
        items = self.sequence(key) or default
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ConfigError(self.path(f"{key}[{i}]"), item, "must be a string")
            yield item

    def integers(self, key: str) -> Iterator[int]:
        for i, item in enumerate(self.sequence(key)):
            if isinstance(item, bool) or not isinstance(item, int):
                raise ConfigError(self.path(f"{key}[{i}]"), item, "must be an integer")
            yield item

    def consume_all(self) -> None:
        self.seen.update(self.raw)

    def done(self) -> None:
        for key in self.raw:
            if key not in self.seen:
                raise ConfigError(self.path(str(key)), self.raw[key], "is not a known field")


def _bounds(path: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise ConfigError(path, value, f"must be at least {low}")
    if high is not None and value > high:
        raise ConfigError(path, value, f"must be at most {high}")


def unique(values: Sequence[object], path: str) -> None:
    seen: set[object] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ConfigError(f"{path}[{i}]", value, "is a duplicate")
        seen.add(value)


def as_mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, value, "must be a mapping")
    return value
