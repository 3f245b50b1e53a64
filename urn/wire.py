"""The table envelope: fixed-layout msgpack, authenticated with HMAC-SHA256.

Owns: turning an `Envelope` into bytes and back, and deciding whether bytes are one.
Never: touches sockets or clocks (`now` is an argument) or mutates receiver state
before every check has passed: `SequenceGuard.check` is pure, `commit` records.
Cost: encode and decode are O(capacity) memory copies plus one HMAC; the encoded
size is `encoded_size(capacity)` whatever the slots hold, the sender is or the
sequence is, because every field has a fixed msgpack width (see docs/wire.md).
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MAX_CAPACITY",
    "SENDER_BYTES",
    "VERSION",
    "Envelope",
    "SequenceGuard",
    "TableKind",
    "decode",
    "encode",
    "encoded_size",
]

VERSION = 1
SENDER_BYTES = 32
AZ_BYTES = 16
DIGEST_BYTES = 32
MAC_BYTES = 32
MAX_CAPACITY = 1_000_000


class TableKind(IntEnum):
    CHECKER = 1
    AGGREGATE = 2


# Element by element, every one with an explicit msgpack type so that widths never vary:
#   fixarray(10)
#   version uint8 | kind uint8 | sender bin8[32] | az bin8[16] | sequence uint64 |
#   generated_at float64 | config_digest bin8[32] | capacity uint32 | slots bin32[capacity] |
#   mac bin8[32]
_HEAD = struct.Struct(">BBBBB BB32s BB16s BQ Bd BB32s BI BI")
_HEAD_FORMAT_MARKERS = (0x9A, 0xCC, 0xCC, 0xC4, SENDER_BYTES, 0xC4, AZ_BYTES, 0xCF, 0xCB)
_MAC_PREFIX = bytes((0xC4, MAC_BYTES))
_HEAD_SIZE = _HEAD.size
_TAIL_SIZE = len(_MAC_PREFIX) + MAC_BYTES
# Offsets of fields we read before unpacking the whole head.
_VERSION_AT = 2
_KIND_AT = 4
_CAPACITY_AT = _HEAD_SIZE - 4 - 1 - 4


def encoded_size(capacity: int) -> int:
    """Exact size in bytes of every envelope carrying a table of `capacity` slots."""
    return _HEAD_SIZE + capacity + _TAIL_SIZE


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

    def __post_init__(self) -> None:
        if len(self.slots) != self.capacity:
            raise ValueError(f"slots has {len(self.slots)} bytes, capacity is {self.capacity}")
        _fixed_text("sender", self.sender, SENDER_BYTES)
        _fixed_text("az", self.az, AZ_BYTES)
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
        0x9A,
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
        0xC6,
        envelope.capacity,
    )
    signed = head + envelope.slots
    return b"".join((signed, _MAC_PREFIX, hmac.digest(key, signed, "sha256")))


def decode(
    data: bytes,
    keys: Sequence[bytes],
    capacity: int,
    kind: TableKind | None = None,
) -> Envelope:
    """Parse and authenticate `data`; raise the WireError naming the first thing wrong.

    Checks run cheapest first and the MAC before anything is believed, so a forged body
    can only ever produce BadMac or a structural error.
    """
    expected = encoded_size(capacity)
    size = len(data)
    if size > expected:
        # Still name a capacity mismatch when the body is a well-formed bigger table.
        if size >= _HEAD_SIZE and _looks_like_head(data) and _capacity_in(data) != capacity:
            raise WrongCapacity(f"capacity {_capacity_in(data)}, expected {capacity}")
        raise Oversized(f"{size} bytes, a capacity-{capacity} table is {expected}")
    if size < _HEAD_SIZE:
        if size == 0 or data[0] != 0x9A:
            raise Undecodable("not an urn table envelope")
        raise Truncated(f"{size} bytes, shorter than the {_HEAD_SIZE}-byte head")
    if not _looks_like_head(data):
        raise Undecodable("not an urn table envelope")
    if data[_VERSION_AT] != VERSION:
        raise UnknownVersion(f"version {data[_VERSION_AT]}, this build speaks {VERSION}")
    sent_capacity = _capacity_in(data)
    if sent_capacity != capacity:
        raise WrongCapacity(f"capacity {sent_capacity}, expected {capacity}")
    if struct.unpack_from(">I", data, _HEAD_SIZE - 4)[0] != sent_capacity:
        raise Undecodable("slot bytes length differs from capacity")
    if size < expected:
        raise Truncated(f"{size} bytes, a capacity-{capacity} table is {expected}")
    body_end = _HEAD_SIZE + capacity
    if data[body_end : body_end + 2] != _MAC_PREFIX:
        raise Undecodable("MAC field missing")
    sent_mac = data[body_end + 2 :]
    view = memoryview(data)
    if not any(
        hmac.compare_digest(hmac.digest(key, view[:body_end], "sha256"), sent_mac) for key in keys
    ):
        raise BadMac("HMAC-SHA256 matches no accepted push key")
    fields = _HEAD.unpack_from(data)
    try:
        table_kind = TableKind(fields[4])
    except ValueError:
        raise Undecodable(f"unknown table kind {fields[4]}") from None
    if kind is not None and table_kind is not kind:
        raise WrongKind(f"{table_kind.name.lower()} table, expected {kind.name.lower()}")
    sender_raw = fields[7].rstrip(b"\0")
    az_raw = fields[10].rstrip(b"\0")
    if b"\0" in sender_raw or b"\0" in az_raw:
        # Only NUL padding may follow the text; a NUL inside could not be re-encoded.
        raise Undecodable("sender or az holds a NUL before its padding")
    try:
        sender = sender_raw.decode()
        az = az_raw.decode()
    except UnicodeDecodeError:
        raise Undecodable("sender or az is not UTF-8") from None
    generated_at = fields[14]
    if generated_at != generated_at or generated_at in (float("inf"), float("-inf")):
        raise Undecodable("generation time is not a finite number")
    return Envelope(
        kind=table_kind,
        sender=sender,
        az=az,
        sequence=fields[12],
        generated_at=generated_at,
        config_digest=fields[17],
        capacity=sent_capacity,
        slots=data[_HEAD_SIZE:body_end],
    )


def _looks_like_head(data: bytes) -> bool:
    return (
        data[0] == 0x9A
        and data[1] == 0xCC
        and data[3] == 0xCC
        and data[5:7] == bytes((0xC4, SENDER_BYTES))
        and data[39:41] == bytes((0xC4, AZ_BYTES))
        and data[57] == 0xCF
        and data[66] == 0xCB
        and data[75:77] == bytes((0xC4, DIGEST_BYTES))
        and data[109] == 0xCE
        and data[114] == 0xC6
    )


def _capacity_in(data: bytes) -> int:
    value: int = struct.unpack_from(">I", data, _CAPACITY_AT)[0]
    return value


class SequenceGuard:
    """Per-sender replay and clock-skew checks; `check` never changes state.

    Senders seed their sequence from wall time at start, so a restarted sender's
    tables are newer than anything it sent before.
    """

    __slots__ = ("_last", "max_skew")

    def __init__(self, max_skew: float) -> None:
        self.max_skew = max_skew
        self._last: dict[str, int] = {}

    def check(self, envelope: Envelope, now: float) -> None:
        if abs(envelope.generated_at - now) > self.max_skew:
            raise Skewed(
                f"generated {envelope.generated_at - now:+.1f}s from now, "
                f"allowed ±{self.max_skew:g}s"
            )
        last = self._last.get(envelope.sender)
        if last is not None and envelope.sequence <= last:
            raise Replayed(f"sequence {envelope.sequence} from {envelope.sender}, last {last}")

    def commit(self, envelope: Envelope) -> None:
        self._last[envelope.sender] = envelope.sequence

    def last_sequence(self, sender: str) -> int | None:
        return self._last.get(sender)
