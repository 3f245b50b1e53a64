"""Which slots changed target between two configs, so no slot inherits another's health.

Owns: a per-slot fingerprint of what each check probes (`Check.target`) and a short
memory of the fingerprints of the configs this process has applied, keyed by digest. A
table made under digest D is read through `changed(D)`: the slots whose check differs
between D and the config in force carry the old target's health, so receivers treat
them as no data (aggregator) or unknown (resolver) until a table made under the current
config arrives.
Never: reads files, clocks or sockets; a digest it never applied is not guessed at
(`changed` says None and the receiver takes the table as it is).
Cost: O(checks) hashing and O(capacity x remembered configs) compares per config pass;
`changed` is a dict lookup, so the tick and the query path pay nothing more.
"""

# urn: pure

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from urn.config import Document

__all__ = ["REMEMBERED_CONFIGS", "DriftMap", "fingerprints"]

REMEMBERED_CONFIGS = 8

Mask = npt.NDArray[np.bool_]


def fingerprints(document: Document) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each slot's probe target; 0 where no check owns the slot."""
    out = np.zeros(document.capacity, dtype=np.uint64)
    for check in document.checks:
        digest = hashlib.blake2b(repr(check.target).encode(), digest_size=8).digest()
        out[check.slot] = int.from_bytes(digest, "big") | 1  # never 0: 0 is "no check"
    out.setflags(write=False)
    return out


class DriftMap:
    """For each remembered config digest, the slots whose target differs from the current."""

    __slots__ = ("_changed", "_remembered", "current")

    def __init__(self) -> None:
        self._remembered: OrderedDict[bytes, npt.NDArray[np.uint64]] = OrderedDict()
        self._changed: dict[bytes, Mask] = {}
        self.current = b""

    def apply(self, document: Document) -> None:
        """Make `document` the current config; recompute every remembered digest's mask."""
        prints = self._remembered.pop(document.digest, None)
        if prints is None or prints.shape[0] != document.capacity:
            prints = fingerprints(document)
        self._remembered[document.digest] = prints
        while len(self._remembered) > REMEMBERED_CONFIGS:
            self._remembered.popitem(last=False)
        self.current = document.digest
        changed: dict[bytes, Mask] = {}
        for digest, old in self._remembered.items():
            if digest != document.digest and old.shape == prints.shape:
                mask = old != prints
                mask.setflags(write=False)
                changed[digest] = mask
        self._changed = changed

    def changed(self, digest: bytes) -> Mask | None:
        """Slots a `digest` table must not speak for; None when it may speak for all.

        None for the current digest and for a digest never applied here (a peer ahead of
        us: its changed slots already describe the new targets).
        """
        return self._changed.get(digest)
