"""Calculated checks over children, including calculated children (pure, no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.calculated import CalculatedPlan, apply_calculated
from aggregator.tick import Plan, TickCore
from aggregator.window import Entry
from sim.testing import document_dict
from urn.config import parse_document
from urn.table import CheckerPlanes, Reason, Status, aggregated_byte, checker_table

H = int(Status.HEALTHY)
U = int(Status.UNKNOWN)
DOWN_REFUSED = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
DOWN_TIMEOUT = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)


def evaluate(children: list[int], at_least: int) -> int:
    """One calculated slot (10) over slots 0..len(children)-1 holding `children`."""
    table = np.zeros(16, dtype=np.uint8)
    table[: len(children)] = children
    plan = CalculatedPlan.build(16, {10: (list(range(len(children))), at_least)})
    apply_calculated(table, plan, np.empty(17, np.uint8))
    return int(table[10])


@pytest.mark.parametrize(
    ("children", "at_least", "expected"),
    [
        ([H, H, H], 2, H),
        ([H, DOWN_REFUSED, DOWN_REFUSED], 2, DOWN_REFUSED),
        ([H, DOWN_REFUSED, DOWN_TIMEOUT], 1, H),
        ([DOWN_TIMEOUT, DOWN_REFUSED, DOWN_TIMEOUT], 1, DOWN_TIMEOUT),  # most common reason
        ([DOWN_REFUSED, DOWN_TIMEOUT], 1, DOWN_TIMEOUT),  # tie: the lower code
        # unknown children: undecided unless the known ones settle it
        ([U, U, U], 1, U),
        ([H, U, U], 1, H),
        ([H, U, DOWN_REFUSED], 2, U),  # the unknown child decides
        ([U, DOWN_REFUSED, DOWN_REFUSED], 2, DOWN_REFUSED),  # even a healthy unknown can't save it
        ([U, U], 0, H),  # healthy_if_at_least 0: always healthy
    ],
)
def test_rule(children: list[int], at_least: int, expected: int) -> None:
    assert evaluate(children, at_least) == expected


def test_calculated_children_are_evaluated_first() -> None:
    checks = [
        {"slot": 0, "type": "tcp", "host": "127.0.0.1", "port": 1, "failures": 1, "of_last": 1},
        {"slot": 1, "type": "tcp", "host": "127.0.0.1", "port": 2, "failures": 1, "of_last": 1},
        {"slot": 2, "type": "tcp", "host": "127.0.0.1", "port": 3, "failures": 1, "of_last": 1},
        # listed before its calculated child on purpose
        {"slot": 7, "type": "calculated", "children": [5, 2], "healthy_if_at_least": 2},
        {"slot": 5, "type": "calculated", "children": [0, 1], "healthy_if_at_least": 1},
    ]
    plan = Plan.from_document(parse_document(document_dict(checks, capacity=8)))
    assert [level.slots.tolist() for level in plan.calculated.levels] == [[5], [7]]
    assert plan.calculated.slots.tolist() == [5, 7]
    assert plan.thresholds.probed.tolist() == [True, True, True] + [False] * 5
    core = TickCore(8)
    out = np.empty(8, np.uint8)

    def run(*values: int) -> list[int]:
        table = np.zeros(8, np.uint8)
        table[:3] = values
        table[5] = table[7] = 3  # checkers report nothing useful for calculated slots
        planes = CheckerPlanes(checker_table(table), 8)  # history: each slot's last probe
        entry = Entry("chk-1", "a", 1, 0.0, 0.0, planes.last, planes.history)
        result = core.compute([entry], plan, out)
        assert (result.checkers, result.azs) == (1, 1)
        return result.table[[5, 7]].tolist()

    assert run(1, 3, 1) == [H, H]
    assert run(3, 3, 1) == [DOWN_REFUSED, DOWN_REFUSED]
    assert run(1, 1, 2) == [H, DOWN_TIMEOUT]
    assert run(0, 0, 1) == [U, U]
    assert run(1, 0, 0) == [H, U]


def test_a_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        CalculatedPlan.build(4, {1: ([2], 1), 2: ([1], 1)})


def test_no_calculated_checks_is_a_no_op() -> None:
    table = np.arange(4, dtype=np.uint8)
    plan = CalculatedPlan.build(4, {})
    apply_calculated(table, plan, np.empty(5, np.uint8))
    assert table.tolist() == [0, 1, 2, 3]
    assert plan.slots.tolist() == []
