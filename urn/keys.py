"""Keys, one keyring per tier: the current key signs, the current and previous keys verify.

Tiers: checker tables (checker -> aggregator) under `push_key`, aggregated tables
(aggregator -> resolver) under `table_key`, so a checker, which holds only the push key,
can never make a table a resolver accepts. Without `table_key` the aggregated tier falls
back to the push keys (`Keys.table_defaulted`; aggregators and resolvers warn).
Each process resolves only the tiers it `needs`: a sidecar checker never reads a table key.

Rotation without downtime, per tier: deploy the new key under `previous_*_keys`
everywhere, then swap it with the current key; once every sender signs with the new
key, drop the old one (docs/wire.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from urn.errors import ConfigError
from urn.wire import TableKind

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from urn.config import Document, KeySource

__all__ = ["ALL_TIERS", "Keyring", "Keys", "load_keys"]

MIN_KEY_BYTES = 16
ALL_TIERS: frozenset[TableKind] = frozenset(TableKind)


@dataclass(frozen=True, slots=True)
class Keyring:
    """One tier's keys; never shown in a repr, so no log line or traceback carries them."""

    signing: bytes = field(repr=False)
    accepted: tuple[bytes, ...] = field(repr=False)  # signing key first


@dataclass(frozen=True, slots=True)
class Keys:
    """One good config pass's keys: a keyring per tier this process needs (else None)."""

    push: Keyring | None  # checker tables
    table: Keyring | None  # aggregated tables
    table_defaulted: bool = False  # no table_key: aggregated tables ride on the push keys

    def for_kind(self, kind: TableKind) -> Keyring:
        """The keyring of `kind`'s tier; LookupError if this process never loaded it."""
        ring = self.push if kind is TableKind.CHECKER else self.table
        if ring is None:
            raise LookupError(f"no keys loaded for {kind.name.lower()} tables in this process")
        return ring


def load_keys(
    document: Document,
    environ: Mapping[str, str] | None = None,
    needs: Collection[TableKind] = ALL_TIERS,
) -> Keys:
    """Resolve the key sources of the tiers in `needs`; a missing or short key, or a table
    key that is also a push key, is a ConfigError naming its field. Sources no tier in
    `needs` uses are never read."""
    env = os.environ if environ is None else environ
    defaulted = document.table_key is None
    push: Keyring | None = None
    if TableKind.CHECKER in needs or (TableKind.AGGREGATE in needs and defaulted):
        push = _ring(document.push_key, document.previous_push_keys, "push", env)
    table: Keyring | None = None
    if TableKind.AGGREGATE in needs:
        previous = _previous(document.previous_table_keys, "previous_table_keys", env)
        if document.table_key is None:
            assert push is not None
            table = Keyring(push.signing, (*push.accepted, *previous))
        else:
            signing = _read(document.table_key, "table_key", env)
            table = Keyring(signing, (signing, *previous))
            if push is not None and signing in push.accepted:
                raise ConfigError(
                    "table_key",
                    document.table_key.describe(),
                    "holds a push key: checkers could then sign aggregated tables",
                )
    return Keys(
        push=push if TableKind.CHECKER in needs else None,
        table=table,
        table_defaulted=defaulted,
    )


def _ring(
    current: KeySource, previous: tuple[KeySource, ...], tier: str, env: Mapping[str, str]
) -> Keyring:
    signing = _read(current, f"{tier}_key", env)
    return Keyring(signing, (signing, *_previous(previous, f"previous_{tier}_keys", env)))


def _previous(
    sources: tuple[KeySource, ...], path: str, env: Mapping[str, str]
) -> tuple[bytes, ...]:
    return tuple(_read(source, f"{path}[{i}]", env) for i, source in enumerate(sources))


def _read(source: KeySource, path: str, env: Mapping[str, str]) -> bytes:
    if source.env is not None:
        value = env.get(source.env)
        if value is None:
            raise ConfigError(f"{path}.env", source.env, "is not set in the environment")
        key = value.strip().encode()
    else:
        assert source.file is not None
        try:
            key = Path(source.file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(
                f"{path}.file", source.file, f"cannot be read: {exc.strerror}"
            ) from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            path, source.describe(), f"holds a key shorter than {MIN_KEY_BYTES} bytes"
        )
    return key
