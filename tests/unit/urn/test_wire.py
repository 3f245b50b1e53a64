"""The table envelope: fixed size, round trip, one typed error per rejection, never a crash."""

from __future__ import annotations

import hmac
import struct
from typing import TYPE_CHECKING

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.testing import TEST_PUSH_KEY, signed_table
from sim.testing.legacy import legacy_table
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
from urn.table import (
    FAILURE_REASONS,
    NO_DATA_REASONS,
    CheckerPlanes,
    Reason,
    Status,
    aggregated_byte,
    checker_table,
)
from urn.wire import (
    MAX_AZS,
    MAX_CHECKERS,
    SENDER_BYTES,
    VERSION,
    Envelope,
    SequenceGuard,
    TableKind,
    decode,
    encode,
    encoded_size,
    slot_bytes,
)

if TYPE_CHECKING:
    from urn.clock import FakeClock

CAPACITY = 10_000
KEYS = (TEST_PUSH_KEY,)
OTHER_KEY = b"some-other-key-not-the-test-one!"
NOW = 1_700_000_000.0
HEAD = 142  # bytes before the slots (docs/wire.md)
AUTOSHIFT_AT = 119  # its bin8 type byte, then the length 16, then the text
CHECKER, AGGREGATE = TableKind.CHECKER, TableKind.AGGREGATE


def envelope(
    slots: bytes | None = None,
    *,
    kind: TableKind = CHECKER,
    sender: str = "chk-a1",
    az: str = "a",
    sequence: int = 1,
    generated_at: float = NOW,
    digest: bytes = b"\x11" * 32,
    checkers: int = 0,
    azs: int = 0,
    autoshift: str = "",
) -> Envelope:
    """An envelope of `kind` around its whole slots field (both planes for a checker)."""
    body = bytes(slot_bytes(CAPACITY, kind)) if slots is None else slots
    return Envelope(
        kind=kind,
        sender=sender,
        az=az,
        sequence=sequence,
        generated_at=generated_at,
        config_digest=digest,
        capacity=len(body) // slot_bytes(1, kind),
        slots=body,
        checkers=checkers,
        azs=azs,
        autoshift=autoshift,
    )


def resign(data: bytes | bytearray, key: bytes = TEST_PUSH_KEY) -> bytes:
    """Recompute the MAC of a (tampered) envelope, as a sender holding the key could."""
    body = bytes(data[:-32])
    return body + hmac.digest(key, body[:-2], "sha256")


def encode_v1(capacity: int, kind: TableKind = CHECKER, key: bytes = TEST_PUSH_KEY) -> bytes:
    """A well-formed, signed version-1 envelope: fixarray of 10, one byte per slot."""
    slots = bytes([Reason.HEALTHY]) * capacity
    return legacy_table(1, slots, key=key, kind=kind, generated_at=NOW, digest=b"\x11" * 32)


def encode_v2(capacity: int, kind: TableKind = CHECKER, key: bytes = TEST_PUSH_KEY) -> bytes:
    """A well-formed, signed version-2 envelope: fixarray of 12, checkers/azs, no autoshift."""
    slots = bytes([Reason.HEALTHY]) * slot_bytes(capacity, kind)
    return legacy_table(2, slots, key=key, kind=kind, generated_at=NOW, digest=b"\x11" * 32)


VALID = encode(envelope(), TEST_PUSH_KEY)


# --- size depends on capacity and kind alone -------------------------------------------


def test_encoded_size_is_the_same_for_healthy_failing_and_dummy_checker_tables() -> None:
    lasts = {
        "healthy": bytes([Reason.HEALTHY]) * CAPACITY,
        "failing": bytes([Reason.TIMEOUT]) * CAPACITY,
        "dummy": bytes(CAPACITY),
        "mixed": bytes(i % 12 for i in range(CAPACITY)),
        "unknown-codes": bytes(range(12, 256)) * (CAPACITY // 244) + bytes(CAPACITY % 244),
    }
    histories = (None, bytes(CAPACITY), b"\xff" * CAPACITY, bytes(i % 256 for i in range(CAPACITY)))
    sizes = {
        len(encode(envelope(checker_table(last, history)), TEST_PUSH_KEY))
        for last in lasts.values()
        for history in histories
    }
    assert sizes == {encoded_size(CAPACITY, CHECKER)}


def test_encoded_size_is_the_same_for_every_aggregate_table() -> None:
    tables = [
        bytes([aggregated_byte(Status.UNHEALTHY, Reason.TLS)]) * CAPACITY,
        bytes([aggregated_byte(Status.HEALTHY)]) * CAPACITY,
        bytes(CAPACITY),
        bytes(i % 256 for i in range(CAPACITY)),
    ]
    sizes = {
        len(encode(envelope(table, kind=AGGREGATE, checkers=c, azs=a), TEST_PUSH_KEY))
        for table in tables
        for c, a in ((0, 0), (1, 1), (MAX_CHECKERS, MAX_AZS))
    }
    assert sizes == {encoded_size(CAPACITY, AGGREGATE)}


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
        {"digest": b"\xff" * 32},
        {"checkers": 0, "azs": 0},
        {"checkers": 1, "azs": 1},
        {"checkers": 300, "azs": 3},
        {"checkers": MAX_CHECKERS, "azs": MAX_AZS},
        {"autoshift": ""},
        {"autoshift": "b"},
        {"autoshift": "eu-west-1a-long!"},
        {"autoshift": "é" * 8},
    ],
)
@pytest.mark.parametrize("kind", list(TableKind))
def test_encoded_size_does_not_depend_on_header_values(
    fields: dict[str, object], kind: TableKind
) -> None:
    data = encode(envelope(kind=kind, **fields), TEST_PUSH_KEY)  # type: ignore[arg-type]
    assert len(data) == encoded_size(CAPACITY, kind)


@pytest.mark.parametrize("capacity", [0, 1, 2, 255, 256, 65_535, 65_536, 100_000])
def test_encoded_size_grows_two_bytes_per_checker_slot_and_one_per_aggregate_slot(
    capacity: int,
) -> None:
    checker = encode(envelope(bytes(2 * capacity)), TEST_PUSH_KEY)
    aggregate = encode(envelope(bytes(capacity), kind=AGGREGATE), TEST_PUSH_KEY)
    assert len(checker) == encoded_size(capacity, CHECKER) == 176 + 2 * capacity
    assert len(aggregate) == encoded_size(capacity, AGGREGATE) == 176 + capacity
    assert encoded_size(0, CHECKER) == encoded_size(0, AGGREGATE) == 176


@pytest.mark.parametrize("kind", list(TableKind))
def test_autoshift_width_never_changes_the_size(kind: TableKind) -> None:
    """No AZ shifted and a 16-byte AZ name shifted: the same bytes on the wire."""
    name = "eu-central-1c-x!"
    assert len(name.encode()) == 16
    none = encode(envelope(kind=kind, autoshift=""), TEST_PUSH_KEY)
    widest = encode(envelope(kind=kind, autoshift=name), TEST_PUSH_KEY)
    assert len(none) == len(widest) == encoded_size(CAPACITY, kind)


def test_slot_bytes_by_kind() -> None:
    assert [slot_bytes(c, CHECKER) for c in (0, 1, 64, 10_000)] == [0, 2, 128, 20_000]
    assert [slot_bytes(c, AGGREGATE) for c in (0, 1, 64, 10_000)] == [0, 1, 64, 10_000]


def test_encoded_size_requires_the_kind() -> None:
    with pytest.raises(TypeError):
        encoded_size(CAPACITY)  # type: ignore[call-arg]


# --- round trip and msgpack validity ---------------------------------------------------


@pytest.mark.parametrize("kind", list(TableKind))
def test_round_trip(kind: TableKind) -> None:
    original = envelope(
        bytes(i % 256 for i in range(slot_bytes(CAPACITY, kind))),
        kind=kind,
        sender="aggregator-eu-1",
        az="eu-west-1b",
        sequence=2**40 + 7,
        generated_at=NOW + 0.125,
        digest=bytes(range(32)),
        checkers=0 if kind is CHECKER else 37,
        azs=0 if kind is CHECKER else 3,
        autoshift="" if kind is CHECKER else "eu-west-1c",
    )
    assert decode(encode(original, TEST_PUSH_KEY), KEYS, CAPACITY, kind) == original


def test_autoshift_round_trips_in_an_aggregate_table() -> None:
    data = encode(envelope(bytes(CAPACITY), kind=AGGREGATE, autoshift="b"), TEST_PUSH_KEY)
    # On the wire: bin8 of 16 after azs, the AZ name right-padded with NUL.
    assert data[AUTOSHIFT_AT : AUTOSHIFT_AT + 18] == b"\xc4\x10" + b"b".ljust(16, b"\0")
    assert decode(data, KEYS, CAPACITY, AGGREGATE).autoshift == "b"


def test_a_checker_table_carries_no_autoshift() -> None:
    assert envelope().autoshift == ""
    assert VALID[AUTOSHIFT_AT : AUTOSHIFT_AT + 18] == b"\xc4\x10" + bytes(16)
    assert decode(VALID, KEYS, CAPACITY, CHECKER).autoshift == ""


def test_autoshift_is_covered_by_the_mac() -> None:
    data = encode(envelope(bytes(CAPACITY), kind=AGGREGATE, autoshift="b"), TEST_PUSH_KEY)
    for offset in (AUTOSHIFT_AT + 2, AUTOSHIFT_AT + 3, AUTOSHIFT_AT + 17):
        tampered_data = bytearray(data)
        tampered_data[offset] ^= 0x01
        with pytest.raises(BadMac):
            decode(bytes(tampered_data), KEYS, CAPACITY, AGGREGATE)


def test_checker_table_round_trips_both_planes() -> None:
    last = bytes(i % 14 for i in range(CAPACITY))  # every code, unknown ones included
    history = bytes((i * 37 + 5) % 256 for i in range(CAPACITY))
    assert last != history
    data = encode(envelope(checker_table(last, history)), TEST_PUSH_KEY)
    # On the wire: the whole `last` plane, then the whole `history` plane.
    assert data[HEAD : HEAD + CAPACITY] == last
    assert data[HEAD + CAPACITY : HEAD + 2 * CAPACITY] == history
    decoded = decode(data, KEYS, CAPACITY, CHECKER)
    planes = CheckerPlanes(decoded.slots, CAPACITY)
    assert planes.last.tobytes() == last
    assert planes.history.tobytes() == history


def test_checker_table_planes_are_not_interchangeable() -> None:
    """Swapping the planes is a different table: the MAC covers which byte is which."""
    last, history = bytes([Reason.TIMEOUT]) * 8, b"\x01" * 8
    swapped = bytearray(signed_table(last, history=history, generated_at=NOW))
    swapped[HEAD : HEAD + 16] = history + last
    with pytest.raises(BadMac):
        decode(bytes(swapped), KEYS, 8, CHECKER)
    decoded = decode(resign(swapped), KEYS, 8, CHECKER)
    assert CheckerPlanes(decoded.slots, 8).last.tobytes() == history


def test_default_history_is_the_one_last_probe() -> None:
    """Without a history plane each slot's history is 1 for a failure code, else 0."""
    last = bytes(range(256))
    planes = CheckerPlanes(checker_table(last), 256)
    assert planes.last.tobytes() == last
    failed = {int(r) for r in FAILURE_REASONS} | set(range(12, 256))
    assert [int(h) for h in planes.history] == [int(code in failed) for code in range(256)]
    for code in (*NO_DATA_REASONS, Reason.HEALTHY):
        assert planes.history[code] == 0


def test_checker_planes_refuse_a_buffer_of_another_size() -> None:
    with pytest.raises(ValueError):
        CheckerPlanes(bytes(CAPACITY), CAPACITY)
    with pytest.raises(ValueError):
        checker_table(bytes(4), bytes(3))


def test_signed_table_builds_both_planes() -> None:
    data = signed_table(bytes([Reason.TIMEOUT, Reason.HEALTHY]), history=b"\x0f\x80")
    planes = CheckerPlanes(decode(data, KEYS, 2, CHECKER).slots, 2)
    assert (planes.last.tolist(), planes.history.tolist()) == ([2, 1], [0x0F, 0x80])


@pytest.mark.parametrize(
    ("checkers", "azs"), [(0, 0), (1, 1), (2, 0), (0, 2), (12, 3), (MAX_CHECKERS, MAX_AZS)]
)
def test_checkers_and_azs_round_trip(checkers: int, azs: int) -> None:
    data = signed_table(bytes(16), kind=AGGREGATE, checkers=checkers, azs=azs, generated_at=NOW)
    decoded = decode(data, KEYS, 16, AGGREGATE)
    assert (decoded.checkers, decoded.azs) == (checkers, azs)
    assert struct.unpack_from(">BHBB", data, 114) == (0xCD, checkers, 0xCC, azs)


def test_checkers_and_azs_are_covered_by_the_mac() -> None:
    data = bytearray(signed_table(bytes(16), kind=AGGREGATE, checkers=5, azs=2))
    for offset in (115, 116, 118):
        tampered_data = bytearray(data)
        tampered_data[offset] ^= 0x01
        with pytest.raises(BadMac):
            decode(bytes(tampered_data), KEYS, 16, AGGREGATE)


def test_decode_requires_the_expected_kind() -> None:
    data = encode(envelope(bytes(CAPACITY), kind=AGGREGATE), TEST_PUSH_KEY)
    with pytest.raises(TypeError):
        decode(data, KEYS, CAPACITY)  # type: ignore[call-arg]
    assert decode(data, KEYS, CAPACITY, AGGREGATE).kind is AGGREGATE
    assert decode(VALID, KEYS, CAPACITY, CHECKER).kind is CHECKER


def test_bytes_are_valid_msgpack_with_thirteen_fields() -> None:
    original = envelope(bytes([1, 2, 3]) * 3 + b"\0", sequence=42, checkers=7, azs=2)
    data = encode(original, TEST_PUSH_KEY)
    assert data[0] == 0x9D
    fields = msgpack.unpackb(data)
    assert len(fields) == 13
    version, kind, sender, az, sequence, generated_at, digest, capacity, *rest = fields
    checkers, azs, autoshift, slots, mac = rest
    assert (version, kind, sequence, generated_at, capacity) == (VERSION, 1, 42, NOW, 5)
    assert (checkers, azs) == (7, 2)
    assert autoshift == bytes(16)
    assert sender == b"chk-a1".ljust(SENDER_BYTES, b"\0")
    assert az == b"a".ljust(16, b"\0")
    assert digest == original.config_digest
    assert slots == original.slots
    assert len(slots) == 2 * capacity
    assert mac == hmac.digest(TEST_PUSH_KEY, data[:-34], "sha256")


# --- one error class per rejection -------------------------------------------------------


def test_every_wire_error_has_its_own_reason() -> None:
    reasons = [error.reason for error in WIRE_ERRORS]
    assert len(set(reasons)) == len(reasons)
    assert {error.http_status for error in WIRE_ERRORS} <= {400, 401, 403, 409, 413}


def tampered(offset: int, value: int, *, sign: bool = True) -> bytes:
    data = bytearray(VALID)
    data[offset] = value
    return resign(data) if sign else bytes(data)


def _bigger_table() -> bytes:
    return encode(envelope(bytes(2 * (CAPACITY + 1))), TEST_PUSH_KEY)


def _smaller_table() -> bytes:
    return encode(envelope(bytes(2 * (CAPACITY - 1))), TEST_PUSH_KEY)


MAC_MARKER_AT = HEAD + slot_bytes(CAPACITY, CHECKER)


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        pytest.param(VALID[:-1] + bytes([VALID[-1] ^ 1]), BadMac, "bad_mac", id="flipped-mac"),
        pytest.param(tampered(200, 1, sign=False), BadMac, "bad_mac", id="flipped-slot-unsigned"),
        pytest.param(
            tampered(HEAD + CAPACITY + 5, 1, sign=False),
            BadMac,
            "bad_mac",
            id="flipped-history-unsigned",
        ),
        pytest.param(tampered(2, VERSION + 1), UnknownVersion, "version", id="version"),
        pytest.param(tampered(2, 1), UnknownVersion, "version", id="version-1-in-a-v3-body"),
        pytest.param(tampered(2, 2), UnknownVersion, "version", id="version-2-in-a-v3-body"),
        pytest.param(encode_v1(CAPACITY), UnknownVersion, "version", id="v1-envelope"),
        pytest.param(
            encode_v1(CAPACITY, key=OTHER_KEY), UnknownVersion, "version", id="v1-other-key"
        ),
        pytest.param(encode_v1(CAPACITY)[:50], UnknownVersion, "version", id="v1-inside-head"),
        pytest.param(b"\x9a", UnknownVersion, "version", id="v1-array-header-only"),
        pytest.param(encode_v2(CAPACITY), UnknownVersion, "version", id="v2-envelope"),
        pytest.param(
            encode_v2(CAPACITY, key=OTHER_KEY), UnknownVersion, "version", id="v2-other-key"
        ),
        pytest.param(encode_v2(CAPACITY)[:50], UnknownVersion, "version", id="v2-inside-head"),
        pytest.param(encode_v2(CAPACITY)[:124], UnknownVersion, "version", id="v2-head-only"),
        pytest.param(b"\x9c", UnknownVersion, "version", id="v2-array-header-only"),
        pytest.param(_bigger_table(), WrongCapacity, "capacity", id="bigger-capacity"),
        pytest.param(_smaller_table(), WrongCapacity, "capacity", id="smaller-capacity"),
        pytest.param(VALID[:-1], Truncated, "truncated", id="one-byte-short"),
        pytest.param(VALID[:50], Truncated, "truncated", id="inside-head"),
        pytest.param(VALID[:1], Truncated, "truncated", id="array-header-only"),
        pytest.param(VALID[:HEAD], Truncated, "truncated", id="head-only"),
        pytest.param(VALID[: HEAD + CAPACITY], Truncated, "truncated", id="last-plane-only"),
        pytest.param(VALID + b"\0", Oversized, "oversized", id="one-byte-long"),
        pytest.param(b"\0" * (2 * len(VALID)), Oversized, "oversized", id="huge"),
        pytest.param(b"", Undecodable, "undecodable", id="empty"),
        pytest.param(b"GET / HTTP/1.1\r\n", Undecodable, "undecodable", id="text"),
        pytest.param(b"x" * len(VALID), Undecodable, "undecodable", id="garbage-right-size"),
        pytest.param(
            msgpack.packb(
                [
                    VERSION,
                    1,
                    b"s",
                    b"a",
                    1,
                    NOW,
                    b"d",
                    CAPACITY,
                    0,
                    0,
                    b"",
                    bytes(2 * CAPACITY),
                    b"m",
                ]
            ),
            Undecodable,
            "undecodable",
            id="msgpack-with-other-widths",
        ),
        pytest.param(tampered(4, 7), Undecodable, "undecodable", id="unknown-kind"),
        pytest.param(
            tampered(4, 7, sign=False), Undecodable, "undecodable", id="unknown-kind-unsigned"
        ),
        pytest.param(tampered(114, 0xCC), Undecodable, "undecodable", id="checkers-type-byte"),
        pytest.param(tampered(117, 0xCD), Undecodable, "undecodable", id="azs-type-byte"),
        pytest.param(
            tampered(AUTOSHIFT_AT, 0xC5), Undecodable, "undecodable", id="autoshift-type-byte"
        ),
        pytest.param(
            tampered(AUTOSHIFT_AT + 1, 0x11), Undecodable, "undecodable", id="autoshift-width"
        ),
        pytest.param(
            tampered(MAC_MARKER_AT + 1, 0x21), Undecodable, "undecodable", id="mac-marker"
        ),
    ],
)
def test_each_rejection_raises_its_own_error(
    data: bytes, error: type[WireError], reason: str
) -> None:
    with pytest.raises(error) as caught:
        decode(data, KEYS, CAPACITY, CHECKER)
    assert type(caught.value) is error
    assert caught.value.reason == reason
    assert str(caught.value)


@pytest.mark.parametrize("kind", list(TableKind))
def test_a_version_1_envelope_is_refused_as_version(kind: TableKind) -> None:
    """A genuine v1 table, signed with an accepted key, of either kind: never read as v2."""
    for capacity in (1, 64, CAPACITY):
        with pytest.raises(UnknownVersion) as caught:
            decode(encode_v1(capacity, kind), KEYS, capacity, kind)
        assert "version 1" in str(caught.value)


@pytest.mark.parametrize("kind", list(TableKind))
def test_a_version_2_envelope_is_refused_as_version(kind: TableKind) -> None:
    """A genuine v2 table (no autoshift), signed with an accepted key: never read as v3."""
    for capacity in (1, 64, CAPACITY):
        data = encode_v2(capacity, kind)
        assert len(data) == 158 + slot_bytes(capacity, kind) < encoded_size(capacity, kind)
        with pytest.raises(UnknownVersion) as caught:
            decode(data, KEYS, capacity, kind)
        assert str(caught.value) == "version 2, this build speaks 3"


@pytest.mark.parametrize("kind", list(TableKind))
def test_a_bigger_version_2_envelope_of_the_exact_size_is_refused_as_version(
    kind: TableKind,
) -> None:
    """A v2 table 18 bytes of slots bigger has exactly a v3 table's size: still `version`."""
    extra = 18 // slot_bytes(1, kind)
    data = encode_v2(64 + extra, kind)
    assert len(data) == encoded_size(64, kind)
    with pytest.raises(UnknownVersion):
        decode(data, KEYS, 64, kind)


def test_wrong_kind_aggregate_table_to_a_checker_receiver() -> None:
    data = encode(envelope(bytes(CAPACITY), kind=AGGREGATE), TEST_PUSH_KEY)
    with pytest.raises(WrongKind) as caught:
        decode(data, KEYS, CAPACITY, CHECKER)
    assert caught.value.reason == "kind"
    assert "aggregate table, expected checker" in str(caught.value)


def test_wrong_kind_is_refused_before_the_mac() -> None:
    data = encode(envelope(bytes(CAPACITY), kind=AGGREGATE), OTHER_KEY)
    with pytest.raises(WrongKind):
        decode(data, KEYS, CAPACITY, CHECKER)


def test_wrong_kind_checker_table_to_an_aggregate_receiver() -> None:
    with pytest.raises(WrongKind) as caught:
        decode(VALID, KEYS, CAPACITY, AGGREGATE)
    assert "checker table, expected aggregate" in str(caught.value)


def test_checker_table_to_an_aggregate_receiver_is_never_accepted() -> None:
    with pytest.raises(WireError):
        decode(VALID, KEYS, CAPACITY, AGGREGATE)
    # Nor a checker table of half the capacity, whose size is an aggregate table's.
    half = encode(envelope(bytes(CAPACITY)), TEST_PUSH_KEY)
    assert len(half) == encoded_size(CAPACITY, AGGREGATE)
    with pytest.raises(WrongCapacity):
        decode(half, KEYS, CAPACITY, AGGREGATE)


def test_bad_mac_under_another_key() -> None:
    data = encode(envelope(), OTHER_KEY)
    with pytest.raises(BadMac) as caught:
        decode(data, KEYS, CAPACITY, CHECKER)
    assert caught.value.http_status == 401


def test_every_header_byte_is_covered_by_the_mac() -> None:
    """Flip each byte of the head and both slot planes (not the MAC itself): never accepted."""
    mac_at = len(VALID) - 32
    offsets = [*range(HEAD), HEAD, HEAD + CAPACITY // 2, HEAD + CAPACITY, HEAD + 3 * CAPACITY // 2]
    for offset in [*offsets, mac_at - 1]:
        data = bytearray(VALID)
        data[offset] ^= 0x01
        with pytest.raises(WireError):
            decode(bytes(data), KEYS, CAPACITY, CHECKER)


def test_signed_sender_with_nul_inside_is_undecodable() -> None:
    """A key holder could sign any sender bytes: a NUL inside must not crash the decoder."""
    data = bytearray(VALID)
    data[7 : 7 + 5] = b"ab\0cd"
    with pytest.raises(Undecodable):
        decode(resign(data), KEYS, CAPACITY, CHECKER)


def test_signed_sender_not_utf8_is_undecodable() -> None:
    data = bytearray(VALID)
    data[7] = 0xFF
    with pytest.raises(Undecodable):
        decode(resign(data), KEYS, CAPACITY, CHECKER)


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"b\0c", "autoshift holds a NUL before its padding"),
        (b"\0b", "autoshift holds a NUL before its padding"),
        (b"\xff", "autoshift is not UTF-8"),
        (b"\xc3", "autoshift is not UTF-8"),  # a truncated two-byte sequence
    ],
)
def test_signed_autoshift_that_is_not_nul_free_utf8_is_undecodable(raw: bytes, detail: str) -> None:
    data = bytearray(encode(envelope(bytes(CAPACITY), kind=AGGREGATE), TEST_PUSH_KEY))
    data[AUTOSHIFT_AT + 2 : AUTOSHIFT_AT + 2 + len(raw)] = raw
    with pytest.raises(Undecodable) as caught:
        decode(resign(data), KEYS, CAPACITY, AGGREGATE)
    assert str(caught.value) == detail


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_signed_non_finite_time_is_undecodable(value: float) -> None:
    data = bytearray(VALID)
    struct.pack_into(">d", data, 67, value)
    with pytest.raises(Undecodable):
        decode(resign(data), KEYS, CAPACITY, CHECKER)


@pytest.mark.parametrize("length", [2 * CAPACITY - 1, 2 * CAPACITY + 1, CAPACITY, 0])
def test_mismatched_slot_length_prefix_is_undecodable(length: int) -> None:
    data = bytearray(VALID)
    assert struct.unpack_from(">BI", data, HEAD - 5) == (0xC6, 2 * CAPACITY)
    struct.pack_into(">I", data, HEAD - 4, length)
    with pytest.raises(Undecodable):
        decode(resign(data), KEYS, CAPACITY, CHECKER)


# --- key rotation ------------------------------------------------------------------------


def test_table_signed_with_a_previous_key_is_accepted_while_listed() -> None:
    new_key = b"the-new-push-key-after-rotation!"
    old = encode(envelope(sequence=5), TEST_PUSH_KEY)
    new = encode(envelope(sequence=6), new_key)
    during = (new_key, TEST_PUSH_KEY)
    assert decode(old, during, CAPACITY, CHECKER).sequence == 5
    assert decode(new, during, CAPACITY, CHECKER).sequence == 6
    with pytest.raises(BadMac):
        decode(old, (new_key,), CAPACITY, CHECKER)


def test_no_keys_accepts_nothing() -> None:
    with pytest.raises(BadMac):
        decode(VALID, (), CAPACITY, CHECKER)


# --- Envelope refuses what cannot be encoded --------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"sender": "x" * (SENDER_BYTES + 1)},
        {"sender": "a\0b"},
        {"az": "z" * 17},
        {"autoshift": "z" * 17},
        {"autoshift": "é" * 8 + "z"},  # 17 UTF-8 bytes in 9 characters
        {"autoshift": "a\0b"},
        {"autoshift": "\0"},
        {"sequence": -1},
        {"sequence": 2**64},
        {"digest": b"short"},
        {"checkers": -1},
        {"checkers": MAX_CHECKERS + 1},
        {"azs": -1},
        {"azs": MAX_AZS + 1},
    ],
)
@pytest.mark.parametrize("kind", list(TableKind))
def test_envelope_refuses_fields_that_do_not_fit(
    fields: dict[str, object], kind: TableKind
) -> None:
    with pytest.raises(ValueError):
        envelope(kind=kind, **fields)  # type: ignore[arg-type]


def test_checkers_and_azs_limits_fit_their_msgpack_widths() -> None:
    assert (MAX_CHECKERS, MAX_AZS) == (0xFFFF, 0xFF)


@pytest.mark.parametrize(
    ("kind", "capacity", "length"),
    [
        (CHECKER, 3, 3),  # one plane only: a version-1-sized checker table
        (CHECKER, 3, 5),
        (CHECKER, 3, 7),
        (AGGREGATE, 3, 6),  # two bytes per slot is a checker table's width
        (AGGREGATE, 3, 2),
    ],
)
def test_envelope_refuses_slots_not_matching_capacity_and_kind(
    kind: TableKind, capacity: int, length: int
) -> None:
    with pytest.raises(ValueError):
        Envelope(kind, "c", "a", 1, NOW, bytes(32), capacity=capacity, slots=bytes(length))
    Envelope(kind, "c", "a", 1, NOW, bytes(32), capacity, bytes(slot_bytes(capacity, kind)))


# --- SequenceGuard ----------------------------------------------------------------------


def test_guard_accepts_increasing_sequences_per_sender() -> None:
    guard = SequenceGuard(max_skew=30)
    for sender, sequence in [("c1", 1), ("c2", 1), ("c1", 2), ("c2", 5), ("c1", 10)]:
        env = envelope(sender=sender, sequence=sequence)
        guard.check(env, NOW)
        guard.commit(env, heard_at=0.0)
    assert guard.last_sequence("c1") == 10
    assert guard.last_sequence("c2") == 5
    assert guard.last_sequence("c3") is None


@pytest.mark.parametrize("sequence", [1, 9, 10])
def test_guard_rejects_replayed_or_old_sequence(sequence: int) -> None:
    guard = SequenceGuard(max_skew=30)
    guard.commit(envelope(sequence=10), heard_at=0.0)
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
    guard.commit(envelope(sender="c1", sequence=10), heard_at=0.0)
    guard.check(envelope(sender="c1", sequence=11), NOW)
    guard.check(envelope(sender="c2", sequence=1), NOW)
    for bad in (envelope(sender="c1", sequence=3), envelope(sequence=99, generated_at=0.0)):
        with pytest.raises(WireError):
            guard.check(bad, NOW)
    assert guard.last_sequence("c1") == 10
    assert guard.last_sequence("c2") is None
    # The accepted-but-uncommitted 11 did not advance anything: 11 is still acceptable.
    guard.check(envelope(sender="c1", sequence=11), NOW)


async def test_guard_forgets_senders_silent_for_twice_the_skew(fake_clock: FakeClock) -> None:
    guard = SequenceGuard(max_skew=10)
    guard.commit(envelope(sender="quiet", sequence=5), heard_at=fake_clock.monotonic())
    guard.commit(envelope(sender="busy", sequence=5), heard_at=fake_clock.monotonic())
    for sequence in range(6, 12):  # "busy" commits every 4 s, "quiet" never again
        await fake_clock.advance(4.0)
        guard.commit(envelope(sender="busy", sequence=sequence), heard_at=fake_clock.monotonic())
        guard.forget_silent(fake_clock.monotonic())
        silent_for = 4.0 * (sequence - 5)
        assert (guard.last_sequence("quiet") is None) == (silent_for > 20), silent_for
    assert guard.last_sequence("busy") == 11
    assert len(guard) == 1


def test_guard_keeps_a_sender_silent_exactly_twice_the_skew(fake_clock: FakeClock) -> None:
    guard = SequenceGuard(max_skew=10)
    guard.commit(envelope(sender="c1", sequence=5), heard_at=fake_clock.monotonic())
    assert guard.forget_silent(fake_clock.monotonic() + 20.0) == []
    assert guard.forget_silent(fake_clock.monotonic() + 20.001) == ["c1"]
    assert guard.last_sequence("c1") is None


async def test_a_forgotten_senders_old_tables_are_still_refused_as_skewed(
    fake_clock: FakeClock,
) -> None:
    """Forgetting opens no replay: once forgotten, a sender's old tables are past skew."""
    guard = SequenceGuard(max_skew=10)
    old = envelope(sender="c1", sequence=5, generated_at=fake_clock.time())
    guard.check(old, fake_clock.time())
    guard.commit(old, heard_at=fake_clock.monotonic())
    await fake_clock.advance(20.001)
    assert guard.forget_silent(fake_clock.monotonic()) == ["c1"]
    with pytest.raises(Skewed):
        guard.check(old, fake_clock.time())


async def test_a_thousand_restarting_sender_ids_leave_a_bounded_guard(
    fake_clock: FakeClock,
) -> None:
    """Pods restarting under new ids (id = pod name): one new id a second, 1,000 in all."""
    guard = SequenceGuard(max_skew=10)
    sizes = []
    for pod in range(1_000):
        env = envelope(sender=f"chk-{pod}", sequence=1, generated_at=fake_clock.time())
        guard.forget_silent(fake_clock.monotonic())
        guard.check(env, fake_clock.time())
        guard.commit(env, heard_at=fake_clock.monotonic())
        sizes.append(len(guard))
        await fake_clock.advance(1.0)
    assert max(sizes) == 21  # the ids heard within the last 2 x skew, this one included


# --- properties: nothing but a WireError, ever ------------------------------------------

SMALL = 64
SMALL_VALID = signed_table(
    bytes(i % 14 for i in range(SMALL)),
    history=bytes((i * 37) % 256 for i in range(SMALL)),
    generated_at=NOW,
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2 * encoded_size(SMALL, CHECKER)))
def test_random_bytes_only_ever_raise_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        decode(data, KEYS, SMALL, CHECKER)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2 * encoded_size(SMALL, AGGREGATE)))
def test_random_bytes_only_ever_raise_wire_errors_for_aggregate_receivers(data: bytes) -> None:
    with pytest.raises(WireError):
        decode(data, KEYS, SMALL, AGGREGATE)


@settings(max_examples=500)
@given(st.binary(min_size=encoded_size(SMALL, CHECKER), max_size=encoded_size(SMALL, CHECKER)))
def test_random_bytes_of_the_exact_size_only_raise_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        decode(data, KEYS, SMALL, CHECKER)


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
        result = decode(data, KEYS, SMALL, CHECKER)
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
        decode(data, KEYS, SMALL, CHECKER)


@settings(max_examples=200)
@given(
    st.sampled_from(list(TableKind)),
    st.data(),
    st.text(max_size=8).filter(lambda s: "\0" not in s),
    st.integers(0, 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, MAX_CHECKERS),
    st.integers(0, MAX_AZS),
    st.text(max_size=4).filter(lambda s: "\0" not in s),
)
def test_round_trip_property(
    kind: TableKind,
    data: st.DataObject,
    sender: str,
    sequence: int,
    at: float,
    checkers: int,
    azs: int,
    autoshift: str,
) -> None:
    width = slot_bytes(SMALL, kind)
    slots = data.draw(st.binary(min_size=width, max_size=width))
    original = envelope(
        slots,
        kind=kind,
        sender=sender,
        sequence=sequence,
        generated_at=at,
        checkers=checkers,
        azs=azs,
        autoshift=autoshift,
    )
    encoded = encode(original, TEST_PUSH_KEY)
    assert len(encoded) == encoded_size(SMALL, kind)
    assert decode(encoded, KEYS, SMALL, kind) == original


def test_a_legacy_table_needs_whole_slots() -> None:
    with pytest.raises(ValueError, match="3 slot bytes are no whole version-2 table"):
        legacy_table(2, b"\x01\x01\x01", key=TEST_PUSH_KEY)
