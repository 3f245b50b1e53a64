"""assign.py as a fleet-wide contract: every checker, of any build, must compute the same owners.

The rendezvous rule is spelled out in the module docstring (the k checkers with the highest
64-bit big-endian blake2b of "key NUL checker"); these tests hold the code to that text, so
changing the hash or the order is a deliberate, fleet-wide decision and not an accident.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from checker.assign import assigned_checks, shard_owners
from checker.settings import CheckerSettings
from sim.testing import document_dict
from urn.config import Document, parse_document
from urn.errors import ConfigError

CHECKERS = [f"chk-{i}" for i in range(8)]


def _spec_owners(key: str, checkers: list[str], k: int) -> tuple[str, ...]:
    """The documented rule, written out independently of checker.assign."""

    def weight(checker: str) -> int:
        digest = hashlib.blake2b(f"{key}\0{checker}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return tuple(sorted(checkers, key=lambda c: (weight(c), c), reverse=True)[:k])


def _document(**top: Any) -> Document:
    checks = [
        {"slot": i, "name": f"web-{i}", "type": "tcp", "host": "127.0.0.1", "port": 1000 + i}
        for i in range(20)
    ]
    return parse_document(document_dict(checks, **top))


@pytest.mark.parametrize("k", [1, 2, 3, 8])
def test_owners_are_the_highest_blake2b_weights(k: int) -> None:
    for slot in range(50):
        key = f"{slot}/web-{slot}"
        assert shard_owners(key, CHECKERS, k) == _spec_owners(key, CHECKERS, k)


def test_owners_are_a_stable_known_vector() -> None:
    # Computed once from the documented rule; a mixed-version fleet relies on it not moving.
    assert shard_owners("7/web-7", CHECKERS, 3) == ("chk-1", "chk-6", "chk-3")
    assert shard_owners("7/web-7", CHECKERS, 3) == _spec_owners("7/web-7", CHECKERS, 3)


def test_sharded_checker_runs_exactly_the_checks_it_owns() -> None:
    document = _document(assignment={"shuffle_shard": 2, "checkers": CHECKERS})
    for checker in CHECKERS:
        mine = assigned_checks(document, CheckerSettings(id=checker, az="a"))
        expected = [
            c.slot
            for c in document.checks
            if checker in _spec_owners(f"{c.slot}/{c.name}", CHECKERS, 2)
        ]
        assert [c.slot for c in mine] == expected


def test_unlisted_sharded_checker_error_shows_the_list_and_the_fix() -> None:
    document = _document(assignment={"shuffle_shard": 2, "checkers": CHECKERS})
    with pytest.raises(ConfigError) as info:
        assigned_checks(document, CheckerSettings(id="stranger", az="a"))
    assert info.value.value == CHECKERS
    assert str(info.value) == (
        f"assignment.checkers: {CHECKERS!r} does not list this checker 'stranger', but "
        "shuffle_shard is 2: add it to the list or run without sharding"
    )
