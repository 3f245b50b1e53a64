"""The pure judgement the fault tests and the soak rely on: which answers are right."""

from __future__ import annotations

from typing import Any

from bench.soak import Timeline
from sim.chaos import expected_answers, right_answer
from sim.scenario import answer_value


def _record(policy: str, azs: tuple[str, ...] = ("a", "b", "c")) -> dict[str, Any]:
    answers: list[dict[str, Any]] = [
        {"value": answer_value(az, 0), "check": i, "weight": i + 1} for i, az in enumerate(azs)
    ]
    if policy == "failover":
        answers = [{**answers[0], "role": "primary"}, {**answers[1], "role": "secondary"}]
    return {"name": "svc0.example.com.", "policy": policy, "answers": answers}


A, B, C = (answer_value(az, 0) for az in "abc")


def test_multivalue_and_simple_answer_every_healthy_value() -> None:
    for policy in ("multivalue", "simple"):
        record = _record(policy)
        assert right_answer(record, frozenset({A, B, C}), 0, dead=())
        assert right_answer(record, frozenset({A, C}), 0, dead={"b"})
        assert not right_answer(record, frozenset({A, B, C}), 0, dead={"b"})  # dead answer
        assert not right_answer(record, frozenset({A}), 0, dead={"b"})  # healthy one dropped


def test_every_answer_dead_fails_open_to_all_of_them() -> None:
    record = _record("multivalue")
    assert right_answer(record, frozenset({A, B, C}), 0, dead={"a", "b", "c"})


def test_weighted_answers_one_healthy_value() -> None:
    record = _record("weighted")
    assert expected_answers(record, {"b"}) == [frozenset({A}), frozenset({C})]
    assert not right_answer(record, frozenset({B}), 0, dead={"b"})
    assert not right_answer(record, frozenset({A, C}), 0, dead={"b"})


def test_failover_answers_the_primary_while_it_lives() -> None:
    record = _record("failover")
    assert right_answer(record, frozenset({A}), 0, dead={"b"})
    assert right_answer(record, frozenset({B}), 0, dead={"a"})
    assert right_answer(record, frozenset({A}), 0, dead={"a", "b"})  # fail open: primary
    assert not right_answer(record, frozenset({B}), 0, dead=())


def test_an_error_rcode_is_never_right() -> None:
    assert not right_answer(_record("simple"), frozenset(), 2, dead=())


def test_timeline_knows_what_was_dead_when_and_who_was_restarting() -> None:
    timeline = Timeline(dead=[(0.0, frozenset()), (10.0, frozenset({"b"}))])
    timeline.restarts.append((20.0, 21.0, "resolver-1"))
    assert timeline.dead_at(5.0) == (frozenset(), 0.0)
    assert timeline.dead_at(12.0) == (frozenset({"b"}), 10.0)
    assert timeline.restarting("resolver-1", 20.5, grace=1.0)
    assert timeline.restarting("resolver-1", 21.9, grace=1.0)
    assert not timeline.restarting("resolver-1", 22.5, grace=1.0)
    assert not timeline.restarting("resolver-2", 20.5, grace=1.0)
