"""Slot values of the fixed-size status tables.

Owns: the meaning of every slot byte, for checker tables and aggregated tables.
Never: knows about sockets, clocks or envelopes; a table is just `capacity` bytes.
Cost: every helper here is O(capacity) array work or O(1) per slot; no Python loop
over slots.

Checker table byte:   0 no data, 1 healthy, >= 2 a failure `Reason`.
Aggregated table byte: bits 0-1 the `Status` (0 unknown, 1 healthy, 2 unhealthy),
bits 2-7 the dominant failure `Reason` (0 when not unhealthy).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

__all__ = [
    "FAILURE_REASONS",
    "Reason",
    "SlotArray",
    "Status",
    "aggregated_byte",
    "empty_table",
    "reason_of_byte",
    "reasons_of",
    "status_of_byte",
    "statuses_of",
]

SlotArray = npt.NDArray[np.uint8]


class Reason(IntEnum):
    """A checker's observation of one target; also the dominant cause of an unhealthy slot."""

    NO_DATA = 0
    HEALTHY = 1
    TIMEOUT = 2
    REFUSED = 3
    RESET = 4
    BAD_STATUS = 5
    BODY_MISMATCH = 6
    TLS = 7
    DNS = 8
    ERROR = 9  # anything else a probe can hit (unreachable network, protocol garbage)

    @property
    def label(self) -> str:
        return self.name.lower()


FAILURE_REASONS: tuple[Reason, ...] = tuple(r for r in Reason if r >= Reason.TIMEOUT)


class Status(IntEnum):
    """An aggregator's verdict on a slot."""

    UNKNOWN = 0
    HEALTHY = 1
    UNHEALTHY = 2

    @property
    def label(self) -> str:
        return self.name.lower()


_STATUS_MASK = 0b11
_REASON_SHIFT = 2


def aggregated_byte(status: Status, reason: Reason = Reason.NO_DATA) -> int:
    """One aggregated slot byte from its status and dominant reason."""
    return int(status) | (int(reason) << _REASON_SHIFT)


def statuses_of(table: SlotArray) -> SlotArray:
    """Status of every slot of an aggregated table."""
    return np.bitwise_and(table, np.uint8(_STATUS_MASK))


def reasons_of(table: SlotArray) -> SlotArray:
    """Dominant reason of every slot of an aggregated table."""
    return np.right_shift(table, np.uint8(_REASON_SHIFT))


def status_of_byte(value: int) -> Status:
    return Status(value & _STATUS_MASK)


def reason_of_byte(value: int) -> Reason:
    return Reason(value >> _REASON_SHIFT)


def empty_table(capacity: int) -> SlotArray:
    """A table of `capacity` dummy slots."""
    return np.zeros(capacity, dtype=np.uint8)
