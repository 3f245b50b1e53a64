"""The behaviours the quorum of checkers and AZs exists for (pure, no I/O).

Each checker judges a slot from its own probe history (N of its last M probes failed);
the fleet's verdict is a quorum of those verdicts, and with `cross_az` one AZ's
checkers alone cannot take down a target another AZ's checkers see healthy.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from aggregator.condition import Conditioner, Observation, Thresholds
from aggregator.tick import Plan, TickCore
from aggregator.window import Entry
from sim.testing import document_dict
from urn.config import Quorum, parse_document
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 8
OK, REFUSED, TIMEOUT = int(Reason.HEALTHY), int(Reason.REFUSED), int(Reason.TIMEOUT)
HEALTHY, UNKNOWN = int(Status.HEALTHY), int(Status.UNKNOWN)
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)
EVERY_PROBE_FAILED = 0xFF


def rule(failures: int = 1, of_last: int = 1, quorum: Quorum | None = None) -> Thresholds:
    """The same rule on every slot; the fleet's default quorum unless given."""
    q = quorum or Quorum()
    return Thresholds.build(
        CAPACITY,
        [
            (s, failures, of_last, q.unhealthy_at, q.min_checkers, q.cross_az)
            for s in range(CAPACITY)
        ],
    )


def checker(az: str, last: int, history: int | None = None) -> Observation:
    """A checker table holding `last` (and `history`) on every slot."""
    if history is None:
        history = EVERY_PROBE_FAILED if last >= 2 else 0
    return Observation(np.full(CAPACITY, last, np.uint8), np.full(CAPACITY, history, np.uint8), az)


def verdicts(fleet: list[Observation], thresholds: Thresholds | None = None) -> set[int]:
    """The distinct aggregated bytes over all slots (one when every slot agrees)."""
    out = np.empty(CAPACITY, np.uint8)
    Conditioner(CAPACITY).evaluate(fleet, thresholds or rule(), out)
    return set(out.tolist())


# One AZ's checkers seeing the world wrongly (their own network, a bad route) ----------

ONE_AZ_WRONG_3X2 = [
    checker("a", REFUSED),
    checker("a", REFUSED),
    checker("b", OK),
    checker("b", OK),
    checker("c", OK),
    checker("c", OK),
]
ONE_AZ_WRONG_3X1 = [checker("a", REFUSED), checker("b", OK), checker("c", OK)]


@pytest.mark.parametrize(
    "fleet",
    [
        ONE_AZ_WRONG_3X2,
        ONE_AZ_WRONG_3X2[:-1],  # one healthy checker gone
        ONE_AZ_WRONG_3X1,
        ONE_AZ_WRONG_3X1[:-1],
    ],
    ids=["3x2", "3x2-less-one", "3x1", "3x1-less-one"],
)
def test_one_az_alone_cannot_take_a_target_down(fleet: list[Observation]) -> None:
    assert verdicts(fleet) == {HEALTHY}
    # Even when the fraction alone would call it down, the other AZs' healthy word wins ...
    lenient = Quorum(unhealthy_at=0.2)
    assert verdicts(fleet, rule(quorum=lenient)) == {HEALTHY}
    # ... and that is the AZ rule's doing: without it the same fleet is unhealthy.
    assert verdicts(fleet, rule(quorum=replace(lenient, cross_az=False))) == {DOWN}


def test_a_real_failure_seen_by_every_checker_is_unhealthy() -> None:
    fleet = [checker(az, REFUSED) for az in "aabbcc"]
    assert verdicts(fleet) == {DOWN}
    assert verdicts(fleet[::2]) == {DOWN}  # 3 x 1


def test_an_az_gone_does_not_stop_the_others_calling_it_down() -> None:
    # AZ b's checkers are gone (no tables); a and c both see the failure
    fleet = [checker("a", REFUSED), checker("a", REFUSED), checker("c", REFUSED)]
    assert verdicts(fleet) == {DOWN}
    # one healthy dissenter in c: 2 unhealthy AZs, 3 of 4 unhealthy: still down
    assert verdicts([*fleet, checker("c", OK)]) == {DOWN}


def test_the_veto_needs_one_unhealthy_az_and_another_judging_only_healthy() -> None:
    lenient = rule(quorum=Quorum(unhealthy_at=0.3))
    # a is split, c is healthy: a's lone unhealthy verdict is overruled by c
    assert verdicts([checker("a", REFUSED), checker("a", OK), checker("c", OK)], lenient) == {
        HEALTHY
    }
    # no AZ judges only healthy: nobody vetoes, the fraction decides
    assert verdicts([checker("a", REFUSED), checker("a", OK)], lenient) == {DOWN}
    # two AZs judge it unhealthy: c's healthy checkers do not veto
    fleet = [checker("a", REFUSED), checker("b", REFUSED), checker("c", OK), checker("c", OK)]
    assert verdicts(fleet, rule(quorum=Quorum(unhealthy_at=0.5))) == {DOWN}


def test_below_min_checkers_the_slot_is_unknown() -> None:
    strict = rule(quorum=Quorum(min_checkers=3))
    fleet = [checker("a", REFUSED), checker("b", REFUSED)]
    assert verdicts(fleet, strict) == {UNKNOWN}
    # checkers without a verdict do not count toward it
    assert verdicts([*fleet, checker("c", int(Reason.LOCAL))], strict) == {UNKNOWN}
    assert verdicts([*fleet, checker("c", REFUSED)], strict) == {DOWN}
    assert verdicts([checker("a", OK), checker("b", OK), checker("c", OK)], strict) == {HEALTHY}


def test_no_verdict_at_all_is_unknown() -> None:
    assert verdicts([]) == {UNKNOWN}
    assert verdicts([checker("a", 0, EVERY_PROBE_FAILED)]) == {UNKNOWN}


# Route 53's rule: healthy while more than 18 % of checkers say healthy -----------------

ROUTE53 = [
    {"slot": 0, "type": "tcp", "host": "10.0.0.1", "port": 80},
    {"slot": 1, "type": "tcp", "host": "10.0.0.2", "port": 80,
     "quorum": {"unhealthy_at": 1.0}},  # override: every checker must agree
]  # fmt: skip


def route53_plan() -> Plan:
    document = document_dict(ROUTE53, capacity=CAPACITY, quorum={"unhealthy_at": 0.82})
    return Plan.from_document(parse_document(document))


@pytest.mark.parametrize(
    ("unhealthy", "expected"),
    [(16, DOWN), (14, DOWN), (13, HEALTHY), (3, HEALTHY), (0, HEALTHY)],
)
def test_route53_rule_from_the_config(unhealthy: int, expected: int) -> None:
    plan = route53_plan()
    assert plan.thresholds.rule_of(0)["unhealthy_at"] == 0.82
    entries = []
    for i in range(16):  # 16 checkers over 3 AZs; the failing ones spread across them
        last = REFUSED if i < unhealthy else OK
        table = np.zeros(CAPACITY, np.uint8)
        table[:2] = last
        history = np.where(table >= 2, 1, 0).astype(np.uint8)
        entries.append(Entry(f"chk-{i:02d}", "abc"[i % 3], 1, 0.0, 0.0, table, history))
    out = TickCore(CAPACITY).compute(entries, plan, np.empty(CAPACITY, np.uint8)).table
    assert out[0] == expected  # 14/16 = 0.875 >= 0.82; 13/16 = 0.8125 is not
    assert out[1] == (DOWN if unhealthy == 16 else HEALTHY)  # the per-check override


def test_the_fleet_quorum_defaults() -> None:
    document = parse_document(document_dict(ROUTE53[:1], capacity=CAPACITY))
    assert document.checks[0].quorum == Quorum(unhealthy_at=0.51, min_checkers=1, cross_az=True)
    assert (document.checks[0].failures, document.checks[0].of_last) == (1, 1)
    # 0.51: a strict majority. 1 of 2 is not, 2 of 3 is.
    two = [checker("a", REFUSED), checker("b", OK)]
    assert verdicts(two) == {HEALTHY}
    three = [checker("a", REFUSED), checker("b", REFUSED), checker("c", OK)]
    assert verdicts(three) == {DOWN}


# Each checker's N-of-M reads its own probe history --------------------------------------


@pytest.mark.parametrize(
    ("last", "history", "expected"),
    [
        (REFUSED, 0b001, HEALTHY),  # one failed probe is not 2 of 3
        (OK, 0b001, HEALTHY),
        (REFUSED, 0b011, DOWN),
        (REFUSED, 0b101, DOWN),
        (OK, 0b110, aggregated_byte(Status.UNHEALTHY, Reason.ERROR)),  # no failure to name
        (REFUSED, 0b1001, HEALTHY),  # bit 3 is older than the last 3 probes
        (OK, 0b11111000, HEALTHY),
        (TIMEOUT, 0b111, aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)),
    ],
)
def test_n_of_m_reads_the_history_bits(last: int, history: int, expected: int) -> None:
    fleet = [checker(az, last, history) for az in "abc"]
    assert verdicts(fleet, rule(failures=2, of_last=3)) == {expected}


def test_one_failed_probe_per_checker_does_not_add_up_across_checkers() -> None:
    # every checker saw one failure: with failures = 2 none of them judges unhealthy
    fleet = [checker(az, REFUSED, 0b1) for az in "aabbcc"]
    assert verdicts(fleet, rule(failures=2, of_last=3)) == {HEALTHY}
    assert verdicts(fleet, rule(failures=1, of_last=3)) == {DOWN}


# No verdict: the checker's own trouble, a stale slot, a changed target -----------------


@pytest.mark.parametrize("no_data", [int(Reason.LOCAL), int(Reason.STALE), 0])
def test_local_and_stale_last_bytes_give_no_verdict(no_data: int) -> None:
    # a checker with a failing history but a no-data last byte is not counted at all
    silent = checker("a", no_data, EVERY_PROBE_FAILED)
    assert verdicts([silent]) == {UNKNOWN}
    assert verdicts([silent, checker("b", OK)]) == {HEALTHY}
    assert verdicts([silent, checker("b", OK)], rule(quorum=Quorum(min_checkers=2))) == {UNKNOWN}
    # were it counted, two of three would be a majority here
    assert verdicts([silent, checker("b", REFUSED), checker("c", OK)]) == {HEALTHY}


def test_an_ignore_mask_removes_the_verdict_on_its_slots_only() -> None:
    ignore = np.zeros(CAPACITY, np.bool_)
    ignore[[1, 2]] = True
    masked = replace(checker("a", REFUSED), ignore=ignore)
    fleet = [masked, checker("b", REFUSED), checker("c", OK)]
    out = np.empty(CAPACITY, np.uint8)
    Conditioner(CAPACITY).evaluate(fleet, rule(), out)
    # slots 1 and 2: one unhealthy (b) of two -> healthy; elsewhere 2 of 3 -> down
    assert out.tolist() == [DOWN, HEALTHY, HEALTHY, *[DOWN] * (CAPACITY - 3)]
    alone = np.empty(CAPACITY, np.uint8)
    Conditioner(CAPACITY).evaluate([masked], rule(), alone)
    assert alone.tolist() == [DOWN, UNKNOWN, UNKNOWN, *[DOWN] * (CAPACITY - 3)]
