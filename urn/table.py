"""Slot values of the fixed-size status tables.

Owns: the meaning of every slot byte, for checker tables and aggregated tables.
Never: knows about sockets, clocks or envelopes; a table is just `capacity` bytes.
Cost: every helper here is O(capacity) array work or O(1) per slot; no Python loop
over slots.

Checker table: two planes of `capacity` bytes each (see `CheckerPlanes`):
  last    the `Reason` of the newest finished probe: 0 no data, 1 healthy, 2-9 a failure,
          10 the checker's own local error and 11 stale (both no data, with their cause);
          12-255 are failures of unknown kind, never healthy;
  history the checker's last 8 probe outcomes, bit 0 the newest, 1 = failed; positions
          before the slot's first probe are 0, so a fresh slot starts healthy.
A receiver therefore counts probes, not tables, and a table costs 2 bytes per slot
whatever the slots hold.
Aggregated table byte: bits 0-1 the `Status` (0 unknown, 1 healthy, 2 unhealthy),
bits 2-7 the dominant failure `Reason` (0 when not unhealthy).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

__all__ = [
    "CHECKER_SLOT_BYTES",
    "FAILURE_REASONS",
    "HISTORY_BITS",
    "NO_DATA_REASONS",
    "REASON_SHIFT",
    "STATUS_MASK",
    "CheckerPlanes",
    "Reason",
    "SlotArray",
    "Status",
    "aggregated_byte",
    "checker_table",
    "empty_table",
    "is_failure",
    "pack_aggregated",
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
    LOCAL = 10  # the checker's own trouble (EMFILE, ENOBUFS, its resolver): no data
    STALE = 11  # no probe of this slot finished recently enough to vouch for: no data

    @property
    def label(self) -> str:
        return self.name.lower()


FAILURE_REASONS: tuple[Reason, ...] = tuple(
    r for r in Reason if Reason.TIMEOUT <= r <= Reason.ERROR
)
NO_DATA_REASONS: tuple[Reason, ...] = (Reason.NO_DATA, Reason.LOCAL, Reason.STALE)
CHECKER_SLOT_BYTES = 2  # one `last` byte and one `history` byte per slot
HISTORY_BITS = 8


def is_failure(reason: int) -> bool:
    """Whether a checker's `last` byte is a target failure (unknown codes are)."""
    return reason >= Reason.TIMEOUT and reason not in NO_DATA_REASONS


class CheckerPlanes:
    """The two planes of a checker table over one buffer of `2 x capacity` bytes.

    Views, not copies: writing through `last` or `history` writes the buffer.
    """

    __slots__ = ("history", "last")

    def __init__(self, buffer: bytes | bytearray | memoryview, capacity: int) -> None:
        flat = np.frombuffer(buffer, dtype=np.uint8)
        if flat.shape[0] != CHECKER_SLOT_BYTES * capacity:
            raise ValueError(f"{flat.shape[0]} bytes is not a capacity-{capacity} checker table")
        self.last: SlotArray = flat[:capacity]
        self.history: SlotArray = flat[capacity:]


class Status(IntEnum):
    """An aggregator's verdict on a slot."""

    UNKNOWN = 0
    HEALTHY = 1
    UNHEALTHY = 2

    @property
    def label(self) -> str:
        return self.name.lower()


STATUS_MASK = 0b11  # aggregated byte: bits 0-1 the Status ...
REASON_SHIFT = 2  # ... bits 2-7 the dominant Reason
_STATUS_MASK, _REASON_SHIFT = STATUS_MASK, REASON_SHIFT


def aggregated_byte(status: Status, reason: Reason = Reason.NO_DATA) -> int:
    """One aggregated slot byte from its status and dominant reason."""
    return int(status) | (int(reason) << _REASON_SHIFT)


def pack_aggregated(statuses: SlotArray, reasons: SlotArray) -> SlotArray:
    """Aggregated bytes from per-slot statuses and dominant reasons (arrays alike)."""
    packed: SlotArray = (statuses | (reasons << np.uint8(_REASON_SHIFT))).astype(np.uint8)
    return packed


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


def checker_table(last: bytes | SlotArray, history: bytes | SlotArray | None = None) -> bytes:
    """A checker table's bytes from its `last` plane, and its history plane.

    Without `history`, each slot's history is its one `last` probe: failed or not.
    """
    last_array = np.frombuffer(bytes(last), dtype=np.uint8)
    if history is None:
        failed = (last_array >= Reason.TIMEOUT) & ~np.isin(last_array, NO_DATA_REASONS)
        history_array = failed.astype(np.uint8)
    else:
        history_array = np.frombuffer(bytes(history), dtype=np.uint8)
        if history_array.shape != last_array.shape:
            raise ValueError("history and last planes must be the same length")
    return last_array.tobytes() + history_array.tobytes()
