"""The table envelope: fixed size, round trip, one typed error per rejection, never a crash."""

from __future__ import annotations

import hmac
import struct

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urn.errors import (
    WIRE_ERRORS,
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
from urn.table import Reason, Status, aggregated_byte
from urn.testing import TEST_PUSH_KEY, signed_table
from urn.wire import (
    SENDER_BYTES,
    VERSION,
    Envelope,
    SequenceGuard,
    TableKind,
    decode,
    encode,
    encoded_size,
)

CAPACITY = 10_000
KEYS = (TEST_PUSH_KEY,)
OTHER_KEY = b"some-other-key-not-the-test-one!"
NOW = 1_700_000_000.0


def envelope(
    slots: bytes | None = None,
    *,
    kind: TableKind = TableKind.CHECKER,
    sender: str = "chk-a1",
    az: str = "a",
    sequence: int = 1,
    generated_at: float = NOW,
    digest: bytes = b"\x11" * 32,
) -> Envelope:
    body = bytes(CAPACITY) if slots is None else slots
    return Envelope(
        kind=kind,
        sender=sender,
        az=az,
        sequence=sequence,
        generated_at=generated_at,
        config_digest=digest,
        capacity=len(body),
        slots=body,
    )


def resign(data: bytes | bytearray, key: bytes = TEST_PUSH_KEY) -> bytes:
    """Recompute the MAC of a (tampered) envelope, as a sender holding the key could."""
    body = bytes(data[:-32])
    return body + hmac.digest(key, body[:-2], "sha256")


VALID = encode(envelope(), TEST_PUSH_KEY)


# --- size depends on capacity alone ---------------------------------------------------


def test_encoded_size_is_the_same_for_healthy_failing_and_dummy_tables() -> None:
    healthy = bytes([Reason.HEALTHY]) * CAPACITY
    failing = bytes([Reason.TIMEOUT]) * CAPACITY
    dummy = bytes(CAPACITY)
    mixed = bytes(i % 10 for i in range(CAPACITY))
    aggregated = bytes([aggregated_byte(Status.UNHEALTHY, Reason.TLS)]) * CAPACITY
    sizes = {
        len(encode(envelope(slots), TEST_PUSH_KEY))
        for slots in (healthy, failing, dummy, mixed, aggregated)
    }
    assert sizes == {encoded_size(CAPACITY)}


@pytest.mark.parametrize(
    "fields",
    [
        {"sender": ""},
        {"sender": "x"},
        {"sender": "c" * SENDER_BYTES},
        {"sender": "é" * (SENDER_BYTES // 2)},
        {"az": ""},
        {"az": "eu-west-1a-long!"},
        {"sequence": 0},
        {"sequence": 1},
        {"sequence": 2**64 - 1},
        {"generated_at": 0.0},
        {"generated_at": -1.5},
        {"generated_at": 1e300},
        {"kind": TableKind.AGGREGATE},
        {"digest": b"\xff" * 32},
    ],
)
def test_encoded_size_does_not_depend_on_header_values(fields: dict[str, object]) -> None:
    assert len(encode(envelope(**fields), TEST_PUSH_KEY)) == encoded_size(CAPACITY)  # type: ignore[arg-type]


@pytest.mark.parametrize("capacity", [1, 2, 255, 256, 65_535, 65_536, 100_000])
def test_encoded_size_grows_one_byte_per_slot(capacity: int) -> None:
    data = encode(envelope(bytes(capacity)), TEST_PUSH_KEY)
    assert len(data) == encoded_size(capacity) == encoded_size(0) + capacity


# --- round trip and msgpack validity ---------------------------------------------------


@pytest.mark.parametrize("kind", list(TableKind))
def test_round_trip(kind: TableKind) -> None:
    original = envelope(
        bytes(i % 256 for i in range(CAPACITY)),
        kind=kind,
        sender="aggregator-eu-1",
        az="eu-west-1b",
        sequence=2**40 + 7,
        generated_at=NOW + 0.125,
        digest=bytes(range(32)),
    )
    assert decode(encode(original, TEST_PUSH_KEY), KEYS, CAPACITY, kind) == original


def test_decode_without_expected_kind_accepts_either() -> None:
    data = encode(envelope(kind=TableKind.AGGREGATE), TEST_PUSH_KEY)
    assert decode(data, KEYS, CAPACITY).kind is TableKind.AGGREGATE


def test_bytes_are_valid_msgpack_with_ten_fields() -> None:
    original = envelope(bytes([1, 2, 3]) * 3 + b"\0", sequence=42)
    data = encode(original, TEST_PUSH_KEY)
    fields = msgpack.unpackb(data)
    assert len(fields) == 10
    version, kind, sender, az, sequence, generated_at, digest, capacity, slots, mac = fields
    assert (version, kind, sequence, generated_at, capacity) == (VERSION, 1, 42, NOW, 10)
    assert sender == b"chk-a1".ljust(SENDER_BYTES, b"\0")
    assert az == b"a".ljust(16, b"\0")
    assert digest == original.config_digest
    assert slots == original.slots
    assert mac == hmac.digest(TEST_PUSH_KEY, data[:-34], "sha256")


# --- one error class per rejection -------------------------------------------------------


def test_every_wire_error_has_its_own_reason() -> None:
    reasons = [error.reason for error in WIRE_ERRORS]
    assert len(set(reasons)) == len(reasons)
    assert {error.http_status for error in WIRE_ERRORS} <= {400, 401, 409, 413}


def tampered(offset: int, value: int, *, sign: bool = True) -> bytes:
    data = bytearray(VALID)
    data[offset] = value
    return resign(data) if sign else bytes(data)


def _bigger_table() -> bytes:
    return encode(envelope(bytes(CAPACITY + 1)), TEST_PUSH_KEY)


def _smaller_table() -> bytes:
    return encode(envelope(bytes(CAPACITY - 1)), TEST_PUSH_KEY)


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        pytest.param(VALID[:-1] + bytes([VALID[-1] ^ 1]), BadMac, "bad_mac", id="flipped-mac"),
        pytest.param(tampered(200, 1, sign=False), BadMac, "bad_mac", id="flipped-slot-unsigned"),
        pytest.param(tampered(2, VERSION + 1), UnknownVersion, "version", id="version"),
        pytest.param(_bigger_table(), WrongCapacity, "capacity", id="bigger-capacity"),
        pytest.param(_smaller_table(), WrongCapacity, "capacity", id="smaller-capacity"),
        pytest.param(VALID[:-1], Truncated, "truncated", id="one-byte-short"),
        pytest.param(VALID[:50], Truncated, "truncated", id="inside-head"),
        pytest.param(VALID[:119], Truncated, "truncated", id="head-only"),
        pytest.param(VALID + b"\0", Oversized, "oversized", id="one-byte-long"),
        pytest.param(b"\0" * (2 * len(VALID)), Oversized, "oversized", id="huge"),
        pytest.param(b"", Undecodable, "undecodable", id="empty"),
        pytest.param(b"GET / HTTP/1.1\r\n", Undecodable, "undecodable", id="text"),
        pytest.param(b"x" * len(VALID), Undecodable, "undecodable", id="garbage-right-size"),
        pytest.param(
            msgpack.packb([1, 1, b"s", b"a", 1, NOW, b"d", CAPACITY, bytes(CAPACITY), b"m"]),
            Undecodable,
            "undecodable",
            id="msgpack-with-other-widths",
        ),
        pytest.param(tampered(4, 7), Undecodable, "undecodable", id="unknown-kind"),
        pytest.param(
            tampered(VALID.index(b"\xc4\x20", 110) + 1, 0x21),
            Undecodable,
            "undecodable",
            id="mac-marker",
        ),
    ],
)
def test_each_rejection_raises_its_own_error(
    data: bytes, error: type[WireError], reason: str
) -> None:
    with pytest.raises(error) as caught:
        decode(data, KEYS, CAPACITY, TableKind.CHECKER)
    assert type(caught.value) is error
    assert caught.value.reason == reason
    assert str(caught.value)


def test_wrong_kind() -> None:
    data = encode(envelope(kind=TableKind.CHECKER), TEST_PUSH_KEY)
    with pytest.raises(WrongKind) as caught:
        decode(data, KEYS, CAPACITY, TableKind.AGGREGATE)
    assert caught.value.reason == "kind"
    assert "checker table, expected aggregate" in str(caught.value)


def test_bad_mac_under_another_key() -> None:
    data = encode(envelope(), OTHER_KEY)
    with pytest.raises(BadMac) as caught:
        decode(data, KEYS, CAPACITY)
    assert caught.value.http_status == 401


def test_every_header_byte_is_covered_by_the_mac() -> None:
    """Flip each byte of the head and slots (not the MAC itself): never accepted."""
    mac_at = len(VALID) - 32
    for offset in [*range(119), 119, 119 + CAPACITY // 2, mac_at - 1]:
        data = bytearray(VALID)
        data[offset] ^= 0x01
        with pytest.raises(WireError):
            decode(bytes(data), KEYS, CAPACITY)


def test_signed_sender_with_nul_inside_is_undecodable() -> None:
    """A key holder could sign any sender bytes: a NUL inside must not crash the decoder."""
    data = bytearray(VALID)
    data[7 : 7 + 5] = b"ab\0cd"
    with pytest.raises(Undecodable):
        decode(resign(data), KEYS, CAPACITY)


def test_signed_sender_not_utf8_is_undecodable() -> None:
    data = bytearray(VALID)
    data[7] = 0xFF
    with pytest.raises(Undecodable):
        decode(resign(data), KEYS, CAPACITY)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_signed_non_finite_time_is_undecodable(value: float) -> None:
    data = bytearray(VALID)
    struct.pack_into(">d", data, 67, value)
    with pytest.raises(Undecodable):
        decode(resign(data), KEYS, CAPACITY)


def test_mismatched_slot_length_prefix_is_undecodable() -> None:
    data = bytearray(VALID)
    struct.pack_into(">I", data, 115, CAPACITY - 1)
    with pytest.raises(Undecodable):
        decode(resign(data), KEYS, CAPACITY)


# --- key rotation ------------------------------------------------------------------------


def test_table_signed_with_a_previous_key_is_accepted_while_listed() -> None:
    new_key = b"the-new-push-key-after-rotation!"
    old = encode(envelope(sequence=5), TEST_PUSH_KEY)
    new = encode(envelope(sequence=6), new_key)
    during = (new_key, TEST_PUSH_KEY)
    assert decode(old, during, CAPACITY).sequence == 5
    assert decode(new, during, CAPACITY).sequence == 6
    with pytest.raises(BadMac):
        decode(old, (new_key,), CAPACITY)


def test_no_keys_accepts_nothing() -> None:
    with pytest.raises(BadMac):
        decode(VALID, (), CAPACITY)


# --- Envelope refuses what cannot be encoded --------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"sender": "x" * (SENDER_BYTES + 1)},
        {"sender": "a\0b"},
        {"az": "z" * 17},
        {"sequence": -1},
        {"sequence": 2**64},
        {"digest": b"short"},
    ],
)
def test_envelope_refuses_fields_that_do_not_fit(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        envelope(**fields)  # type: ignore[arg-type]


def test_envelope_refuses_slots_not_matching_capacity() -> None:
    with pytest.raises(ValueError):
        Envelope(TableKind.CHECKER, "c", "a", 1, NOW, bytes(32), capacity=3, slots=b"\0\0")


# --- SequenceGuard ----------------------------------------------------------------------


def test_guard_accepts_increasing_sequences_per_sender() -> None:
    guard = SequenceGuard(max_skew=30)
    for sender, sequence in [("c1", 1), ("c2", 1), ("c1", 2), ("c2", 5), ("c1", 10)]:
        env = envelope(sender=sender, sequence=sequence)
        guard.check(env, NOW)
        guard.commit(env)
    assert guard.last_sequence("c1") == 10
    assert guard.last_sequence("c2") == 5
    assert guard.last_sequence("c3") is None


@pytest.mark.parametrize("sequence", [1, 9, 10])
def test_guard_rejects_replayed_or_old_sequence(sequence: int) -> None:
    guard = SequenceGuard(max_skew=30)
    guard.commit(envelope(sequence=10))
    with pytest.raises(Replayed) as caught:
        guard.check(envelope(sequence=sequence), NOW)
    assert caught.value.reason == "replayed"
    assert caught.value.http_status == 409


@pytest.mark.parametrize("offset", [-30.001, 30.001, -1e6, 1e6])
def test_guard_rejects_skewed_time(offset: float) -> None:
    guard = SequenceGuard(max_skew=30)
    with pytest.raises(Skewed) as caught:
        guard.check(envelope(generated_at=NOW + offset), NOW)
    assert caught.value.reason == "skew"


@pytest.mark.parametrize("offset", [-30.0, 0.0, 30.0])
def test_guard_accepts_time_within_skew(offset: float) -> None:
    SequenceGuard(max_skew=30).check(envelope(generated_at=NOW + offset), NOW)


def test_guard_check_never_changes_state() -> None:
    guard = SequenceGuard(max_skew=30)
    guard.commit(envelope(sender="c1", sequence=10))
    guard.check(envelope(sender="c1", sequence=11), NOW)
    guard.check(envelope(sender="c2", sequence=1), NOW)
    for bad in (envelope(sender="c1", sequence=3), envelope(sequence=99, generated_at=0.0)):
        with pytest.raises(WireError):
            guard.check(bad, NOW)
    assert guard.last_sequence("c1") == 10
    assert guard.last_sequence("c2") is None
    # The accepted-but-uncommitted 11 did not advance anything: 11 is still acceptable.
    guard.check(envelope(sender="c1", sequence=11), NOW)


# --- properties: nothing but a WireError, ever ------------------------------------------

SMALL = 64
SMALL_VALID = signed_table(bytes(range(SMALL)), generated_at=NOW)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2 * encoded_size(SMALL)))
def test_random_bytes_only_ever_raise_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        decode(data, KEYS, SMALL, TableKind.CHECKER)


@settings(max_examples=500)
@given(st.binary(min_size=encoded_size(SMALL), max_size=encoded_size(SMALL)))
def test_random_bytes_of_the_exact_size_only_raise_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        decode(data, KEYS, SMALL, TableKind.CHECKER)


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(SMALL_VALID)
    for _ in range(draw(st.integers(1, 8))):
        offset = draw(st.integers(0, len(data) - 1))
        data[offset] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=500)
@given(mutations(), st.booleans())
def test_mutated_envelopes_only_raise_wire_errors(data: bytes, sign: bool) -> None:
    """Byte mutations, optionally re-signed as a key holder would: decode or WireError."""
    if data == SMALL_VALID:
        return
    if sign:
        data = resign(data)
    try:
        result = decode(data, KEYS, SMALL, TableKind.CHECKER)
    except WireError:
        return
    assert sign  # without a fresh MAC, no mutation may pass
    assert len(encode(result, TEST_PUSH_KEY)) == len(data)


@settings(max_examples=300)
@given(st.integers(0, len(SMALL_VALID) - 1), st.binary(max_size=64))
def test_truncated_or_extended_envelopes_only_raise_wire_errors(cut: int, tail: bytes) -> None:
    data = SMALL_VALID[:cut] + tail
    if data == SMALL_VALID:
        return
    with pytest.raises(WireError):
        decode(data, KEYS, SMALL, TableKind.CHECKER)


@settings(max_examples=200)
@given(
    st.binary(min_size=SMALL, max_size=SMALL),
    st.text(max_size=8).filter(lambda s: "\0" not in s),
    st.integers(0, 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_round_trip_property(slots: bytes, sender: str, sequence: int, at: float) -> None:
    original = envelope(slots, sender=sender, sequence=sequence, generated_at=at)
    data = encode(original, TEST_PUSH_KEY)
    assert len(data) == encoded_size(SMALL)
    assert decode(data, KEYS, SMALL, TableKind.CHECKER) == original
