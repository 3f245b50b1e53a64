"""docs/wire.md agrees with the code: the layout table is generated, and its bytes are real."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import msgpack
import pytest

from sim.testing import TEST_PUSH_KEY, signed_table
from urn import wire
from urn.table import FAILURE_REASONS, Reason, Status, aggregated_byte
from urn.wire import TableKind, encoded_size, slot_bytes

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "wire.md").read_text()


def _generated_table() -> str:
    table: str = runpy.run_path(str(ROOT / "docs" / "wire_layout.py"))["table"]()
    return table


def test_layout_table_is_the_generated_one() -> None:
    begin, end = "<!-- layout:begin -->\n", "\n<!-- layout:end -->"
    documented = DOC[DOC.index(begin) + len(begin) : DOC.index(end)]
    assert documented == _generated_table(), "run docs/wire_layout.py and paste its output"


@pytest.mark.parametrize("kind", list(TableKind))
def test_every_documented_type_byte_is_in_a_real_envelope(kind: TableKind) -> None:
    capacity = 10
    data = signed_table(bytes(capacity), kind=kind, key=TEST_PUSH_KEY, checkers=3, azs=2)
    slots = slot_bytes(capacity, kind)
    assert len(data) == encoded_size(capacity, kind) == encoded_size(0, kind) + slots
    checked = 0
    for line in _generated_table().splitlines():
        match = re.match(r"\| (\d+)(?: \+ S)? \| 1 \| [^|]+ \| `(0x[0-9a-f]{2})`", line)
        if match:
            offset = int(match.group(1)) + (slots if "+ S" in line else 0)
            assert data[offset] == int(match.group(2), 16), line
            checked += 1
    assert checked == 19  # 17 in the head, 2 before the MAC


def test_documented_sizes_are_encoded_size() -> None:
    """The prose's "176 + 2C" and "176 + C" and its worked sizes match the code."""
    head = encoded_size(0, TableKind.CHECKER)
    assert f"`{head} + 2C` bytes for a checker table" in DOC
    assert f"`{head} + C`\nbytes for an aggregate table" in DOC
    for capacity in (1, 10, 10_000):
        assert encoded_size(capacity, TableKind.CHECKER) == head + 2 * capacity
        assert encoded_size(capacity, TableKind.AGGREGATE) == head + capacity
    checker, aggregate = (encoded_size(10_000, kind) for kind in TableKind)
    assert f"checker table is {checker:,} bytes, an aggregate\ntable {aggregate:,}" in DOC
    assert f"`Content-Length {encoded_size(10_001, TableKind.CHECKER)}, a table is {checker}" in DOC


def test_documented_head_is_the_code_head() -> None:
    assert f"struct `{wire._HEAD.format}`" in DOC
    assert f"({wire._HEAD.size} bytes)" in DOC
    assert f"The head (bytes 0–{wire._HEAD.size - 1})" in DOC
    assert f'"The head" is the first\n{wire._HEAD.size} bytes' in DOC
    assert f"# The table envelope: wire format, version {wire.VERSION}" in DOC
    assert f"(`urn.wire.VERSION = {wire.VERSION}`)" in DOC
    assert f"- **version** (`{wire.VERSION}`)" in DOC


def test_documented_plain_array_is_what_msgpack_reads() -> None:
    """The doc's `msgpack.unpackb` listing names every element, in the order it decodes."""
    match = re.search(r"plain (\d+)-element array\n`\[([^\]]+)\]`", DOC)
    assert match, "the plain-array listing moved"
    names = [name.strip() for name in match.group(2).split(",")]
    count = wire._EXPECTED_MARKERS[0] - 0x90  # the fixarray's element count
    assert int(match.group(1)) == len(names) == count
    assert names.index("autoshift") == names.index("azs") + 1 == names.index("slots") - 1
    data = signed_table(bytes(4), kind=TableKind.AGGREGATE, key=TEST_PUSH_KEY)
    assert len(msgpack.unpackb(data)) == count


def test_documented_slot_offsets_follow_the_head() -> None:
    head = wire._HEAD.size
    assert f"at offset `{head} + i` and its `history` byte at\n  `{head} + C + i`" in DOC
    assert f"in an aggregate table slot `i` is at `{head} + i`" in DOC
    assert f"(offsets 0 to {head - 1} + S:" in DOC


def test_documented_checker_reasons_are_the_code_reasons() -> None:
    """Every `last` code the doc's table names is the Reason of that value, and back."""
    row = re.compile(r"^\| (\d+) \| (.+?) \| (?:no data|healthy|failure) \|$", re.M)
    documented = {int(m.group(1)): m.group(2) for m in row.finditer(DOC)}
    assert sorted(documented) == [int(r) for r in Reason]
    for name in ("LOCAL", "STALE"):
        assert f"`{name}`" in documented[Reason[name]]
    assert (
        f"| 12–255 | not defined in version {wire.VERSION} | failure of unknown kind (as 9) |"
        in DOC
    )


def test_documented_aggregated_bytes_are_right() -> None:
    """Every row of the doc's byte table is the code's byte, and every byte has a row."""
    documented: set[int] = set()
    for line in DOC.splitlines():
        match = re.match(r"\| `(0x[0-9a-f]{2})` \| (\w+) \| (?:-|.*?\((\d+)\)) \|$", line)
        if match:
            status = Status[match.group(2).upper()]
            reason = Reason.NO_DATA if match.group(3) is None else Reason(int(match.group(3)))
            value = aggregated_byte(status, reason)
            assert value == int(match.group(1), 16), line
            documented.add(value)
    expected = {aggregated_byte(Status.UNKNOWN), aggregated_byte(Status.HEALTHY)}
    expected |= {aggregated_byte(Status.UNHEALTHY, r) for r in FAILURE_REASONS}
    assert documented == expected
