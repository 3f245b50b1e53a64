"""urn/wire.py's refusals word for word, and the edges of its framing (no I/O).

A receiver answers a refused table with `{"error": reason, "detail": str(exc)}` (urn.http),
so the detail is what a sender's operator reads: each rung of `decode` is built here from a
good envelope, re-signed where the MAC must pass, and its exact detail asserted.
"""

from __future__ import annotations

import hmac
import math
import struct

import pytest

from urn.errors import (
    BadMac,
    Oversized,
    Replayed,
    Skewed,
    Truncated,
    Undecodable,
    UnknownVersion,
    WireError,
    WrongCapacity,
    WrongKind,
)
from urn.wire import Envelope, SequenceGuard, TableKind, decode, encode, encoded_size

KEY = b"k" * 32
CAPACITY = 4
AGG = TableKind.AGGREGATE
HEAD = 142
SIZE = encoded_size(CAPACITY, AGG)
# Offsets into the head (docs/wire.md): version, kind, sender, az, generated_at, autoshift
# (each text's first byte, after its bin8 type and length), the slots' bin32 length.
VERSION_AT, KIND_AT, SENDER_AT, AZ_AT, TIME_AT, AUTOSHIFT_AT = 2, 4, 7, 41, 67, 121
SLOTS_LENGTH_AT = 138
# Version 2's head: fixarray of 12, no autoshift (124 bytes).
V2_HEAD = ">BBBBB BB32s BB16s BQ Bd BB32s BI BH BB BI"


def envelope(
    capacity: int = CAPACITY, sender: str = "agg-1", az: str = "a", autoshift: str = ""
) -> Envelope:
    return Envelope(
        kind=AGG,
        sender=sender,
        az=az,
        sequence=7,
        generated_at=1_700_000_000.0,
        config_digest=b"d" * 32,
        capacity=capacity,
        slots=bytes(capacity),
        autoshift=autoshift,
    )


def encode_v2(capacity: int = CAPACITY) -> bytes:
    """A well-formed version-2 aggregate table, signed with the accepted key."""
    head = struct.pack(
        V2_HEAD,
        *(0x9C, 0xCC, 2, 0xCC, int(AGG)),
        *(0xC4, 32, b"agg-1".ljust(32, b"\0"), 0xC4, 16, b"a".ljust(16, b"\0")),
        *(0xCF, 7, 0xCB, 1_700_000_000.0, 0xC4, 32, b"d" * 32),
        *(0xCE, capacity, 0xCD, 0, 0xCC, 0, 0xC6, capacity),
    )
    signed = head + bytes(capacity)
    return signed + b"\xc4\x20" + hmac.digest(KEY, signed, "sha256")


GOOD = encode(envelope(), KEY)


def patched(offset: int, raw: bytes, *, resign: bool = True, base: bytes = GOOD) -> bytes:
    data = base[:offset] + raw + base[offset + len(raw) :]
    if not resign:
        return data
    signed = data[: SIZE - 34]
    return signed + b"\xc4\x20" + hmac.digest(KEY, signed, "sha256")


def refusal(data: bytes, capacity: int = CAPACITY) -> WireError:
    with pytest.raises(WireError) as info:
        decode(data, (KEY,), capacity, AGG)
    return info.value


@pytest.mark.parametrize(
    ("data", "kind", "detail"),
    [
        (GOOD + b"\0", Oversized, f"{SIZE + 1} bytes, a capacity-4 table is {SIZE}"),
        (encode(envelope(8), KEY), WrongCapacity, "capacity 8, expected 4"),
        (b"", Undecodable, "not an urn table envelope"),
        (b"\x81\xa1a", Undecodable, "not an urn table envelope"),
        (b"\x9c\xcc\x01", UnknownVersion, "3-byte body of another format version"),
        (b"\x9a", UnknownVersion, "1-byte body of another format version"),
        (b"\x9c", UnknownVersion, "1-byte body of another format version"),
        (b"\x9d", Truncated, f"1 bytes, shorter than the {HEAD}-byte head"),
        (encode_v2()[:50], UnknownVersion, "50-byte body of another format version"),
        (encode_v2(), UnknownVersion, "version 2, this build speaks 3"),
        (GOOD[:50], Truncated, f"50 bytes, shorter than the {HEAD}-byte head"),
        (b"\x9d\x00" + GOOD[2:], Undecodable, "not an urn table envelope"),
        (b"\x9d\xcc\x05" + b"\0" * (SIZE - 3), UnknownVersion, "version 5, this build speaks 3"),
        (b"\x9c\xcc\x02" + b"\0" * (SIZE - 3), UnknownVersion, "version 2, this build speaks 3"),
        (patched(VERSION_AT, b"\x04"), UnknownVersion, "version 4, this build speaks 3"),
        (patched(VERSION_AT, b"\x02"), UnknownVersion, "version 2, this build speaks 3"),
        (patched(KIND_AT, b"\x03"), Undecodable, "unknown table kind 3"),
        (
            patched(SLOTS_LENGTH_AT, struct.pack(">I", 5)),
            Undecodable,
            "slot bytes length differs from the capacity's",
        ),
        (GOOD[:-1], Truncated, f"{SIZE - 1} bytes, a capacity-4 table is {SIZE}"),
        (GOOD[:-34] + b"\xc4\x10" + GOOD[-32:], Undecodable, "MAC field missing"),
        (patched(SIZE - 1, b"\0", resign=False), BadMac, "HMAC-SHA256 matches no accepted key"),
        (patched(SENDER_AT + 1, b"\0"), Undecodable, "sender holds a NUL before its padding"),
        (patched(SENDER_AT, b"\xff"), Undecodable, "sender is not UTF-8"),
        (patched(AZ_AT, b"a\0b"), Undecodable, "az holds a NUL before its padding"),
        (patched(AZ_AT, b"\xff"), Undecodable, "az is not UTF-8"),
        (patched(AUTOSHIFT_AT, b"b\0c"), Undecodable, "autoshift holds a NUL before its padding"),
        (patched(AUTOSHIFT_AT, b"\xff"), Undecodable, "autoshift is not UTF-8"),
        # One field named each, in order: sender, then az, then autoshift.
        (
            patched(AUTOSHIFT_AT, b"\xff", base=patched(SENDER_AT, b"\xff", resign=False)),
            Undecodable,
            "sender is not UTF-8",
        ),
        (
            patched(AUTOSHIFT_AT, b"b\0c", base=patched(AZ_AT, b"\xff", resign=False)),
            Undecodable,
            "az is not UTF-8",
        ),
        (
            patched(TIME_AT, struct.pack(">d", math.inf)),
            Undecodable,
            "generation time is not a finite number",
        ),
    ],
)
def test_each_refusal_names_what_is_wrong(data: bytes, kind: type[WireError], detail: str) -> None:
    error = refusal(data)
    assert type(error) is kind
    assert str(error) == detail


def test_a_bigger_tables_kind_is_named_before_its_size() -> None:
    checker = Envelope(
        kind=TableKind.CHECKER,
        sender="chk-1",
        az="a",
        sequence=1,
        generated_at=1.0,
        config_digest=b"d" * 32,
        capacity=CAPACITY,
        slots=bytes(2 * CAPACITY),
    )
    error = refusal(encode(checker, KEY))
    assert (type(error), str(error)) == (WrongKind, "checker table, expected aggregate")


def test_a_head_alone_still_names_a_capacity_mismatch() -> None:
    # Exactly the head of a capacity-8 table: too short to be one, but its capacity speaks.
    head = encode(envelope(8), KEY)[:HEAD]
    error = refusal(head)
    assert (type(error), str(error)) == (WrongCapacity, "capacity 8, expected 4")


def test_text_ending_in_x_survives_the_padding_strip() -> None:
    # The padding is NUL bytes only: no other trailing character may be taken for it.
    sent = envelope(sender="agg-XX", az="zone-X", autoshift="zone-X")
    got = decode(encode(sent, KEY), (KEY,), CAPACITY, AGG)
    assert (got.sender, got.az, got.autoshift) == ("agg-XX", "zone-X", "zone-X")


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"slots": bytes(3)}, "slots has 3 bytes, a capacity-4 aggregate table has 4"),
        ({"checkers": 70_000}, "checkers 70000 / azs 0 out of range"),
        ({"sender": "s" * 33}, f"sender {'s' * 33!r} must be at most 32 UTF-8 bytes without NUL"),
        ({"az": "a\0"}, "az 'a\\x00' must be at most 16 UTF-8 bytes without NUL"),
        (
            {"autoshift": "z" * 17},
            f"autoshift {'z' * 17!r} must be at most 16 UTF-8 bytes without NUL",
        ),
        ({"autoshift": "b\0"}, "autoshift 'b\\x00' must be at most 16 UTF-8 bytes without NUL"),
        ({"config_digest": b"d"}, "config_digest must be 32 bytes"),
        ({"sequence": 2**64}, f"sequence {2**64} does not fit 64 bits"),
    ],
)
def test_an_envelope_that_cannot_be_sent_says_why(fields: dict[str, object], detail: str) -> None:
    base: dict[str, object] = {
        "kind": AGG,
        "sender": "agg-1",
        "az": "a",
        "sequence": 7,
        "generated_at": 1.0,
        "config_digest": b"d" * 32,
        "capacity": CAPACITY,
        "slots": bytes(CAPACITY),
    }
    with pytest.raises(ValueError) as info:
        Envelope(**{**base, **fields})  # type: ignore[arg-type]
    assert str(info.value) == detail


def test_guard_refusals_say_by_how_much_and_what_came_before() -> None:
    guard = SequenceGuard(max_skew=10.0)
    late = envelope()
    with pytest.raises(Skewed) as skewed:
        guard.check(late, now=late.generated_at + 12.5)
    assert str(skewed.value) == "generated -12.5s from now, allowed ±10s"
    guard.commit(late, heard_at=0.0)
    with pytest.raises(Replayed) as replayed:
        guard.check(late, now=late.generated_at)
    assert str(replayed.value) == "sequence 7 from agg-1, last 7"


def test_a_sender_heard_again_is_not_forgotten_with_the_silent_ones() -> None:
    guard = SequenceGuard(max_skew=10.0)
    guard.commit(envelope(sender="a"), heard_at=0.0)
    guard.commit(envelope(sender="b"), heard_at=1.0)
    guard.commit(envelope(sender="a"), heard_at=15.0)  # `a` speaks again; `b` falls silent
    assert guard.forget_silent(now=25.0) == ["b"]  # horizon 5: b (1.0) is past it, a is not
    assert guard.last_sequence("a") == 7
    assert guard.last_sequence("b") is None
