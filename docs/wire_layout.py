"""Print the byte-layout table of docs/wire.md from urn.wire's own struct (never by hand).

    .venv/bin/python docs/wire_layout.py

tests/unit/urn/test_wire_doc.py checks that docs/wire.md holds exactly this output.
"""

from __future__ import annotations

import re
import struct

from urn import wire

# One line per element of wire._HEAD's format, in order: (field, meaning).
HEAD_ELEMENTS = [
    (
        "array header",
        f"`{wire._EXPECTED_MARKERS[0]:#04x}`: msgpack fixarray of"
        f" {wire._EXPECTED_MARKERS[0] - 0x90} elements",
    ),
    ("version: type", "`0xcc`: msgpack uint8"),
    ("version", f"format version, `{wire.VERSION}`"),
    ("kind: type", "`0xcc`: msgpack uint8"),
    ("kind", "table kind: `1` checker, `2` aggregate"),
    ("sender: type", "`0xc4`: msgpack bin8"),
    ("sender: length", f"`{wire.SENDER_BYTES:#04x}` ({wire.SENDER_BYTES})"),
    ("sender", "sender id, UTF-8, right-padded with NUL bytes"),
    ("az: type", "`0xc4`: msgpack bin8"),
    ("az: length", f"`{wire.AZ_BYTES:#04x}` ({wire.AZ_BYTES})"),
    ("az", "sender's availability zone, UTF-8, right-padded with NUL bytes"),
    ("sequence: type", "`0xcf`: msgpack uint64"),
    ("sequence", "sender's sequence number, big-endian"),
    ("generated_at: type", "`0xcb`: msgpack float64"),
    ("generated_at", "generation time, Unix seconds, IEEE 754 big-endian"),
    ("config_digest: type", "`0xc4`: msgpack bin8"),
    ("config_digest: length", f"`{wire.DIGEST_BYTES:#04x}` ({wire.DIGEST_BYTES})"),
    ("config_digest", "SHA-256 of the sender's canonical config document"),
    ("capacity: type", "`0xce`: msgpack uint32"),
    ("capacity", "number of slots C, big-endian"),
    ("checkers: type", "`0xcd`: msgpack uint16"),
    ("checkers", "aggregate: fresh checkers behind the table; checker: 0"),
    ("azs: type", "`0xcc`: msgpack uint8"),
    ("azs", "aggregate: distinct AZs among those checkers; checker: 0"),
    ("autoshift: type", "`0xc4`: msgpack bin8"),
    ("autoshift: length", f"`{wire.AZ_BYTES:#04x}` ({wire.AZ_BYTES})"),
    (
        "autoshift",
        "aggregate: the AZ the fleet shifted away whole (autoshift), UTF-8, right-padded with"
        " NUL; empty when none; checker: empty",
    ),
    ("slots: type", "`0xc6`: msgpack bin32"),
    ("slots: length", "S = `slot_bytes(C, kind)`, big-endian: 2C checker, C aggregate"),
]


def elements() -> list[str]:
    """The struct format split into single elements ('B', '32s', 'Q', ...)."""
    codes = re.findall(r"\d*[a-zA-Z]", wire._HEAD.format.replace(" ", "").lstrip(">!<=@"))
    assert struct.calcsize(">" + "".join(codes)) == wire._HEAD.size
    return codes


def table() -> str:
    codes = elements()
    assert len(codes) == len(HEAD_ELEMENTS), "wire._HEAD changed: update HEAD_ELEMENTS"
    rows = ["| offset | width | field | bytes / meaning |", "|---:|---:|---|---|"]
    offset = 0
    for code, (field, meaning) in zip(codes, HEAD_ELEMENTS, strict=True):
        width = struct.calcsize(">" + code)
        rows.append(f"| {offset} | {width} | {field} | {meaning} |")
        offset += width
    head = wire._HEAD.size
    assert offset == head
    checker, aggregate = wire.TableKind.CHECKER, wire.TableKind.AGGREGATE
    # S is the same expression of C for every table of a kind: check what the prose says.
    assert all(wire.slot_bytes(c, checker) == 2 * c for c in (0, 1, 10_000))
    assert all(wire.slot_bytes(c, aggregate) == c for c in (0, 1, 10_000))
    rows.append(
        f"| {head} | S | slots | checker: `last` plane (C bytes) then `history` plane"
        " (C bytes); aggregate: one byte per slot; see below |"
    )
    rows.append(f"| {head} + S | 1 | mac: type | `0xc4`: msgpack bin8 |")
    rows.append(
        f"| {head + 1} + S | 1 | mac: length | `{wire.MAC_BYTES:#04x}` ({wire.MAC_BYTES}) |"
    )
    rows.append(
        f"| {head + 2} + S | {wire.MAC_BYTES} | mac | HMAC-SHA256 over bytes 0 .. {head - 1} + S |"
    )
    total = wire.encoded_size(0, checker)
    assert total == wire.encoded_size(0, aggregate)
    rows.append(
        f"| | **{total} + S** | **total** | `encoded_size(C, kind)`: {total} + 2C checker, "
        f"{total} + C aggregate; C = 10,000 gives {wire.encoded_size(10_000, checker):,} and "
        f"{wire.encoded_size(10_000, aggregate):,} bytes |"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
