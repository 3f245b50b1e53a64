"""Autoshift's hysteresis (aggregator.autoshift): when an AZ starts and stops being shifted
away whole, judged on aggregated tables with the clock as an argument."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aggregator.autoshift import AutoshiftPlan, AutoshiftState, AzShares
from aggregator.explain import autoshift_of
from sim.testing import document_dict
from urn.config import parse_document
from urn.table import Reason, SlotArray, Status, aggregated_byte

UP = aggregated_byte(Status.HEALTHY)
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
UNKNOWN = aggregated_byte(Status.UNKNOWN)
PER_AZ = 10
AZS = ("a", "b", "c")
RULE = {"unhealthy_share": 0.5, "min_checks": 8, "clear_share": 0.2, "clear_after": 30}


def plan(on: bool = True, **rule: Any) -> AutoshiftPlan:
    """Ten probed checks per AZ in slots 0-29 (a, b, c), one calculated check in slot 30
    (its AZ d is no probed check's, so autoshift never counts it)."""
    checks: list[dict[str, Any]] = [
        {"slot": slot, "name": f"c{slot}", "type": "tcp", "host": "127.0.0.1", "port": 9,
         "az": AZS[slot // PER_AZ]}
        for slot in range(PER_AZ * len(AZS))
    ]  # fmt: skip
    checks.append(
        {"slot": 30, "name": "all", "type": "calculated", "children": [0, 10],
         "healthy_if_at_least": 1, "az": "d"}
    )  # fmt: skip
    top: dict[str, Any] = {"autoshift": {**RULE, **rule}} if on else {}
    return AutoshiftPlan.from_document(parse_document(document_dict(checks, **top)))


def table(down: dict[str, int] | None = None, unknown: dict[str, int] | None = None) -> SlotArray:
    """All healthy, but for the first `down[az]` checks of each AZ and the next
    `unknown[az]`."""
    out = np.full(64, UP, dtype=np.uint8)
    for az, n in (down or {}).items():
        first = AZS.index(az) * PER_AZ
        out[first : first + n] = DOWN
    for az, n in (unknown or {}).items():
        first = AZS.index(az) * PER_AZ + (down or {}).get(az, 0)
        out[first : first + n] = UNKNOWN
    out[30] = DOWN  # a calculated check never counts
    return out


def run(
    steps: list[tuple[float, SlotArray]], autoshift: AutoshiftPlan | None = None
) -> list[str | None]:
    """The AZ shifted after each (now, table) tick, from a fresh state."""
    autoshift = plan() if autoshift is None else autoshift
    state = AutoshiftState()
    shifted = []
    for now, tick in steps:
        state = state.step(tick, autoshift, now)
        shifted.append(state.az)
    return shifted


def test_the_plan_counts_only_probed_checks_with_an_az() -> None:
    autoshift = plan()
    assert autoshift.azs == AZS
    assert autoshift.slots.tolist() == list(range(30))
    shares = AzShares.of(table({"b": 6}, unknown={"c": 5}), autoshift)
    assert shares.known == (10, 10, 5)
    assert shares.unhealthy == (0, 6, 0)
    assert shares.shares == {"a": 0.0, "b": 0.6, "c": 0.0}


def test_an_az_at_the_share_is_shifted_on_the_first_tick_that_sees_it() -> None:
    assert run([(0.0, table({"b": 4})), (1.0, table({"b": 5})), (2.0, table({"b": 6}))]) == [
        None,
        "b",
        "b",
    ]


def test_off_without_the_section_or_with_enabled_false() -> None:
    assert run([(0.0, table({"b": 10}))], plan(on=False)) == [None]
    assert run([(0.0, table({"b": 10}))], plan(enabled=False)) == [None]
    assert AutoshiftState().step(table({"b": 10}), plan(enabled=False), 0.0).reason == "off"


def test_too_few_known_checks_never_start_it() -> None:
    # 6 of b's 7 known checks are down, but min_checks is 8
    assert run([(0.0, table({"b": 6}, unknown={"b": 3}))]) == [None]


@pytest.mark.parametrize(
    ("down", "why"),
    [
        ({"b": 6, "c": 6}, "2 AZs over it: none"),  # two AZs failing: not one AZ's trouble
        ({"b": 6, "c": 2}, "but c not healthy either"),  # c at clear_share: not healthy
    ],
)
def test_it_never_starts_unless_every_other_az_is_healthy(down: dict[str, int], why: str) -> None:
    state = AutoshiftState().step(table(down), plan(), 0.0)
    assert state.az is None
    assert why in state.reason


def test_one_az_alone_is_never_shifted() -> None:
    state = AutoshiftState().step(table({"b": 6}, unknown={"a": 10, "c": 10}), plan(), 0.0)
    assert state.az is None
    assert state.reason == "b is the only AZ with known checks"


def test_it_holds_above_clear_share_and_ends_after_clear_after_below_it() -> None:
    steps = [
        (0.0, table({"b": 6})),  # starts
        (10.0, table({"b": 3})),  # 30 %: below the start share, above clear_share: holds
        (20.0, table({"b": 1})),  # 10 %: below clear_share, the clock starts
        (49.0, table({"b": 0})),  # 29 s below
        (50.0, table({"b": 0})),  # 30 s below: ends
        (51.0, table({"b": 3})),  # 30 % again is not 50 %: stays ended
    ]
    assert run(steps) == ["b", "b", "b", "b", None, None]


def test_a_relapse_restarts_the_clear_clock() -> None:
    steps = [
        (0.0, table({"b": 6})),
        (10.0, table({"b": 0})),  # below from 10 s
        (30.0, table({"b": 2})),  # 20 %: at clear_share, the clock resets
        (35.0, table({"b": 0})),  # below from 35 s
        (60.0, table({"b": 0})),  # 25 s below: holds
        (65.0, table({"b": 0})),  # 30 s: ends
    ]
    assert run(steps) == ["b", "b", "b", "b", "b", None]
    state = AutoshiftState("b", 0.0, 10.0).step(table(), plan(), 20.0)
    assert state.reason == "0% unhealthy, below clear_share: ends in 20 s"


def test_missing_data_holds_it_and_never_counts_as_recovery() -> None:
    steps = [
        (0.0, table({"b": 6})),
        (10.0, table(unknown={"b": 10})),  # no verdicts on b (its checkers lost quorum)
        (100.0, table(unknown={"b": 10})),
        (101.0, table({"b": 0})),  # data again, healthy: the clock starts now
    ]
    assert run(steps) == ["b", "b", "b", "b"]
    state = AutoshiftState("b", 0.0).step(table(unknown={"b": 10}), plan(), 10.0)
    assert state.reason == "0 checks known, fewer than min_checks (8): held"


def test_the_shifted_az_stays_while_another_az_degrades() -> None:
    """Once started only its own recovery ends it: a second sick AZ does not bring the
    first back while it is still failing."""
    assert run([(0.0, table({"b": 6})), (1.0, table({"b": 6, "c": 6}))]) == ["b", "b"]


def test_after_it_ends_another_az_may_start_on_the_same_tick() -> None:
    state = AutoshiftState("b", 0.0, 0.0).step(table({"c": 6}), plan(clear_after=0), 1.0)
    assert state.az == "c"
    assert state.since == 1.0


def test_an_az_no_check_has_any_more_ends_it() -> None:
    """A config pass that drops the AZ's checks drops its autoshift with them."""
    assert AutoshiftState("z", 0.0).step(table(), plan(), 1.0).az is None


def test_explained_shares_and_start_time() -> None:
    state = AutoshiftState().step(table({"b": 7}), plan(), 5.0)
    assert (state.az, state.since, state.clear_since) == ("b", 5.0, None)
    assert state.reason == "70% of its checks unhealthy"
    assert state.shares is not None
    assert state.shares.share("b") == pytest.approx(0.7)


def test_every_verdict_keeps_the_counts_it_was_judged_on() -> None:
    """Explain and the share gauges read them, whichever way the tick went."""
    cases = [
        (table(), None, "no AZ over unhealthy_share"),
        (table({"b": 6, "c": 6}), None, "2 AZs over it: none"),
        (table({"b": 6, "c": 2}), None, "b is over unhealthy_share, but c not healthy either"),
        (
            table({"a": 3, "b": 6, "c": 2}),
            None,
            "b is over unhealthy_share, but a, c not healthy either",
        ),
        (table({"b": 6}, unknown={"a": 10, "c": 10}), None, "b is the only AZ with known checks"),
        (table({"b": 6}), "b", "60% of its checks unhealthy"),
    ]
    for tick, az, reason in cases:
        state = AutoshiftState().step(tick, plan(), 0.0)
        assert (state.az, state.reason) == (az, reason)
        assert state.shares == AzShares.of(tick, plan())
    for tick in (table({"b": 3}), table({"b": 0}), table(unknown={"b": 10})):
        held = AutoshiftState("b", 1.0).step(tick, plan(), 5.0)
        assert (held.az, held.since, held.shares) == ("b", 1.0, AzShares.of(tick, plan()))


def test_exactly_min_checks_known_is_enough_to_start_hold_and_end() -> None:
    # b: 8 known (min_checks), 5 of them down
    assert AutoshiftState().step(table({"b": 5}, unknown={"b": 2}), plan(), 0.0).az == "b"
    held = AutoshiftState("b", 0.0).step(table({"b": 4}, unknown={"b": 2}), plan(), 1.0)
    assert held.reason == "50% of its checks unhealthy"
    clearing = AutoshiftState("b", 0.0).step(table(unknown={"b": 2}), plan(), 1.0)
    assert clearing.clear_since == 1.0


def test_two_azs_are_enough() -> None:
    state = AutoshiftState().step(table({"b": 6}, unknown={"c": 10}), plan(), 0.0)
    assert state.az == "b"


def test_a_fleet_without_azs_never_autoshifts() -> None:
    checks = [{"slot": 0, "name": "x", "type": "tcp", "host": "127.0.0.1", "port": 9}]
    bare = AutoshiftPlan.from_document(
        parse_document(document_dict(checks, autoshift={"min_checks": 1}))
    )
    assert bare.azs == ()
    assert AzShares.of(table(), bare) == AzShares((), (), ())
    state = AutoshiftState().step(table(), bare, 0.0)
    assert (state.az, state.reason) == (None, "no AZ over unhealthy_share")


def test_an_az_with_nothing_known_has_no_unhealthy_share() -> None:
    assert AzShares.of(table(unknown={"c": 10}), plan()).share("c") == 0.0


def test_explain_says_none_for_an_az_added_since_the_last_tick() -> None:
    state = AutoshiftState().step(table({"b": 6}), plan(), 0.0)
    assert autoshift_of("b", state)["unhealthy_share"] == 0.6
    assert autoshift_of("z", state) == {
        "az": "z",
        "shifted": False,
        "shifted_az": "b",
        "unhealthy_share": None,
        "reason": "60% of its checks unhealthy",
    }
