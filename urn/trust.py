"""What a table receiver trusts during one config pass, decided once per pass.

Owns: `ReceivePolicy`, the immutable answer to "which tables of this kind may change
state": capacity, the tier's accepted keys, the allowed skew and the sender allow-list,
built from (document, keys, kind) once per config pass; and `AllowList`, the matching
of sender ids against ids and fnmatch patterns. Also the trust warnings a role logs.
Never: reads the document, files or clocks per table, or does I/O; a receiver only reads
the policy in force (urn.http.TableReceiver).
Cost: building is O(allow-list entries); `AllowList.admits` is one set lookup plus, only
when patterns are listed, one match of a precompiled regular expression.
"""

# urn: pure

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from urn.wire import TableKind

if TYPE_CHECKING:
    from urn.config import Document
    from urn.keys import Keys

__all__ = ["AllowList", "ReceivePolicy", "receive_policy", "trust_warnings"]

_SPECIAL = frozenset("*?[")  # fnmatch's pattern characters; anything else is an exact id


@dataclass(frozen=True, slots=True)
class AllowList:
    """Sender ids a receiver accepts: exact ids, and fnmatch patterns (`chk-*`), matched
    case-sensitively on every platform."""

    entries: tuple[str, ...]
    _exact: frozenset[str]
    _patterns: re.Pattern[str] | None

    @classmethod
    def of(cls, entries: tuple[str, ...]) -> AllowList:
        patterns = [e for e in entries if _SPECIAL & set(e)]
        regex = "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)
        return cls(
            entries=entries,
            _exact=frozenset(e for e in entries if not _SPECIAL & set(e)),
            _patterns=re.compile(regex) if patterns else None,
        )

    def admits(self, sender: str) -> bool:
        if sender in self._exact:
            return True
        return self._patterns is not None and self._patterns.match(sender) is not None


@dataclass(frozen=True, slots=True)
class ReceivePolicy:
    """Everything a receiver of `kind` tables checks a table against, for one pass."""

    kind: TableKind
    capacity: int
    keys: tuple[bytes, ...] = field(repr=False)  # the tier's accepted keys, signing key first
    skew: float
    senders: AllowList | None = None  # None: any sender id
    warnings: tuple[str, ...] = ()  # what is weaker than it should be (trust_warnings)

    def admits(self, sender: str) -> bool:
        """Whether `sender` (MAC already verified) may send this receiver tables."""
        return self.senders is None or self.senders.admits(sender)

    @property
    def forget_after(self) -> float:
        """Silence after which the replay guard forgets a sender (urn.wire.SequenceGuard)."""
        return 2 * self.skew


def receive_policy(document: Document, keys: Keys, kind: TableKind) -> ReceivePolicy:
    """The policy of a `kind` receiver under `document` and the pass's `keys`."""
    senders = document.senders
    listed = senders.checkers if kind is TableKind.CHECKER else senders.aggregators
    return ReceivePolicy(
        kind=kind,
        capacity=document.capacity,
        keys=keys.for_kind(kind).accepted,
        skew=document.skew,
        senders=None if listed is None else AllowList.of(listed),
        warnings=tuple(trust_warnings(document, kind, receives=True)),
    )


def trust_warnings(document: Document, kind: TableKind, *, receives: bool) -> list[str]:
    """What is weaker than it should be for a role that sends (`receives=False`) or
    receives `kind` tables under `document`: one sentence each, for a start-up warning."""
    warnings = []
    if kind is TableKind.AGGREGATE and document.table_key is None:
        warnings.append(
            "table_key is not set: aggregated tables are signed and verified with the push"
            " keys, so any checker holding push_key can forge them; set table_key"
        )
    if kind is TableKind.AGGREGATE and receives and document.senders.aggregators is None:
        warnings.append(
            "senders.aggregators is not set: aggregated tables are accepted from any"
            " sender id; list the aggregator ids"
        )
    return warnings
