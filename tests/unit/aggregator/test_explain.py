"""The slot explanation from a tick's inputs (pure, no I/O).

Each case computes the aggregated table with the same `TickCore` the service runs, then
checks that the explanation's per-checker verdicts and quorum outcome account for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aggregator.explain import explain_slot, value_label
from aggregator.tick import Plan, TickCore
from aggregator.window import Entry
from sim.testing import document_dict
from urn.config import Document, parse_document
from urn.drift import DriftMap
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 4
SLOT = 1
OK, TIMEOUT = int(Reason.HEALTHY), int(Reason.TIMEOUT)
LOCAL, STALE = int(Reason.LOCAL), int(Reason.STALE)


def test_value_labels() -> None:
    assert value_label(0) == "no_data"
    assert value_label(3) == "refused"
    assert value_label(9) == "error"
    assert value_label(10) == "local"
    assert value_label(11) == "stale"
    assert value_label(12) == "error (code 12)"
    assert value_label(200) == "error (code 200)"


def document(port: int = 5432, **top: Any) -> Document:
    check = {"slot": SLOT, "name": "db", "type": "tcp", "host": "127.0.0.1", "port": port,
             "failures": 2, "of_last": 3}  # fmt: skip
    spare = {"slot": 2, "name": "spare", "type": "tcp", "host": "127.0.0.1", "port": 6432}
    calculated = {"slot": 3, "name": "all", "type": "calculated", "children": [SLOT, 2]}
    return parse_document(document_dict([check, spare, calculated], capacity=CAPACITY, **top))


OLD = document(port=5433)  # slot 1 probed another target under this config


def plan_for(current: Document) -> Plan:
    drift = DriftMap()
    Plan.from_document(OLD, drift)
    return Plan.from_document(current, drift)


def entry(sender: str, az: str, last: int, history: int, age: float, digest: bytes = b"") -> Entry:
    last_plane = np.zeros(CAPACITY, np.uint8)
    history_plane = np.zeros(CAPACITY, np.uint8)
    last_plane[SLOT], history_plane[SLOT] = last, history
    return Entry(sender, az, 7, 0.0, 10.0 - age, last_plane, history_plane, digest or b"")


def explain(current: Document, entries: list[Entry], slot: int = SLOT) -> dict[str, Any]:
    """Tick over `entries`, then explain `slot` of the table that tick made."""
    plan = plan_for(current)
    table = TickCore(CAPACITY).compute(entries, plan, np.empty(CAPACITY, np.uint8)).table
    checks = dict(current.checks_by_slot)
    out = explain_slot(
        slot, check=checks.get(slot), checks=checks, table=table, entries=entries,
        plan=plan, tick_at=10.0, now=10.5, staleness=5.0,
    )  # fmt: skip
    return out


def mixed_fleet() -> list[Entry]:
    return [
        entry("c0", "a", TIMEOUT, 0b011, 0.0),  # 2 of its last 3 failed: unhealthy
        entry("c1", "a", LOCAL, 0b111, 1.0),  # its own trouble: no verdict
        entry("c2", "b", OK, 0b1100, 2.0),  # bit 2 failed, bit 3 too old: 1 of 3
        entry("c3", "c", STALE, 0b111, 3.0),  # not probed recently: no verdict
        entry("c4", "c", TIMEOUT, 0xFF, 0.5, OLD.digest),  # made for another target
        entry("c5", "b", 200, 0b001, 1.5),  # an unknown failure code, once
    ]


def test_every_fresh_checker_with_its_own_verdict() -> None:
    out = explain(document(), mixed_fleet())
    assert out["slot"] == SLOT
    assert out["check"] == "db"
    assert out["type"] == "tcp"
    assert out["tick_age"] == 0.5
    assert out["rule"] == {
        "failures": 2,
        "of_last": 3,
        "unhealthy_at": 0.51,
        "min_checkers": 1,
        "cross_az": True,
    }
    rows = out["checkers"]
    assert [
        (r["checker"], r["az"], r["verdict"], r["last"], r["history"], r["failed_of_last"])
        for r in rows
    ] == [
        ("c0", "a", "unhealthy", "timeout", "00000011", 2),
        ("c1", "a", "unknown", "local", "00000111", 3),
        ("c2", "b", "healthy", "healthy", "00001100", 1),
        ("c3", "c", "unknown", "stale", "00000111", 3),
        ("c4", "c", "unknown", "timeout", "11111111", 3),
        ("c5", "b", "healthy", "error (code 200)", "00000001", 1),
    ]
    assert [r["age"] for r in rows] == [0.5, 1.5, 2.5, 3.5, 1.0, 2.0]
    assert all(r["sequence"] == 7 for r in rows)
    why = {r["checker"]: r.get("why_no_verdict") for r in rows}
    assert [name for name, text in why.items() if text is None] == ["c0", "c2", "c5"]
    assert "local" in why["c1"]
    assert "stale" in why["c3"]
    assert "another target" in why["c4"]  # the config changed under that table
    assert out["quorum"] == {
        "fresh_checkers": 6,
        "verdicts": 3,
        "unhealthy": 1,
        "healthy": 2,
        "unhealthy_azs": ["a"],
        "healthy_azs": ["b"],
        "outcome": "healthy: 1 of 3 unhealthy, fewer than unhealthy_at 0.51 of them",
    }
    assert out["verdict"] == {"status": "healthy", "reason": None, "byte": 1}


def test_the_outcome_names_the_vetoed_az() -> None:
    out = explain(document(quorum={"unhealthy_at": 0.3}), mixed_fleet())
    outcome = out["quorum"]["outcome"]
    # 1 of 3 is above 0.3, but only AZ a says so while AZ b judges it healthy
    assert outcome.startswith("healthy: only AZ a judges it unhealthy")
    assert outcome.endswith("AZ b judges it healthy")
    assert out["verdict"]["status"] == "healthy"
    # without the AZ rule the same verdicts take it down
    out = explain(document(quorum={"unhealthy_at": 0.3, "cross_az": False}), mixed_fleet())
    assert out["quorum"]["outcome"] == "unhealthy: 1 of 3 checkers judge it unhealthy"
    assert out["verdict"] == {
        "status": "unhealthy",
        "reason": "timeout",
        "byte": aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT),
    }


def test_unhealthy_across_azs_despite_a_healthy_az() -> None:
    fleet = mixed_fleet()
    fleet[2] = entry("c2", "b", TIMEOUT, 0b111, 2.0)
    fleet[5] = entry("c5", "b", 200, 0b011, 1.5)
    fleet.append(entry("c6", "c", OK, 0, 0.2))
    out = explain(document(), fleet)
    quorum = out["quorum"]
    assert (quorum["verdicts"], quorum["unhealthy"], quorum["healthy"]) == (4, 3, 1)
    assert quorum["unhealthy_azs"] == ["a", "b"]
    assert quorum["healthy_azs"] == ["c"]
    # two AZs see it down: AZ c's healthy word does not veto
    assert quorum["outcome"] == "unhealthy: 3 of 4 checkers judge it unhealthy"
    assert out["verdict"]["status"] == "unhealthy"
    assert out["verdict"]["reason"] == "timeout"  # timeout twice, error (200) once


NO_VERDICT = "unknown: no fresh checker has a verdict on this slot"


@pytest.mark.parametrize(
    ("top", "senders", "outcome"),
    [
        ({"quorum": {"min_checkers": 4}}, "c0 c1 c2 c3 c4 c5",
         "unknown: 3 verdicts, fewer than min_checkers 4"),
        ({}, "c1 c3 c4", NO_VERDICT),  # LOCAL, STALE and a changed target only
        ({}, "", NO_VERDICT),
    ],
)  # fmt: skip
def test_unknown_outcomes(top: dict[str, Any], senders: str, outcome: str) -> None:
    fleet = [e for e in mixed_fleet() if e.sender in senders.split()]
    out = explain(document(**top), fleet)
    assert out["quorum"]["outcome"] == outcome
    assert out["quorum"]["fresh_checkers"] == len(fleet)
    assert out["verdict"] == {"status": "unknown", "reason": None, "byte": 0}


def test_calculated_and_unowned_slots() -> None:
    fleet = mixed_fleet()
    out = explain(document(), fleet, slot=3)
    assert out["rule"] == {"healthy_if_at_least": 1}
    assert out["children"] == [
        {"slot": SLOT, "check": "db", "status": "healthy", "reason": None, "byte": 1},
        {"slot": 2, "check": "spare", "status": "unknown", "reason": None, "byte": 0},
    ]
    out = explain(document(), fleet, slot=0)
    assert out["check"] is None
    assert "no check owns this slot" in out["rule"]
    assert "checkers" not in out
