"""docs/wire.md agrees with the code: the layout table is generated, and its bytes are real."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

from urn.table import Reason, Status, aggregated_byte
from urn.testing import TEST_PUSH_KEY, signed_table
from urn.wire import encoded_size

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "wire.md").read_text()


def _generated_table() -> str:
    table: str = runpy.run_path(str(ROOT / "docs" / "wire_layout.py"))["table"]()
    return table


def test_layout_table_is_the_generated_one() -> None:
    begin, end = "<!-- layout:begin -->\n", "\n<!-- layout:end -->"
    documented = DOC[DOC.index(begin) + len(begin) : DOC.index(end)]
    assert documented == _generated_table(), "run docs/wire_layout.py and paste its output"


def test_every_documented_type_byte_is_in_a_real_envelope() -> None:
    capacity = 10
    data = signed_table(bytes(capacity), key=TEST_PUSH_KEY)
    assert len(data) == encoded_size(capacity)
    checked = 0
    for line in _generated_table().splitlines():
        match = re.match(r"\| (\d+)(?: \+ C)? \| 1 \| [^|]+ \| `(0x[0-9a-f]{2})`", line)
        if match:
            offset = int(match.group(1)) + (capacity if "+ C" in line else 0)
            assert data[offset] == int(match.group(2), 16), line
            checked += 1
    assert checked == 15  # 13 in the head, 2 before the MAC


def test_documented_aggregated_bytes_are_right() -> None:
    for line in DOC.splitlines():
        match = re.match(r"\| `(0x[0-9a-f]{2})` \| (\w+) \| .*?\((\d+)\) \|", line)
        if match:
            status = Status[match.group(2).upper()]
            value = aggregated_byte(status, Reason(int(match.group(3))))
            assert value == int(match.group(1), 16), line
