"""DriftMap: a table made under an earlier config speaks only for slots whose target stayed.

Pure: config documents are parsed in memory; no files, clocks or sockets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aggregator.tick import Plan, TickCore
from aggregator.window import Entry
from sim.testing import document_dict
from urn.config import Document, parse_document
from urn.drift import REMEMBERED_CONFIGS, DriftMap, fingerprints
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 16
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)

BEFORE: list[dict[str, Any]] = [
    {"slot": 0, "name": "host", "type": "tcp", "host": "10.0.0.1", "port": 80},
    {"slot": 1, "name": "port", "type": "tcp", "host": "10.0.0.2", "port": 80},
    {"slot": 2, "name": "type", "type": "tcp", "host": "10.0.0.3", "port": 80},
    {"slot": 3, "name": "path", "type": "http", "host": "10.0.0.4", "path": "/a"},
    {"slot": 4, "name": "search", "type": "http", "host": "10.0.0.5", "search": "ok"},
    {"slot": 5, "name": "same", "type": "tcp", "host": "10.0.0.6", "port": 80},
    {"slot": 6, "name": "rule", "type": "tcp", "host": "10.0.0.7", "port": 80},
    {"slot": 7, "name": "tls", "type": "https", "host": "10.0.0.8"},
]
AFTER: list[dict[str, Any]] = [
    {"slot": 0, "name": "host", "type": "tcp", "host": "10.0.9.1", "port": 80},
    {"slot": 1, "name": "port", "type": "tcp", "host": "10.0.0.2", "port": 81},
    {"slot": 2, "name": "type", "type": "http", "host": "10.0.0.3", "port": 80},
    {"slot": 3, "name": "path", "type": "http", "host": "10.0.0.4", "path": "/b"},
    {"slot": 4, "name": "search", "type": "http", "host": "10.0.0.5", "search": "fine"},
    {"slot": 5, "name": "same", "type": "tcp", "host": "10.0.0.6", "port": 80},
    # how it is judged, named or timed changes nothing about what is probed
    {"slot": 6, "name": "rule-renamed", "type": "tcp", "host": "10.0.0.7", "port": 80,
     "failures": 2, "of_last": 3, "timeout": 0.5, "quorum": {"min_checkers": 2}},
    {"slot": 7, "name": "tls", "type": "https", "host": "10.0.0.8", "verify_tls": True},
]  # fmt: skip
TARGET_CHANGED = [0, 1, 2, 3, 4, 7]
UNCHANGED = [5, 6]


def doc(checks: list[dict[str, Any]], **top: Any) -> Document:
    return parse_document(document_dict(checks, capacity=CAPACITY, **top))


def test_changed_targets_are_masked_and_the_rest_kept() -> None:
    before, after = doc(BEFORE), doc(AFTER)
    assert before.digest != after.digest
    drift = DriftMap()
    drift.apply(before)
    assert drift.current == before.digest
    assert drift.changed(before.digest) is None  # the config in force: nothing to mask
    drift.apply(after)
    assert drift.current == after.digest
    assert drift.changed(after.digest) is None
    mask = drift.changed(before.digest)
    assert mask is not None
    assert np.flatnonzero(mask).tolist() == TARGET_CHANGED
    assert not mask.flags.writeable


def test_a_digest_never_applied_masks_nothing() -> None:
    drift = DriftMap()
    drift.apply(doc(BEFORE))
    drift.apply(doc(AFTER))
    assert drift.changed(b"\x07" * 32) is None
    assert drift.changed(b"") is None


def test_going_back_to_a_config_masks_against_it_again() -> None:
    before, after = doc(BEFORE), doc(AFTER)
    drift = DriftMap()
    for document in (before, after, before):
        drift.apply(document)
    assert drift.current == before.digest
    assert drift.changed(before.digest) is None
    mask = drift.changed(after.digest)
    assert mask is not None
    assert np.flatnonzero(mask).tolist() == TARGET_CHANGED


def test_only_the_last_eight_configs_are_remembered() -> None:
    assert REMEMBERED_CONFIGS == 8
    # config k probes port 1000 + k on slot 0; slot 1 never changes
    documents = [
        doc(
            [
                {"slot": 0, "type": "tcp", "host": "10.0.0.1", "port": 1000 + k},
                {"slot": 1, "type": "tcp", "host": "10.0.0.2", "port": 80},
            ]
        )
        for k in range(REMEMBERED_CONFIGS + 1)
    ]
    drift = DriftMap()
    for document in documents:
        drift.apply(document)
    # the current one plus the 7 before it are remembered; the oldest is forgotten
    assert drift.changed(documents[0].digest) is None
    for document in documents[1:-1]:
        mask = drift.changed(document.digest)
        assert mask is not None, "a config among the last eight was forgotten"
        assert mask.tolist()[:2] == [True, False]
    # re-applying a remembered config makes it the newest, so it survives the next one
    drift.apply(documents[1])
    drift.apply(doc([{"slot": 0, "type": "tcp", "host": "10.0.0.1", "port": 1}]))
    assert drift.changed(documents[1].digest) is not None
    assert drift.changed(documents[2].digest) is None  # now the oldest, forgotten


def test_fingerprints_are_zero_only_where_no_check_owns_the_slot() -> None:
    prints = fingerprints(doc(BEFORE))
    assert prints.shape == (CAPACITY,)
    assert (prints[: len(BEFORE)] != 0).all()
    assert (prints[len(BEFORE) :] == 0).all()
    assert prints.tolist() == fingerprints(doc(BEFORE)).tolist()  # deterministic


@pytest.mark.parametrize("table_digest", ["before", "after", "unknown"])
def test_a_tick_reads_an_old_config_table_through_the_mask(table_digest: str) -> None:
    before, after = doc(BEFORE), doc(AFTER)
    drift = DriftMap()
    Plan.from_document(before, drift)
    plan = Plan.from_document(after, drift)
    digest = {"before": before.digest, "after": after.digest, "unknown": b"\1" * 32}
    last = np.zeros(CAPACITY, np.uint8)
    last[: len(AFTER)] = Reason.REFUSED
    history = np.full(CAPACITY, 0xFF, np.uint8)  # every probe failed
    entries = [
        Entry(name, az, 1, 0.0, 0.0, last, history, digest[table_digest])
        for name, az in (("chk-1", "a"), ("chk-2", "b"))  # slot 6 needs two checkers
    ]
    table = TickCore(CAPACITY).compute(entries, plan, np.empty(CAPACITY, np.uint8)).table
    if table_digest == "before":
        # changed targets: the old target's failure says nothing about the new one
        assert table[TARGET_CHANGED].tolist() == [Status.UNKNOWN] * len(TARGET_CHANGED)
        assert table[UNCHANGED].tolist() == [DOWN] * len(UNCHANGED)
    else:
        assert table[: len(AFTER)].tolist() == [DOWN] * len(AFTER)
