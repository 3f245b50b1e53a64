"""Event batches on the wire, and the sender/receiver bookkeeping around them.

Owns: the batch format (msgpack map + HMAC-SHA256 tail), its bounded decoder, the
sender's change outbox, and the receiver's per-sender stream state (epoch, sequence,
resync on a gap).
Never: touches sockets or clocks; `now` is passed in.
Cost: encoding and decoding are O(events in the batch); a batch of no changes is a
heartbeat of a few dozen bytes. That proportionality is the design under test.
"""

# urn: pure

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import msgpack

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "EVENTS_PATH",
    "Batch",
    "BatchError",
    "Outbox",
    "StreamVerdict",
    "Streams",
    "decode_batch",
    "encode_batch",
    "max_batch_bytes",
]

EVENTS_PATH = "/v1/events"
VERSION = 1
MAC_BYTES = 32


class BatchError(ValueError):
    """A batch that is rejected and changes nothing; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Batch:
    """One push: the changes since the last push (or the whole state when `snapshot`)."""

    sender: str
    az: str
    epoch: int  # changes whenever the sender restarts; a new epoch needs a snapshot
    sequence: int
    generated_at: float
    snapshot: bool
    events: tuple[tuple[int, int], ...]  # (slot, value)


def max_batch_bytes(capacity: int) -> int:
    """The largest valid encoding: every slot in one snapshot, plus the head and MAC."""
    return 256 + capacity * 8 + MAC_BYTES


def encode_batch(batch: Batch, key: bytes) -> bytes:
    flat: list[int] = []
    for slot, value in batch.events:
        flat.append(slot)
        flat.append(value)
    body: bytes = msgpack.packb(
        [
            VERSION,
            batch.sender,
            batch.az,
            batch.epoch,
            batch.sequence,
            batch.generated_at,
            batch.snapshot,
            flat,
        ]
    )
    return body + hmac.new(key, body, hashlib.sha256).digest()


def decode_batch(data: bytes, keys: Sequence[bytes], capacity: int) -> Batch:
    """Verify and decode; raise BatchError with a reason; never partially accept."""
    if len(data) > max_batch_bytes(capacity):
        raise BatchError("oversized", f"{len(data)} bytes")
    if len(data) <= MAC_BYTES:
        raise BatchError("truncated", f"{len(data)} bytes")
    body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    if not any(hmac.compare_digest(hmac.new(k, body, hashlib.sha256).digest(), mac) for k in keys):
        raise BatchError("bad_mac", "no accepted key signs this batch")
    try:
        fields = msgpack.unpackb(body, strict_map_key=True, max_array_len=2 * capacity + 16)
        version, sender, az, epoch, sequence, generated_at, snapshot, flat = fields
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise BatchError("undecodable", type(exc).__name__) from None
    if version != VERSION:
        raise BatchError("unknown_version", repr(version))
    if not (
        isinstance(sender, str)
        and isinstance(az, str)
        and isinstance(epoch, int)
        and isinstance(sequence, int)
        and isinstance(generated_at, float)
        and isinstance(snapshot, bool)
        and isinstance(flat, list)
        and len(flat) % 2 == 0
    ):
        raise BatchError("undecodable", "field types")
    slots = flat[0::2]
    values = flat[1::2]
    if not all(type(s) is int and 0 <= s < capacity for s in slots):
        raise BatchError("undecodable", "slot out of range")
    if not all(type(v) is int and 0 <= v < 256 for v in values):
        raise BatchError("undecodable", "value out of range")
    return Batch(
        sender, az, epoch, sequence, generated_at, snapshot, tuple(zip(slots, values, strict=False))
    )


@dataclass(slots=True)
class Outbox:
    """A sender's view of one peer stream: what the peer has, and what changed since.

    `record` keeps only the newest value per slot (a flap within one interval that ends
    where it began is sent anyway: the peer may have missed nothing, but the sender
    cannot know without comparing, and comparing is what `record` does on arrival).
    """

    capacity: int
    sender: str
    az: str
    epoch: int
    sequence: int = 0
    state: bytearray = field(init=False)
    pending: dict[int, int] = field(default_factory=dict)
    need_snapshot: bool = True
    last_sent_at: float = float("-inf")

    def __post_init__(self) -> None:
        self.state = bytearray(self.capacity)

    def record(self, slot: int, value: int) -> None:
        """A new value for `slot`; queued only when it differs from the current one."""
        if self.state[slot] != value:
            self.state[slot] = value
            self.pending[slot] = value

    def record_many(self, changes: Iterable[tuple[int, int]]) -> None:
        for slot, value in changes:
            self.record(slot, value)

    def due(self, now: float, heartbeat: float) -> bool:
        """Something to send: changes, a snapshot owed, or a heartbeat due."""
        return bool(self.pending) or self.need_snapshot or now - self.last_sent_at >= heartbeat

    def take(self, now: float) -> Batch:
        """The next batch; pending changes are handed over (resent only via a snapshot)."""
        self.sequence += 1
        self.last_sent_at = now
        if self.need_snapshot:
            self.need_snapshot = False
            self.pending.clear()
            events = tuple((s, v) for s, v in enumerate(self.state) if v)
            return Batch(self.sender, self.az, self.epoch, self.sequence, now, True, events)
        events = tuple(self.pending.items())
        self.pending.clear()
        return Batch(self.sender, self.az, self.epoch, self.sequence, now, False, events)

    def lost(self) -> None:
        """A batch did not arrive (timeout, error, or the peer asked to resync)."""
        self.need_snapshot = True


class StreamVerdict(Enum):
    APPLY = "apply"
    RESYNC = "resync"  # a gap or a new epoch without a snapshot: ask for one, apply nothing
    STALE = "stale"  # a replay or an older batch: ignore


@dataclass(slots=True)
class _Stream:
    epoch: int
    sequence: int
    last_seen: float


@dataclass(slots=True)
class Streams:
    """Receiver side: per-sender epoch and sequence; decides apply, resync or ignore."""

    streams: dict[str, _Stream] = field(default_factory=dict)

    def verdict(self, batch: Batch) -> StreamVerdict:
        stream = self.streams.get(batch.sender)
        if batch.snapshot:
            same_epoch = stream is not None and stream.epoch == batch.epoch
            if same_epoch and stream is not None and batch.sequence <= stream.sequence:
                return StreamVerdict.STALE
            return StreamVerdict.APPLY
        if stream is None or stream.epoch != batch.epoch:
            return StreamVerdict.RESYNC
        if batch.sequence <= stream.sequence:
            return StreamVerdict.STALE
        if batch.sequence != stream.sequence + 1:
            return StreamVerdict.RESYNC
        return StreamVerdict.APPLY

    def commit(self, batch: Batch, now: float) -> None:
        self.streams[batch.sender] = _Stream(batch.epoch, batch.sequence, now)

    def forget(self, sender: str) -> None:
        self.streams.pop(sender, None)

    def stale_senders(self, now: float, staleness: float) -> list[str]:
        return [s for s, st in self.streams.items() if now - st.last_seen > staleness]
