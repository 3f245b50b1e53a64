"""Judging failover from a query stream: pure, with hand-made histories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from sim.scenario import answer_value, attribute
from sim.verdict import Verdict, came_back, judge

A0, B0, C0 = answer_value("a", 0), answer_value("b", 0), answer_value("c", 0)
MULTI = {
    "name": "svc0.example.com.",
    "policy": "multivalue",
    "answers": [{"value": A0}, {"value": B0}, {"value": C0}],
}
FAILOVER = {
    "name": "svc2.example.com.",
    "policy": "failover",
    "answers": [{"value": B0, "role": "primary"}, {"value": C0, "role": "secondary"}],
}


@dataclass(frozen=True)
class Seen:
    at: float
    answers: frozenset[str]
    rcode: int = 0


def seen(at: float, *values: str) -> Seen:
    return Seen(at, frozenset(values))


def judge_b(
    records: list[dict[str, Any]],
    history: dict[str, list[Seen]],
    *,
    bound: float = 3.0,
    dead: set[str] | None = None,
) -> Verdict:
    """`judge` of the usual story here: AZ b fails at 10 s and is back at 20 s."""
    return judge(
        records,
        history,
        dead_az="b",
        failed_at=10.0,
        restored_at=20.0,
        bound=bound,
        settle=3.0,
        dead=dead,
    )


def test_answer_values_map_back_to_az_and_index() -> None:
    assert attribute(answer_value("c", 300)) == ("c", 300)
    assert attribute("192.0.2.1") is None
    assert attribute("not an address") is None


def test_prompt_turn_away_is_detected_and_clean() -> None:
    history = {
        "svc0.example.com.": [
            seen(9.0, A0, B0, C0),
            seen(10.5, A0, B0, C0),
            seen(11.0, A0, C0),
            seen(15.0, A0, C0),
            seen(20.5, A0, C0),
            seen(21.5, A0, B0, C0),
        ]
    }
    verdict = judge_b([MULTI], history)
    assert verdict.detection == {"svc0.example.com.": 0.5}
    assert verdict.recovery == {"svc0.example.com.": 1.5}
    assert verdict.ok


def test_dead_answers_after_the_bound_are_counted() -> None:
    history = {
        "svc0.example.com.": [seen(10.5, A0, B0, C0), seen(14.0, A0, B0, C0), seen(15.0, A0, C0)]
    }
    verdict = judge_b([MULTI], history)
    assert verdict.dead_after_bound == 1
    assert not verdict.ok


def test_a_name_still_dead_at_the_end_never_turned() -> None:
    history = {"svc0.example.com.": [seen(11.0, A0, B0, C0), seen(19.0, A0, B0, C0)]}
    verdict = judge_b([MULTI], history, bound=30.0)
    assert verdict.never_turned == ["svc0.example.com."]


def test_a_missing_healthy_answer_is_a_drop_even_during_the_failure() -> None:
    history = {"svc0.example.com.": [seen(12.0, A0)]}
    verdict = judge_b([MULTI], history)
    assert verdict.healthy_dropped == 1
    assert verdict.dropped_examples


def test_failover_to_secondary_while_primary_is_dead_is_not_a_drop() -> None:
    history = {"svc2.example.com.": [seen(9.0, B0), seen(12.0, C0), seen(30.0, B0)]}
    verdict = judge_b([FAILOVER], history)
    assert verdict.healthy_dropped == 0
    assert verdict.ok


def test_failover_away_from_a_live_primary_is_a_drop() -> None:
    history = {"svc2.example.com.": [seen(5.0, C0)]}
    verdict = judge_b([FAILOVER], history)
    assert verdict.healthy_dropped == 1


def test_an_error_rcode_is_a_drop() -> None:
    history = {"svc0.example.com.": [Seen(5.0, frozenset(), rcode=2)]}
    verdict = judge_b([MULTI], history)
    assert verdict.healthy_dropped == 1


WEIGHTED = {
    "name": "svc1.example.com.",
    "policy": "weighted",
    "answers": [
        {"value": A0, "weight": 1},
        {"value": B0, "weight": 2},
        {"value": C0, "weight": 3},
    ],
}
FAILOVER_TO_B = {
    "name": "svc6.example.com.",
    "policy": "failover",
    "answers": [{"value": C0, "role": "primary"}, {"value": B0, "role": "secondary"}],
}


def test_names_that_serve_the_dead_az_only_by_chance_give_no_detection_time() -> None:
    """A weighted draw, or a failover whose secondary died: the last dead answer is luck."""
    history = {
        "svc1.example.com.": [seen(9.0, C0), seen(10.2, B0), seen(10.4, C0), seen(12.0, A0)],
        "svc6.example.com.": [seen(9.0, C0), seen(12.0, C0)],
        "svc2.example.com.": [seen(9.0, B0), seen(10.3, B0), seen(11.8, C0)],
    }
    verdict = judge_b([WEIGHTED, FAILOVER_TO_B, FAILOVER], history)
    assert verdict.detection == {"svc2.example.com.": pytest.approx(0.3)}
    assert sorted(verdict.unmeasured) == ["svc1.example.com.", "svc6.example.com."]
    assert verdict.ok


def test_a_weighted_name_still_serving_the_dead_az_at_the_end_never_turned() -> None:
    history = {"svc1.example.com.": [seen(11.0, B0), seen(19.0, B0)]}
    verdict = judge_b([WEIGHTED], history, bound=30.0)
    assert verdict.never_turned == ["svc1.example.com."]


B1 = answer_value("b", 1)
MULTI_B1 = {
    "name": "svc4.example.com.",
    "policy": "multivalue",
    "answers": [{"value": answer_value("a", 1)}, {"value": B1}, {"value": answer_value("c", 1)}],
}


def test_a_partial_failure_excuses_only_the_dead_answers() -> None:
    """Target b-0 died, b-1 lives: b-1 missing is a drop, b-0 missing is the point."""
    a1, c1 = answer_value("a", 1), answer_value("c", 1)
    history = {
        "svc0.example.com.": [seen(9.0, A0, B0, C0), seen(11.0, A0, C0), seen(21.0, A0, B0, C0)],
        "svc4.example.com.": [seen(9.0, a1, B1, c1), seen(11.0, a1, B1, c1), seen(12.0, a1, c1)],
    }
    verdict = judge_b([MULTI, MULTI_B1], history, dead={B0})
    assert verdict.detection == {"svc0.example.com.": 0.0}
    assert verdict.recovery == {"svc0.example.com.": 1.0}
    assert verdict.healthy_dropped == 1
    assert verdict.dropped_examples == [f"svc4.example.com. at +2.00s: {sorted([a1, c1])}"]


def test_came_back_times_every_returning_name_and_names_the_missing() -> None:
    history = {
        "svc0.example.com.": [seen(19.0, A0, C0), seen(21.5, A0, B0, C0)],
        "svc2.example.com.": [seen(19.0, C0), seen(20.5, C0)],
        "svc1.example.com.": [seen(21.0, A0)],  # weighted: served by chance, not judged
    }
    back, never = came_back([MULTI, FAILOVER, WEIGHTED], history, dead_az="b", restored_at=20.0)
    assert back == {"svc0.example.com.": 1.5}
    assert never == ["svc2.example.com."]
    # Every answer died: a failover is back when its primary is, whatever its secondary.
    both = {
        **FAILOVER,
        "answers": [{"value": B0, "role": "primary"}, {"value": B1, "role": "secondary"}],
    }
    back, never = came_back(
        [both], {"svc2.example.com.": [seen(21.0, B0)]}, dead_az="b", restored_at=20.0
    )
    assert back == {"svc2.example.com.": 1.0}
    assert never == []
