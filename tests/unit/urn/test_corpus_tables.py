"""Every file of the hostile-table corpus decodes to exactly its expected outcome."""

from __future__ import annotations

import hmac
import json
import runpy
from pathlib import Path

import pytest

from urn.errors import Undecodable, UnknownVersion, WireError
from urn.table import CheckerPlanes
from urn.wire import TableKind, decode, encoded_size, slot_bytes

CORPUS = Path(__file__).parents[2] / "corpus" / "tables"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
KEYS = tuple(bytes.fromhex(k) for k in EXPECTED["keys_hex"])
KIND = TableKind[EXPECTED["kind"].upper()]


def outcome(data: bytes) -> str:
    try:
        decode(data, KEYS, EXPECTED["capacity"], KIND)
    except WireError as exc:
        return exc.reason
    return "accepted"


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED["files"].items()))
def test_corpus_file_has_its_expected_outcome(name: str, expected: str) -> None:
    assert outcome((CORPUS / name).read_bytes()) == expected


def test_every_corpus_file_is_listed() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix == ".bin"}
    assert on_disk == set(EXPECTED["files"])


def test_corpus_covers_every_decode_reason() -> None:
    reasons = set(EXPECTED["files"].values())
    assert {
        "accepted",
        "bad_mac",
        "version",
        "capacity",
        "truncated",
        "oversized",
        "undecodable",
        "kind",
    } <= reasons


def test_corpus_is_regenerated_byte_for_byte(tmp_path: Path) -> None:
    """make_corpus.py is deterministic and the committed files are what it writes."""
    runpy.run_path(str(CORPUS / "make_corpus.py"))["write"](tmp_path)
    for written in tmp_path.iterdir():
        assert written.read_bytes() == (CORPUS / written.name).read_bytes(), written.name
    assert {p.name for p in tmp_path.iterdir()} == {
        p.name for p in CORPUS.iterdir() if p.suffix in (".bin", ".json")
    }


def test_corpus_keeps_a_genuine_version_1_table() -> None:
    """A real v1 envelope (fixarray of 10, one byte per slot, signed with an accepted key)."""
    data = (CORPUS / "wrong-version-1-envelope.bin").read_bytes()
    assert EXPECTED["files"]["wrong-version-1-envelope.bin"] == "version"
    capacity = EXPECTED["capacity"]
    assert len(data) == 153 + capacity < encoded_size(capacity, KIND)
    assert (data[0], data[1], data[2]) == (0x9A, 0xCC, 1)
    signed = data[:-34]
    assert data[-34:-32] == b"\xc4\x20"
    assert any(hmac.compare_digest(hmac.digest(k, signed, "sha256"), data[-32:]) for k in KEYS)


def test_corpus_keeps_a_genuine_version_2_table() -> None:
    """A real v2 envelope (fixarray of 12, two planes, no autoshift, signed with an accepted
    key): refused as `version`, never read as a truncated or garbled v3 table."""
    data = (CORPUS / "wrong-version-2-envelope.bin").read_bytes()
    assert EXPECTED["files"]["wrong-version-2-envelope.bin"] == "version"
    capacity = EXPECTED["capacity"]
    assert len(data) == 158 + 2 * capacity < encoded_size(capacity, KIND)
    assert (data[0], data[1], data[2]) == (0x9C, 0xCC, 2)
    signed = data[:-34]
    assert data[-34:-32] == b"\xc4\x20"
    assert any(hmac.compare_digest(hmac.digest(k, signed, "sha256"), data[-32:]) for k in KEYS)
    with pytest.raises(UnknownVersion, match="version 2, this build speaks 3"):
        decode(data, KEYS, capacity, KIND)


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("signed-autoshift-nul-inside.bin", "autoshift holds a NUL before its padding"),
        ("signed-autoshift-not-utf8.bin", "autoshift is not UTF-8"),
        ("signed-sender-nul-inside.bin", "sender holds a NUL before its padding"),
        ("signed-sender-not-utf8.bin", "sender is not UTF-8"),
    ],
)
def test_corpus_signed_text_refusals_name_their_field(name: str, detail: str) -> None:
    data = (CORPUS / name).read_bytes()
    with pytest.raises(Undecodable) as caught:
        decode(data, KEYS, EXPECTED["capacity"], KIND)
    assert str(caught.value) == detail


def test_corpus_valid_tables_carry_both_planes() -> None:
    capacity = EXPECTED["capacity"]
    envelope = decode((CORPUS / "valid.bin").read_bytes(), KEYS, capacity, KIND)
    assert len(envelope.slots) == slot_bytes(capacity, KIND) == 2 * capacity
    assert envelope.autoshift == ""  # a checker table carries none
    planes = CheckerPlanes(envelope.slots, capacity)
    assert set(planes.last.tolist()) >= set(range(12))  # every defined code, 12+ too
    assert planes.history.any()
