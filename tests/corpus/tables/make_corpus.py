"""Write the hostile-table corpus: one file per case and `expected.json` (file -> outcome).

Deterministic: fixed keys, fixed timestamps, no randomness, so rerunning it rewrites
identical bytes (a test checks that). Run from the repository root:

    .venv/bin/python tests/corpus/tables/make_corpus.py [OUTPUT_DIR]

Every file is decoded with `decode(data, KEYS, CAPACITY, TableKind.CHECKER)`; the outcome
is "accepted" or the WireError reason. Add each crash reproducer found later as a file
here (write it from this script) so it stays in the corpus for good.
"""

from __future__ import annotations

import hmac
import json
import struct
import sys
from pathlib import Path

import msgpack

from urn.wire import VERSION, Envelope, TableKind, encode, encoded_size

CAPACITY = 64
KIND = TableKind.CHECKER
KEY = b"urn-corpus-key-0123456789abcdef!"
PREVIOUS_KEY = b"urn-corpus-previous-key-fedcba98"
KEYS = (KEY, PREVIOUS_KEY)
UNKNOWN_KEY = b"urn-corpus-unknown-key-000000000"
AT = 1_700_000_000.0
HEAD = 119  # bytes before the slots; see docs/wire.md


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
        slots=bytes(i % 10 for i in range(capacity)) if slots is None else slots,
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
    assert len(valid) == encoded_size(CAPACITY)
    flipped_mac = bytearray(valid)
    flipped_mac[-1] ^= 0x80
    flipped_slot = bytearray(valid)
    flipped_slot[HEAD + 3] ^= 0x01
    return {
        "valid.bin": (valid, "accepted"),
        "valid-all-healthy.bin": (encode(_envelope(slots=b"\x01" * CAPACITY), KEY), "accepted"),
        "valid-previous-key.bin": (encode(_envelope(), PREVIOUS_KEY), "accepted"),
        "empty.bin": (b"", "undecodable"),
        "one-byte.bin": (b"\x9a", "truncated"),
        "truncated-in-head.bin": (valid[:60], "truncated"),
        "truncated-after-head.bin": (valid[:HEAD], "truncated"),
        "truncated-in-slots.bin": (valid[: HEAD + CAPACITY // 2], "truncated"),
        "truncated-no-mac.bin": (valid[: HEAD + CAPACITY], "truncated"),
        "truncated-one-byte.bin": (valid[:-1], "truncated"),
        "oversized-one-byte.bin": (valid + b"\0", "oversized"),
        "oversized-double.bin": (valid + valid, "oversized"),
        "oversized-zeros.bin": (bytes(4096), "oversized"),
        "bad-mac-flipped.bin": (bytes(flipped_mac), "bad_mac"),
        "bad-mac-slot-changed.bin": (bytes(flipped_slot), "bad_mac"),
        "bad-mac-unknown-key.bin": (encode(_envelope(), UNKNOWN_KEY), "bad_mac"),
        "bad-mac-zeroed.bin": (valid[:-32] + bytes(32), "bad_mac"),
        "wrong-capacity-bigger.bin": (encode(_envelope(capacity=CAPACITY + 1), KEY), "capacity"),
        "wrong-capacity-smaller.bin": (encode(_envelope(capacity=CAPACITY - 1), KEY), "capacity"),
        "wrong-capacity-10000.bin": (encode(_envelope(capacity=10_000), KEY), "capacity"),
        "wrong-version-0.bin": (_patched(2, bytes([0])), "version"),
        "wrong-version-next.bin": (_patched(2, bytes([VERSION + 1])), "version"),
        "wrong-kind-aggregate.bin": (encode(_envelope(kind=TableKind.AGGREGATE), KEY), "kind"),
        "unknown-kind-9.bin": (_patched(4, bytes([9])), "undecodable"),
        "garbage-text.bin": (b"hello, this is not a table\n", "undecodable"),
        "garbage-http.bin": (b"POST /v1/table HTTP/1.1\r\nHost: x\r\n\r\n", "undecodable"),
        "garbage-json.bin": (json.dumps({"slots": [1] * 10}).encode(), "undecodable"),
        "garbage-right-size.bin": (b"\xa5" * len(valid), "undecodable"),
        "garbage-msgpack-other-widths.bin": (
            # The same ten fields, packed with the smallest widths msgpack would choose.
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
                    bytes(CAPACITY),
                    bytes(32),
                ]
            ),
            "undecodable",
        ),
        "msgpack-short-array.bin": (msgpack.packb([VERSION, int(KIND), b"c"]), "undecodable"),
        "mac-marker-wrong.bin": (_patched(HEAD + CAPACITY, b"\xc4\x21"), "undecodable"),
        "slots-length-mismatch.bin": (
            _patched(HEAD - 4, struct.pack(">I", CAPACITY - 1)),
            "undecodable",
        ),
        "signed-sender-nul-inside.bin": (_patched(7, b"ab\0cd"), "undecodable"),
        "signed-sender-not-utf8.bin": (_patched(7, b"\xff\xfe"), "undecodable"),
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
