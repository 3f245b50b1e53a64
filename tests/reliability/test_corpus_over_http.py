"""The kernel's hostile-table corpus (tests/corpus/tables), pushed over real HTTP.

The decoder test proves each file's outcome in memory; this proves the receiver gives
the same outcome on the wire, with the matching status and metric, and delivers only
what is accepted. One difference by design: a body longer than any table of this
capacity is refused by the size cap before decoding, so `capacity` becomes `oversized`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from urn.errors import WIRE_ERRORS
from urn.wire import TableKind, encoded_size

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import ReceiverServer

CORPUS = Path(__file__).parent.parent / "corpus" / "tables"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
KEYS = tuple(bytes.fromhex(k) for k in EXPECTED["keys_hex"])
STATUS = {error.reason: error.http_status for error in WIRE_ERRORS} | {"accepted": 200}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED["files"].items()))
def test_corpus_file_over_http(
    make_receiver: Callable[..., ReceiverServer], name: str, expected: str
) -> None:
    server = make_receiver(
        capacity=EXPECTED["capacity"],
        keys=KEYS,
        kind=TableKind[EXPECTED["kind"].upper()],
        skew=1e12,  # corpus files carry fixed generation times
    )
    body = (CORPUS / name).read_bytes()
    kind = TableKind[EXPECTED["kind"].upper()]
    if expected in ("capacity", "kind") and len(body) > encoded_size(EXPECTED["capacity"], kind):
        expected = "oversized"  # the receiver refuses a too-long Content-Length unread
    status, reply = server.post(body)
    assert status == STATUS[expected], (status, reply)
    if expected == "accepted":
        assert len(server.delivered) == 1
    else:
        assert reply["error"] == expected
        assert server.rejected(expected) == 1
        assert server.delivered == []
