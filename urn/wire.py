"""The table envelope: fixed-layout msgpack, authenticated with HMAC-SHA256.

Owns: turning an `Envelope` into bytes and back, and deciding whether bytes are one.
Never: touches sockets or clocks (`now` is an argument) or mutates receiver state
before every check has passed: `SequenceGuard.check` is pure, `commit` records.
Cost: encode and decode are O(capacity) memory copies plus one HMAC; the encoded
size is `encoded_size(capacity, kind)` whatever the slots hold, the sender is or the
sequence is, because every field has a fixed msgpack width (see docs/wire.md).
"""

from __future__ import annotations

import hmac
import math
import operator
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from urn.errors import (
    BadMac,
    Oversized,
    Replayed,
    Skewed,
    Truncated,
    Undecodable,
    UnknownVersion,
    WrongCapacity,
    WrongKind,
)
from urn.table import CHECKER_SLOT_BYTES

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "AZ_BYTES",
    "MAX_AZS",
    "MAX_CAPACITY",
    "MAX_CHECKERS",
    "SENDER_BYTES",
    "VERSION",
    "Envelope",
    "SequenceGuard",
    "TableKind",
    "decode",
    "encode",
    "encoded_size",
    "slot_bytes",
]

VERSION = 3
SENDER_BYTES = 32
AZ_BYTES = 16
DIGEST_BYTES = 32
MAC_BYTES = 32
MAX_CAPACITY = 1_000_000


class TableKind(IntEnum):
    CHECKER = 1
    AGGREGATE = 2


# Bytes per slot by kind: a checker slot carries its probe history (urn.table).
_SLOT_WIDTH = {TableKind.CHECKER: CHECKER_SLOT_BYTES, TableKind.AGGREGATE: 1}


def slot_bytes(capacity: int, kind: TableKind) -> int:
    """Length of the slots field of a `kind` table of `capacity` slots."""
    return capacity * _SLOT_WIDTH[kind]


# Element by element, every one with an explicit msgpack type so that widths never vary:
#   fixarray(13)
#   version uint8 | kind uint8 | sender bin8[32] | az bin8[16] | sequence uint64 |
#   generated_at float64 | config_digest bin8[32] | capacity uint32 | checkers uint16 |
#   azs uint8 | autoshift bin8[16] | slots bin32[slot_bytes] | mac bin8[32]
_HEAD = struct.Struct(">BBBBB BB32s BB16s BQ Bd BB32s BI BH BB BB16s BI")
_MAC_PREFIX = bytes((0xC4, MAC_BYTES))
_HEAD_SIZE = _HEAD.size
_TAIL_SIZE = len(_MAC_PREFIX) + MAC_BYTES
# Indexes into _HEAD.unpack(): the values, then the type bytes and widths that must match.
_VERSION, _KIND, _SENDER, _AZ, _SEQUENCE, _GENERATED_AT, _DIGEST = 2, 4, 7, 10, 12, 14, 17
_CAPACITY, _CHECKERS, _AZS, _AUTOSHIFT, _SLOTS_LENGTH = 19, 21, 23, 26, 28
_MARKERS = operator.itemgetter(0, 1, 3, 5, 6, 8, 9, 11, 13, 15, 16, 18, 20, 22, 24, 25, 27)
_EXPECTED_MARKERS = (
    0x9D,  # fixarray of 13
    0xCC,  # uint8 version
    0xCC,  # uint8 kind
    0xC4,  # bin8 sender ...
    SENDER_BYTES,
    0xC4,  # bin8 az ...
    AZ_BYTES,
    0xCF,  # uint64 sequence
    0xCB,  # float64 generated_at
    0xC4,  # bin8 config digest ...
    DIGEST_BYTES,
    0xCE,  # uint32 capacity
    0xCD,  # uint16 checkers
    0xCC,  # uint8 azs
    0xC4,  # bin8 autoshift ...
    AZ_BYTES,
    0xC6,  # bin32 slots (its uint32 length must equal slot_bytes(capacity, kind))
)
MAX_CHECKERS = 0xFFFF
MAX_AZS = 0xFF


def encoded_size(capacity: int, kind: TableKind) -> int:
    """Exact size in bytes of every `kind` envelope carrying `capacity` slots."""
    return _HEAD_SIZE + slot_bytes(capacity, kind) + _TAIL_SIZE


@dataclass(frozen=True, slots=True)
class Envelope:
    """One pushed table and who sent it."""

    kind: TableKind
    sender: str
    az: str
    sequence: int
    generated_at: float
    config_digest: bytes
    capacity: int
    slots: bytes
    checkers: int = 0  # aggregate tables: fresh checkers that built it (0 in checker tables)
    azs: int = 0  # aggregate tables: distinct AZs among those checkers
    autoshift: str = ""  # aggregate tables: the AZ the fleet shifted away ("" none)

    def __post_init__(self) -> None:
        expected = slot_bytes(self.capacity, self.kind)
        if len(self.slots) != expected:
            raise ValueError(
                f"slots has {len(self.slots)} bytes, a capacity-{self.capacity} "
                f"{self.kind.name.lower()} table has {expected}"
            )
        if not 0 <= self.checkers <= MAX_CHECKERS or not 0 <= self.azs <= MAX_AZS:
            raise ValueError(f"checkers {self.checkers} / azs {self.azs} out of range")
        _fixed_text("sender", self.sender, SENDER_BYTES)
        _fixed_text("az", self.az, AZ_BYTES)
        _fixed_text("autoshift", self.autoshift, AZ_BYTES)
        if len(self.config_digest) != DIGEST_BYTES:
            raise ValueError(f"config_digest must be {DIGEST_BYTES} bytes")
        if not 0 <= self.sequence < 2**64:
            raise ValueError(f"sequence {self.sequence} does not fit 64 bits")


def _fixed_text(name: str, text: str, width: int) -> bytes:
    raw = text.encode()
    if len(raw) > width or b"\0" in raw:
        raise ValueError(f"{name} {text!r} must be at most {width} UTF-8 bytes without NUL")
    return raw.ljust(width, b"\0")


def encode(envelope: Envelope, key: bytes) -> bytes:
    """The envelope's bytes, MAC included."""
    head = _HEAD.pack(
        _EXPECTED_MARKERS[0],
        0xCC,
        VERSION,
        0xCC,
        int(envelope.kind),
        0xC4,
        SENDER_BYTES,
        _fixed_text("sender", envelope.sender, SENDER_BYTES),
        0xC4,
        AZ_BYTES,
        _fixed_text("az", envelope.az, AZ_BYTES),
        0xCF,
        envelope.sequence,
        0xCB,
        envelope.generated_at,
        0xC4,
        DIGEST_BYTES,
        envelope.config_digest,
        0xCE,
        envelope.capacity,
        0xCD,
        envelope.checkers,
        0xCC,
        envelope.azs,
        0xC4,
        AZ_BYTES,
        _fixed_text("autoshift", envelope.autoshift, AZ_BYTES),
        0xC6,
        len(envelope.slots),
    )
    signed = head + envelope.slots
    return b"".join((signed, _MAC_PREFIX, hmac.digest(key, signed, "sha256")))


def decode(
    data: bytes,
    keys: Sequence[bytes],
    capacity: int,
    kind: TableKind,
) -> Envelope:
    """Parse and authenticate a `kind` table; raise the WireError naming the first thing wrong.

    Capacity, version and kind are named before the MAC is checked: they only decide which
    error a body gets, and a forged one still can never be accepted.

    Checks run cheapest first and the MAC before anything is believed, so a forged body
    can only ever produce BadMac or a structural error.
    """
    expected = encoded_size(capacity, kind)
    size = len(data)
    if size > expected:
        # Still name a capacity mismatch when the body is a well-formed bigger table.
        fields = _head(data) if size >= _HEAD_SIZE else None
        if fields is not None and fields[_CAPACITY] != capacity:
            raise WrongCapacity(f"capacity {fields[_CAPACITY]}, expected {capacity}")
        sent_kind = None if fields is None else _KINDS.get(fields[_KIND])
        if sent_kind is not None and sent_kind is not kind:  # a wider kind's table
            raise WrongKind(f"{sent_kind.name.lower()} table, expected {kind.name.lower()}")
        raise Oversized(f"{size} bytes, a capacity-{capacity} table is {expected}")
    if size < _HEAD_SIZE:
        if size == 0 or data[0] not in _ARRAY_HEADERS:
            raise Undecodable("not an urn table envelope")
        if data[0] != _EXPECTED_MARKERS[0] or (size > 2 and data[2] != VERSION):
            raise UnknownVersion(f"{size}-byte body of another format version")
        raise Truncated(f"{size} bytes, shorter than the {_HEAD_SIZE}-byte head")
    fields = _head(data)
    if fields is None:
        if data[0] in _ARRAY_HEADERS and data[1] == 0xCC and data[2] != VERSION:
            raise UnknownVersion(f"version {data[2]}, this build speaks {VERSION}")
        raise Undecodable("not an urn table envelope")
    if fields[_VERSION] != VERSION:
        raise UnknownVersion(f"version {fields[_VERSION]}, this build speaks {VERSION}")
    sent_capacity = fields[_CAPACITY]
    if sent_capacity != capacity:
        raise WrongCapacity(f"capacity {sent_capacity}, expected {capacity}")
    table_kind = _KINDS.get(fields[_KIND])
    if table_kind is None:
        raise Undecodable(f"unknown table kind {fields[_KIND]}")
    if table_kind is not kind:
        raise WrongKind(f"{table_kind.name.lower()} table, expected {kind.name.lower()}")
    if fields[_SLOTS_LENGTH] != slot_bytes(sent_capacity, table_kind):
        raise Undecodable("slot bytes length differs from the capacity's")
    if size < expected:
        raise Truncated(f"{size} bytes, a capacity-{capacity} table is {expected}")
    body_end = expected - _TAIL_SIZE
    if data[body_end : body_end + 2] != _MAC_PREFIX:
        raise Undecodable("MAC field missing")
    sent_mac = data[body_end + 2 :]
    signed = memoryview(data)[:body_end]
    for key in keys:
        if hmac.compare_digest(hmac.digest(key, signed, "sha256"), sent_mac):
            break
    else:
        raise BadMac("HMAC-SHA256 matches no accepted key")
    sender = _text(fields[_SENDER], "sender")
    az = _text(fields[_AZ], "az")
    autoshift = _text(fields[_AUTOSHIFT], "autoshift")
    generated_at = fields[_GENERATED_AT]
    if not math.isfinite(generated_at):
        raise Undecodable("generation time is not a finite number")
    # Every field was just proven to fit (fixed widths, NUL-free UTF-8, 64-bit sequence),
    # so skip Envelope.__post_init__'s re-validation, which cost more than the parsing.
    envelope: Envelope = object.__new__(Envelope)
    _set(envelope, "kind", table_kind)
    _set(envelope, "sender", sender)
    _set(envelope, "az", az)
    _set(envelope, "sequence", fields[_SEQUENCE])
    _set(envelope, "generated_at", generated_at)
    _set(envelope, "config_digest", fields[_DIGEST])
    _set(envelope, "capacity", sent_capacity)
    _set(envelope, "slots", data[_HEAD_SIZE:body_end])
    _set(envelope, "checkers", fields[_CHECKERS])
    _set(envelope, "azs", fields[_AZS])
    _set(envelope, "autoshift", autoshift)
    return envelope


def _text(raw: bytes, name: str) -> str:
    """A fixed-width text field without its NUL padding, or Undecodable."""
    text = raw.rstrip(b"\0")
    if b"\0" in text:
        # Only NUL padding may follow the text; a NUL inside could not be re-encoded.
        raise Undecodable(f"{name} holds a NUL before its padding")
    try:
        return text.decode()
    except UnicodeDecodeError:
        raise Undecodable(f"{name} is not UTF-8") from None


_set = object.__setattr__
_KINDS = {int(k): k for k in TableKind}
# Every fixarray header an envelope of some version has used: version 1 had 10 elements,
# version 2 had 12.
_ARRAY_HEADERS = frozenset((0x9A, 0x9C, _EXPECTED_MARKERS[0]))


def _head(data: bytes) -> tuple[Any, ...] | None:
    """The unpacked head if every msgpack type byte and width is where it must be."""
    fields = _HEAD.unpack_from(data)
    return fields if _MARKERS(fields) == _EXPECTED_MARKERS else None


class SequenceGuard:
    """Per-sender replay and clock-skew checks; `check` never changes state.

    Senders number their tables max(last + 1, wall-time seed) (urn.signer), so a restarted
    sender's tables are newer than anything it sent before. A sender silent, by the
    receiver's monotonic clock, for longer than 2 x `max_skew` is forgotten, so memory
    stays bounded while pods restart under new ids. That opens no replay: every table it
    sent before falling silent is by then more than `max_skew` old, and refused as skewed.
    """

    __slots__ = ("_heard", "_last", "max_skew")

    def __init__(self, max_skew: float) -> None:
        self.max_skew = max_skew
        self._last: dict[str, int] = {}
        self._heard: dict[str, float] = {}  # sender -> last commit (monotonic), oldest first

    def check(self, envelope: Envelope, now: float) -> None:
        """Refuse `envelope` if skewed from `now` (wall time) or not newer than the last."""
        if abs(envelope.generated_at - now) > self.max_skew:
            raise Skewed(
                f"generated {envelope.generated_at - now:+.1f}s from now, "
                f"allowed ±{self.max_skew:g}s"
            )
        last = self._last.get(envelope.sender)
        if last is not None and envelope.sequence <= last:
            raise Replayed(f"sequence {envelope.sequence} from {envelope.sender}, last {last}")

    def commit(self, envelope: Envelope, heard_at: float) -> None:
        """Record an accepted table; `heard_at` is the receiver's monotonic time."""
        sender = envelope.sender
        self._last[sender] = envelope.sequence
        self._heard.pop(sender, None)  # re-inserted last: the dict stays oldest first
        self._heard[sender] = heard_at

    def forget_silent(self, now: float) -> list[str]:
        """Forget every sender with no commit in the 2 x max_skew before `now` (monotonic);
        the senders forgotten. O(1) when there is none to forget."""
        horizon = now - 2 * self.max_skew
        forgotten = []
        for sender, heard in self._heard.items():
            if heard >= horizon:
                break
            forgotten.append(sender)
        for sender in forgotten:
            del self._heard[sender]
            del self._last[sender]
        return forgotten

    def last_sequence(self, sender: str) -> int | None:
        return self._last.get(sender)

    def __len__(self) -> int:
        return len(self._last)
