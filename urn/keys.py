"""Push keys: the current key signs, the current and previous keys verify.

Rotation without downtime: deploy the new key as `push_key` and the old one under
`previous_push_keys` everywhere; once every sender signs with the new key, drop the old.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from urn.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from urn.config import Document, KeySource

__all__ = ["Keyring", "load_keyring"]

MIN_KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class Keyring:
    signing: bytes
    accepted: tuple[bytes, ...]  # signing key first


def load_keyring(document: Document, environ: Mapping[str, str] | None = None) -> Keyring:
    """Resolve the document's key sources; a missing or short key is a ConfigError."""
    env = os.environ if environ is None else environ
    signing = _read(document.push_key, "push_key", env)
    previous = tuple(
        _read(source, f"previous_push_keys[{i}]", env)
        for i, source in enumerate(document.previous_push_keys)
    )
    return Keyring(signing=signing, accepted=(signing, *previous))


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
