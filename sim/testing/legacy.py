"""Signed tables of the wire versions before this build's, for the tests that refuse them.

Version 1: a fixarray of 10, no `checkers`/`azs`, one byte per slot of either kind.
Version 2: a fixarray of 12, `checkers` and `azs`, two planes per checker slot, no
`autoshift` (docs/wire.md, "Versioning"). Both are signed the way every version is: an
HMAC-SHA256 over everything before the mac element.
"""

from __future__ import annotations

import hmac
import struct

from urn.wire import SENDER_BYTES, TableKind, slot_bytes

__all__ = ["LEGACY_HEAD_SIZES", "legacy_table"]

_HEADS = {
    1: struct.Struct(">BBBBB BB32s BB16s BQ Bd BB32s BI BI"),
    2: struct.Struct(">BBBBB BB32s BB16s BQ Bd BB32s BI BH BB BI"),
}
_ARRAY_HEADERS = {1: 0x9A, 2: 0x9C}
LEGACY_HEAD_SIZES = {version: head.size for version, head in _HEADS.items()}  # 119, 124


def legacy_table(
    version: int,
    slots: bytes,
    *,
    key: bytes,
    kind: TableKind = TableKind.CHECKER,
    sender: str = "chk-a1",
    az: str = "a",
    sequence: int = 1,
    generated_at: float = 0.0,
    digest: bytes = bytes(32),
) -> bytes:
    """A well-formed `version` table around `slots`: one byte per slot in version 1, the
    version-2 width of `kind` (two planes per checker slot) otherwise."""
    width = 1 if version == 1 else slot_bytes(1, kind)
    capacity, extra = divmod(len(slots), width)
    if extra:
        raise ValueError(f"{len(slots)} slot bytes are no whole version-{version} table")
    fields = [
        *(_ARRAY_HEADERS[version], 0xCC, version, 0xCC, int(kind)),
        *(0xC4, SENDER_BYTES, sender.encode().ljust(SENDER_BYTES, b"\0")),
        *(0xC4, 16, az.encode().ljust(16, b"\0")),
        *(0xCF, sequence, 0xCB, generated_at),
        *(0xC4, 32, digest),
        *(0xCE, capacity),
        *((0xCD, 0, 0xCC, 0) if version == 2 else ()),
        *(0xC6, len(slots)),
    ]
    signed = _HEADS[version].pack(*fields) + slots
    return signed + b"\xc4\x20" + hmac.digest(key, signed, "sha256")
