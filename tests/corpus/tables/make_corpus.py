"""Write the hostile-table corpus: one file per case and `expected.json` (file -> outcome).

Deterministic: fixed keys, fixed timestamps, no randomness, so rerunning it rewrites
identical bytes (a test checks that). Run from the repository root:

    .venv/bin/python tests/corpus/tables/make_corpus.py [OUTPUT_DIR]

Every file is decoded with `decode(data, KEYS, CAPACITY, TableKind.CHECKER)`; the outcome
is "accepted" or the WireError reason. Add each crash reproducer found later as a file
here (write it from this script) so it stays in the corpus for good.

Wire format version 3: a 142-byte head (fixarray of 13, `autoshift` after `azs`), then a
checker table's slots, two planes of CAPACITY bytes each, `last` then `history`
(docs/wire.md), so its slots field is 2 x CAPACITY bytes.
"""

from __future__ import annotations

import hmac
import json
import struct
import sys
from pathlib import Path

import msgpack

from sim.testing.legacy import LEGACY_HEAD_SIZES, legacy_table
from urn.table import checker_table
from urn.wire import VERSION, Envelope, TableKind, encode, encoded_size, slot_bytes

CAPACITY = 64
KIND = TableKind.CHECKER
KEY = b"urn-corpus-key-0123456789abcdef!"
PREVIOUS_KEY = b"urn-corpus-previous-key-fedcba98"
KEYS = (KEY, PREVIOUS_KEY)
UNKNOWN_KEY = b"urn-corpus-unknown-key-000000000"
AT = 1_700_000_000.0
HEAD = 142  # bytes before the slots; see docs/wire.md
SLOTS = slot_bytes(CAPACITY, KIND)  # 2 x CAPACITY: the `last` plane, then `history`
AUTOSHIFT_AT = 121  # the autoshift text, after its bin8 type and length bytes


def _last(capacity: int) -> bytes:
    """A `last` plane using every defined code (0-11) and unknown failure codes (12+)."""
    return bytes(i % 14 for i in range(capacity))


def _history(capacity: int) -> bytes:
    """A history plane of varied 8-bit patterns (bit 0 the newest probe)."""
    return bytes((i * 37 + 5) % 256 for i in range(capacity))


def _slots(capacity: int, kind: TableKind) -> bytes:
    if kind is TableKind.CHECKER:
        return checker_table(_last(capacity), _history(capacity))
    return bytes(i % 3 for i in range(capacity))  # unknown, healthy, unhealthy bytes


def _envelope(
    capacity: int = CAPACITY,
    kind: TableKind = KIND,
    slots: bytes | None = None,
    sender: str = "chk-a1",
) -> Envelope:
    return Envelope(
        kind=kind,
        sender=sender,
        az="a",
        sequence=7,
        generated_at=AT,
        config_digest=bytes(range(32)),
        capacity=capacity,
        slots=_slots(capacity, kind) if slots is None else slots,
    )


def _encode_legacy(version: int, capacity: int = CAPACITY, key: bytes = KEY) -> bytes:
    """A well-formed, correctly signed version-1 (one byte per slot) or version-2 (two
    planes, no autoshift field) checker table."""
    slots = _last(capacity) if version == 1 else _slots(capacity, TableKind.CHECKER)
    return legacy_table(
        version, slots, key=key, sequence=7, generated_at=AT, digest=bytes(range(32))
    )


def _resign(data: bytes | bytearray, key: bytes = KEY) -> bytes:
    body = bytes(data[:-32])
    return body + hmac.digest(key, body[:-2], "sha256")


def _patched(offset: int, raw: bytes, sign: bool = True) -> bytes:
    data = bytearray(encode(_envelope(), KEY))
    data[offset : offset + len(raw)] = raw
    return _resign(data) if sign else bytes(data)


def cases() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, expected outcome)."""
    valid = encode(_envelope(), KEY)
    assert len(valid) == encoded_size(CAPACITY, KIND) == HEAD + SLOTS + 34
    v1 = _encode_legacy(1)
    assert len(v1) == LEGACY_HEAD_SIZES[1] + CAPACITY + 34
    v2 = _encode_legacy(2)
    assert len(v2) == LEGACY_HEAD_SIZES[2] + SLOTS + 34 < len(valid)
    flipped_mac = bytearray(valid)
    flipped_mac[-1] ^= 0x80
    flipped_slot = bytearray(valid)
    flipped_slot[HEAD + 3] ^= 0x01  # in the `last` plane
    flipped_history = bytearray(valid)
    flipped_history[HEAD + CAPACITY + 3] ^= 0x01  # in the `history` plane
    all_healthy = checker_table(b"\x01" * CAPACITY, bytes(CAPACITY))
    return {
        "valid.bin": (valid, "accepted"),
        "valid-all-healthy.bin": (encode(_envelope(slots=all_healthy), KEY), "accepted"),
        "valid-previous-key.bin": (encode(_envelope(), PREVIOUS_KEY), "accepted"),
        "empty.bin": (b"", "undecodable"),
        "one-byte.bin": (b"\x9d", "truncated"),
        "one-byte-v1.bin": (b"\x9a", "version"),
        "one-byte-v2.bin": (b"\x9c", "version"),
        "truncated-in-head.bin": (valid[:60], "truncated"),
        "truncated-after-head.bin": (valid[:HEAD], "truncated"),
        "truncated-in-slots.bin": (valid[: HEAD + CAPACITY // 2], "truncated"),
        "truncated-between-planes.bin": (valid[: HEAD + CAPACITY], "truncated"),
        "truncated-no-mac.bin": (valid[: HEAD + SLOTS], "truncated"),
        "truncated-one-byte.bin": (valid[:-1], "truncated"),
        "oversized-one-byte.bin": (valid + b"\0", "oversized"),
        "oversized-double.bin": (valid + valid, "oversized"),
        "oversized-zeros.bin": (bytes(4096), "oversized"),
        "bad-mac-flipped.bin": (bytes(flipped_mac), "bad_mac"),
        "bad-mac-slot-changed.bin": (bytes(flipped_slot), "bad_mac"),
        "bad-mac-history-changed.bin": (bytes(flipped_history), "bad_mac"),
        "bad-mac-unknown-key.bin": (encode(_envelope(), UNKNOWN_KEY), "bad_mac"),
        "bad-mac-zeroed.bin": (valid[:-32] + bytes(32), "bad_mac"),
        "wrong-capacity-bigger.bin": (encode(_envelope(capacity=CAPACITY + 1), KEY), "capacity"),
        "wrong-capacity-smaller.bin": (encode(_envelope(capacity=CAPACITY - 1), KEY), "capacity"),
        "wrong-capacity-10000.bin": (encode(_envelope(capacity=10_000), KEY), "capacity"),
        "wrong-version-0.bin": (_patched(2, bytes([0])), "version"),
        "wrong-version-next.bin": (_patched(2, bytes([VERSION + 1])), "version"),
        # A genuine, correctly signed version-1 table: refused as `version`, never misread.
        "wrong-version-1-envelope.bin": (v1, "version"),
        "wrong-version-1-envelope-unsigned.bin": (v1[:-32] + bytes(32), "version"),
        "wrong-version-1-truncated.bin": (v1[:60], "version"),
        # A genuine, correctly signed version-2 table (fixarray of 12, no autoshift).
        "wrong-version-2-envelope.bin": (v2, "version"),
        "wrong-version-2-envelope-unsigned.bin": (v2[:-32] + bytes(32), "version"),
        "wrong-version-2-truncated.bin": (v2[:60], "version"),
        "wrong-kind-aggregate.bin": (encode(_envelope(kind=TableKind.AGGREGATE), KEY), "kind"),
        # Kind is checked before the MAC: a forged aggregate table is still `kind`.
        "wrong-kind-aggregate-bad-mac.bin": (
            encode(_envelope(kind=TableKind.AGGREGATE), UNKNOWN_KEY),
            "kind",
        ),
        "unknown-kind-9.bin": (_patched(4, bytes([9])), "undecodable"),
        "unknown-kind-9-unsigned.bin": (_patched(4, bytes([9]), sign=False), "undecodable"),
        "garbage-text.bin": (b"hello, this is not a table\n", "undecodable"),
        "garbage-http.bin": (b"POST /v1/table HTTP/1.1\r\nHost: x\r\n\r\n", "undecodable"),
        "garbage-json.bin": (json.dumps({"slots": [1] * 10}).encode(), "undecodable"),
        "garbage-right-size.bin": (b"\xa5" * len(valid), "undecodable"),
        "garbage-msgpack-other-widths.bin": (
            # The same thirteen fields, packed with the smallest widths msgpack would choose.
            msgpack.packb(
                [
                    VERSION,
                    int(KIND),
                    b"chk-a1".ljust(32, b"\0"),
                    b"a".ljust(16, b"\0"),
                    7,
                    AT,
                    bytes(range(32)),
                    CAPACITY,
                    0,
                    0,
                    bytes(16),
                    bytes(SLOTS),
                    bytes(32),
                ]
            ),
            "undecodable",
        ),
        "msgpack-short-array.bin": (msgpack.packb([VERSION, int(KIND), b"c"]), "undecodable"),
        "mac-marker-wrong.bin": (_patched(HEAD + SLOTS, b"\xc4\x21"), "undecodable"),
        "slots-length-mismatch.bin": (
            _patched(HEAD - 4, struct.pack(">I", SLOTS - 1)),
            "undecodable",
        ),
        # One byte per slot, as an aggregate table or a version-1 checker table has.
        "slots-length-one-plane.bin": (
            _patched(HEAD - 4, struct.pack(">I", CAPACITY)),
            "undecodable",
        ),
        "signed-sender-nul-inside.bin": (_patched(7, b"ab\0cd"), "undecodable"),
        "signed-sender-not-utf8.bin": (_patched(7, b"\xff\xfe"), "undecodable"),
        "signed-autoshift-nul-inside.bin": (_patched(AUTOSHIFT_AT, b"b\0c"), "undecodable"),
        "signed-autoshift-not-utf8.bin": (_patched(AUTOSHIFT_AT, b"\xff\xfe"), "undecodable"),
        "signed-time-nan.bin": (_patched(67, struct.pack(">d", float("nan"))), "undecodable"),
        "signed-time-inf.bin": (_patched(67, struct.pack(">d", float("inf"))), "undecodable"),
    }


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    expected: dict[str, object] = {
        "capacity": CAPACITY,
        "kind": KIND.name.lower(),
        "keys_hex": [k.hex() for k in KEYS],
        "files": {},
    }
    files: dict[str, str] = {}
    for name, (data, outcome) in sorted(cases().items()):
        (directory / name).write_bytes(data)
        files[name] = outcome
    expected["files"] = files
    (directory / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
