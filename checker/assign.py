"""Which checks this checker owns: all of them, k of N by shuffle sharding, then sidecar.

Owns: the assignment rule. Every checker computes it alone from the same document and
gets the same answer as every other checker, so no coordination is needed.
Never: looks at results, clocks or sockets; assignment depends on the document alone.
Cost: O(checks x listed checkers) hashes per config pass, never on the probe path.

Shuffle sharding is rendezvous (highest-random-weight) hashing: a check goes to the k
checkers with the highest blake2b(check key, checker id). It is a stable function of
(check, checker set): every process agrees, different checks get different k-subsets, and
adding or removing one checker moves only the checks that checker gains or loses.
"""

# urn: pure

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from urn.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from checker.settings import CheckerSettings
    from urn.config import Check, Document

__all__ = ["assigned_checks", "check_key", "position", "shard_owners"]


def check_key(check: Check) -> str:
    """What identifies a check for hashing: its slot and name (stable across edits)."""
    return f"{check.slot}/{check.name}"


def _weight(key: str, checker: str) -> int:
    digest = hashlib.blake2b(f"{key}\0{checker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def shard_owners(key: str, checkers: Sequence[str], k: int) -> tuple[str, ...]:
    """The k checkers (of `checkers`) that probe the check with this key."""
    ranked = sorted(checkers, key=lambda c: (_weight(key, c), c), reverse=True)
    return tuple(ranked[:k])


def assigned_checks(document: Document, settings: CheckerSettings) -> tuple[Check, ...]:
    """The probed checks this checker runs, in slot order; ConfigError if it has no place."""
    probed = [c for c in document.checks if c.is_probed]
    shard = document.assignment.shuffle_shard
    if shard is not None:
        listed = document.assignment.checkers
        if settings.id not in listed:
            raise ConfigError(
                "assignment.checkers",
                list(listed),
                f"does not list this checker {settings.id!r}, but shuffle_shard is {shard}:"
                " add it to the list or run without sharding",
            )
        probed = [c for c in probed if settings.id in shard_owners(check_key(c), listed, shard)]
    return tuple(sorted((c for c in probed if settings.selects(c)), key=lambda c: c.slot))


def position(document: Document, checker: str, check: Check) -> tuple[int, int] | None:
    """This checker's place (index, count) among the checkers that probe `check`.

    Known when the document names the checkers: the shuffle shard's k owners, or every
    checker in `assignment.checkers`. None when it does not (any checker may run every
    check), and then probe phases fall back to a per-checker hash.
    """
    listed = document.assignment.checkers
    if checker not in listed:
        return None
    shard = document.assignment.shuffle_shard
    owners = shard_owners(check_key(check), listed, shard) if shard is not None else tuple(listed)
    if checker not in owners:
        return None
    return owners.index(checker), len(owners)
