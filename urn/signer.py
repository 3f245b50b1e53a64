"""TableSigner: one sender's outgoing tables, numbered and signed the same way in every role.

Owns: the sender's sequence and turning a table's slots into a signed envelope under
the config in force, with its kind's key (urn.keys: checker tables under the push key,
aggregated tables under the table key). Checkers and aggregators both send through one;
only the kind, the AZ and the aggregate counts differ. Never: sends anything (urn.push
does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from urn.logs import get_logger
from urn.trust import trust_warnings
from urn.wire import MAX_AZS, MAX_CHECKERS, Envelope, encode

if TYPE_CHECKING:
    from urn.clock import Clock
    from urn.source import Loaded
    from urn.wire import TableKind

__all__ = ["SEQUENCE_PER_SECOND", "TableSigner", "seed_sequence"]

# Sequences follow the wall time in nanoseconds: each is max(last + 1, seed of now), so a
# restarted sender's tables are newer than anything it sent before (receivers refuse
# anything else as a replay: see urn.wire.SequenceGuard), a wall clock stepped back never
# locks a sender out (it counts on from its last), and one stepped forward (a host booted
# with an early clock, then corrected) moves on past what receivers remember.
# Nanoseconds because checkers have always seeded so, and a receiver remembers a sender's
# last sequence: a coarser unit would make an upgraded checker's tables older than its
# own last ones to every aggregator still running.
# 2**64 ns from 1970 lasts until the year 2554.
SEQUENCE_PER_SECOND = 1_000_000_000
log = get_logger("signer")


def seed_sequence(wall: float) -> int:
    """The first sequence of a sender started at wall-clock time `wall` (seconds)."""
    return int(wall * SEQUENCE_PER_SECOND)


class TableSigner:
    """Numbers and signs one sender's tables: each `sign` is the next sequence."""

    __slots__ = ("_clock", "_warned", "az", "kind", "sender", "sequence")

    def __init__(self, kind: TableKind, sender: str, clock: Clock, *, az: str = "") -> None:
        self.kind = kind
        self.sender = sender
        self.az = az
        self._clock = clock
        self.sequence = seed_sequence(clock.time())  # the last one used
        self._warned: tuple[str, ...] = ()

    def sign(
        self, loaded: Loaded, slots: bytes, *, checkers: int = 0, azs: int = 0, autoshift: str = ""
    ) -> bytes:
        """The signed envelope of `slots`, stamped now, under `loaded`'s config and key.

        `checkers` and `azs` (aggregate tables) are capped at what the wire can carry;
        `autoshift` (aggregate tables) names the AZ shifted away whole, "" none.
        """
        document = loaded.document
        self.sequence = max(self.sequence + 1, seed_sequence(self._clock.time()))
        warnings = tuple(trust_warnings(document, self.kind, receives=False))
        if warnings != self._warned:  # said once at start, and again when the config changes
            self._warned = warnings
            for warning in warnings:
                log.warning("weak_trust", sender=self.sender, detail=warning)
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
            autoshift=autoshift,
        )
        return encode(envelope, loaded.keys.for_kind(self.kind).signing)
