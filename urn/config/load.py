"""Document text to a plain mapping: JSON or YAML, a repeated key refused in both.

Owns: the choice of parser, the syntax errors (`config is not valid YAML/JSON at line 3,
column 1: ...`) and the digest, the SHA-256 of the canonical mapping.
Never: judges what the mapping holds (`urn.config.validate` does), and reads no files:
the text comes from `urn.source`.
Cost: O(size of text): the C JSON parser for JSON (a 10,000-check document in tens of
ms), libyaml when built in for YAML; once per config pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import yaml

from urn.errors import ConfigError

__all__ = ["digest", "load_text"]


def load_text(text: str | bytes, origin: str = "config") -> Mapping[str, Any]:
    """The top-level mapping of a YAML or JSON document, or ConfigError saying why not.

    A JSON document takes the C JSON parser; anything else takes libyaml when present.
    A key repeated in one mapping is an error in both, never a silent last-wins.
    """
    try:
        raw = _load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            "", origin, f"{origin} is not valid YAML/JSON{where}: {problem}"
        ) from None
    except _JsonDuplicateKey as exc:
        raise ConfigError("", origin, f"{origin} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError("", origin, f"{origin} is nested too deeply") from None
    if not isinstance(raw, Mapping):
        raise ConfigError("", origin, f"{origin} must hold a mapping at the top level")
    return raw


class _JsonDuplicateKey(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonDuplicateKey(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


_YamlBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_YamlBase):  # type: ignore[valid-type,misc]
    """Safe YAML loading (libyaml when built in) that refuses a key repeated in a mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable: the base class reports it with its mark
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _load(text: str | bytes) -> Any:
    stripped = text.lstrip()
    if stripped[:1] in ("{", b"{"):
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except _JsonDuplicateKey:
            raise
        except ValueError:
            pass  # not JSON after all (YAML flow style starts with "{" too): YAML judges it
    return yaml.load(text, Loader=_UniqueKeyLoader)


def digest(raw: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical form of a loaded document; it travels in every table."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()
