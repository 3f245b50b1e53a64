"""The slot explanation from a tick's inputs (pure, no I/O)."""

from __future__ import annotations

import numpy as np

from aggregator.explain import explain_slot, value_label
from aggregator.window import Entry
from urn.config import parse_document
from urn.table import Reason, Status, aggregated_byte
from urn.testing import document_dict


def test_value_labels() -> None:
    assert value_label(0) == "no_data"
    assert value_label(3) == "refused"
    assert value_label(200) == "error (code 200)"


def test_only_the_m_newest_observations_are_marked_considered() -> None:
    check = {"slot": 1, "name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432,
             "failures": 2, "of_last": 2}  # fmt: skip
    document = parse_document(document_dict([check], capacity=4))
    checks = dict(document.checks_by_slot)
    tables = [
        np.array(v, np.uint8) for v in ([0, 2, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [0, 9, 0, 0])
    ]
    entries = [Entry(f"c{i}", "a", 1, 0.0, 10.0 - i, t) for i, t in enumerate(tables)]
    table = np.array([0, Status.HEALTHY, 0, 0], np.uint8)
    out = explain_slot(
        1, check=checks[1], checks=checks, table=table, entries=entries,
        tick_at=10.0, now=10.5, staleness=5.0,
    )  # fmt: skip
    assert out["verdict"] == {"status": "healthy", "reason": None, "byte": 1}
    assert out["tick_age"] == 0.5
    assert [(o["checker"], o["reason"], o["considered"]) for o in out["observations"]] == [
        ("c0", "timeout", True),
        ("c1", "no_data", False),
        ("c2", "healthy", True),
        ("c3", "error", False),
    ]
    assert (out["considered"], out["failures"]) == (2, 1)
    assert out["checkers"] == ["c0", "c1", "c2", "c3"]
    assert [o["age"] for o in out["observations"]] == [0.5, 1.5, 2.5, 3.5]
    down = np.array([0, aggregated_byte(Status.UNHEALTHY, Reason.TLS), 0, 0], np.uint8)
    out = explain_slot(
        1, check=checks[1], checks=checks, table=down, entries=[],
        tick_at=10.0, now=10.0, staleness=5.0,
    )  # fmt: skip
    assert out["verdict"]["reason"] == "tls"
    assert out["observations"] == []
