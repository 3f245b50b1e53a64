"""TableSigner: one sender's outgoing tables, numbered and signed the same way in every role.

Owns: the sender's sequence and turning a table's slots into a signed envelope under
the config in force. Checkers and aggregators both send through one; only the kind,
the AZ and the aggregate counts differ. Never: sends anything (urn.push does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from urn.wire import MAX_AZS, MAX_CHECKERS, Envelope, encode

if TYPE_CHECKING:
    from urn.clock import Clock
    from urn.source import Loaded
    from urn.wire import TableKind

__all__ = ["SEQUENCE_PER_SECOND", "TableSigner", "seed_sequence"]

# Sequences start at the wall time in nanoseconds, so a restarted sender's tables are
# newer than anything it sent before (receivers refuse anything else as a replay: see
# urn.wire.SequenceGuard). Nanoseconds because checkers have always seeded so, and a
# receiver remembers every sender's last sequence: a coarser unit would make an upgraded
# checker's tables older than its own last ones to every aggregator still running.
# 2**64 ns from 1970 lasts until the year 2554.
SEQUENCE_PER_SECOND = 1_000_000_000


def seed_sequence(wall: float) -> int:
    """The first sequence of a sender started at wall-clock time `wall` (seconds)."""
    return int(wall * SEQUENCE_PER_SECOND)


class TableSigner:
    """Numbers and signs one sender's tables: each `sign` is the next sequence."""

    __slots__ = ("_clock", "az", "kind", "sender", "sequence")

    def __init__(self, kind: TableKind, sender: str, clock: Clock, *, az: str = "") -> None:
        self.kind = kind
        self.sender = sender
        self.az = az
        self._clock = clock
        self.sequence = seed_sequence(clock.time())  # the last one used

    def sign(self, loaded: Loaded, slots: bytes, *, checkers: int = 0, azs: int = 0) -> bytes:
        """The signed envelope of `slots`, stamped now, under `loaded`'s config and key.

        `checkers` and `azs` (aggregate tables) are capped at what the wire can carry.
        """
        document = loaded.document
        self.sequence += 1
        envelope = Envelope(
            kind=self.kind,
            sender=self.sender,
            az=self.az,
            sequence=self.sequence,
            generated_at=self._clock.time(),
            config_digest=document.digest,
            capacity=document.capacity,
            slots=slots,
            checkers=min(checkers, MAX_CHECKERS),
            azs=min(azs, MAX_AZS),
        )
        return encode(envelope, loaded.keys.signing)
