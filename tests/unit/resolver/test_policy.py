"""Every policy under every health pattern, including fail-open, through `answer.resolve`."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import numpy as np
import pytest

from resolver.answer import down_view, resolve, unknown_view
from resolver.levers import DEGRADED, MODES, NORMAL, OPEN, EntryLevers, plain
from resolver.policy import MULTIVALUE_MAX, balanced_permutations
from resolver.records import Candidate, Entry, compile_records
from sim.testing import document_dict
from sim.testing.resolver import multivalue_record, tcp_checks
from urn.config import WhenAllDown, parse_document
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 64
UP = aggregated_byte(Status.HEALTHY)
DOWN = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
UNKNOWN = aggregated_byte(Status.UNKNOWN)


def entry_for(record: dict[str, Any], slots: int = 16) -> Entry:
    document = parse_document(
        document_dict(checks=tcp_checks(range(slots)), records=[record], capacity=CAPACITY)
    )
    compiled = compile_records(document, random.Random(7))
    node = compiled.by_text[record["name"]]
    return next(e for e in node.by_type.values() if e.rtype == record.get("type", "A"))


def view(states: dict[int, int]) -> bytes:
    table = np.full(CAPACITY, UP, dtype=np.uint8)
    for slot, value in states.items():
        table[slot] = value
    return down_view(table)


def picked(
    entry: Entry, down: bytes, rng: random.Random, fail_open: bool = True
) -> tuple[list[Candidate], bool]:
    """What the entry answers from the down view `down`, and whether it failed open, with
    when_all_down open, or closed when not `fail_open` (no other lever)."""
    all_down = WhenAllDown.OPEN if fail_open else WhenAllDown.CLOSED
    slots = [c.slot for c in entry.candidates]
    decision = plain(EntryLevers.of([(slots, entry.min_healthy, all_down)], CAPACITY), down)
    chosen, mode = resolve(entry, decision.views, decision.modes[0], rng, entry.candidates)
    return chosen, mode == OPEN | DEGRADED


def values(
    entry: Entry, down: bytes, fail_open: bool = True, seed: int = 1
) -> tuple[list[str], bool]:
    chosen, opened = picked(entry, down, random.Random(seed), fail_open)
    return [c.value for c in chosen], opened


def record(policy: str, answers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "svc.example.com.", "type": "A", "policy": policy, "answers": answers, **extra}


# --- simple ------------------------------------------------------------------------------

SIMPLE = record("simple", [{"value": "10.0.0.1", "check": 0}, {"value": "10.0.0.2", "check": 1}])


def test_simple_gives_every_healthy_answer_in_order() -> None:
    entry = entry_for(SIMPLE)
    assert values(entry, view({})) == (["10.0.0.1", "10.0.0.2"], False)
    assert values(entry, view({0: DOWN})) == (["10.0.0.2"], False)


def test_simple_all_unhealthy_fails_open_with_all() -> None:
    entry = entry_for(SIMPLE)
    assert values(entry, view({0: DOWN, 1: DOWN})) == (["10.0.0.1", "10.0.0.2"], True)


def test_simple_all_unhealthy_without_fail_open_answers_nothing() -> None:
    entry = entry_for(SIMPLE)
    assert values(entry, view({0: DOWN, 1: DOWN}), fail_open=False) == ([], False)


def test_unknown_status_counts_as_healthy() -> None:
    entry = entry_for(SIMPLE)
    assert values(entry, view({0: UNKNOWN, 1: DOWN})) == (["10.0.0.1"], False)
    assert values(entry, unknown_view(CAPACITY)) == (["10.0.0.1", "10.0.0.2"], False)


def test_answer_without_check_is_always_healthy() -> None:
    entry = entry_for(record("simple", [{"value": "10.0.0.1", "check": 0}, {"value": "10.0.0.9"}]))
    assert values(entry, view({0: DOWN})) == (["10.0.0.9"], False)


def test_single_answer_down_fails_open() -> None:
    entry = entry_for(record("simple", [{"value": "10.0.0.1", "check": 3}]))
    assert values(entry, view({3: DOWN})) == (["10.0.0.1"], True)
    assert values(entry, view({3: DOWN}), fail_open=False) == ([], False)


def test_a_reason_in_the_high_bits_does_not_change_the_status() -> None:
    entry = entry_for(SIMPLE)
    healthy_with_junk_reason = aggregated_byte(Status.HEALTHY, Reason.TLS)
    assert values(entry, view({0: healthy_with_junk_reason})) == (["10.0.0.1", "10.0.0.2"], False)


# --- multivalue --------------------------------------------------------------------------


def test_multivalue_caps_at_eight_healthy_in_random_order() -> None:
    entry = entry_for(multivalue_record("svc.example.com.", 12))
    orders = set()
    for seed in range(40):
        chosen, opened = values(entry, view({}), seed=seed)
        assert len(chosen) == MULTIVALUE_MAX
        assert len(set(chosen)) == MULTIVALUE_MAX
        assert not opened
        orders.add(tuple(chosen))
    assert len(orders) > 10


def test_multivalue_never_returns_an_unhealthy_answer_while_one_is_healthy() -> None:
    entry = entry_for(multivalue_record("svc.example.com.", 8))
    down = view(dict.fromkeys(range(6), DOWN))
    for seed in range(50):
        chosen, opened = values(entry, down, seed=seed)
        assert sorted(chosen) == ["10.0.0.7", "10.0.0.8"]
        assert not opened


def test_multivalue_all_unhealthy_fails_open_with_up_to_eight() -> None:
    entry = entry_for(multivalue_record("svc.example.com.", 10))
    chosen, opened = values(entry, view(dict.fromkeys(range(10), DOWN)))
    assert opened
    assert len(chosen) == MULTIVALUE_MAX
    assert set(chosen) <= {c.value for c in entry.candidates}


def test_multivalue_first_answer_is_spread_evenly() -> None:
    entry = entry_for(multivalue_record("svc.example.com.", 8))
    rng = random.Random(3)
    firsts = Counter(picked(entry, view({}), rng)[0][0].value for _ in range(8000))
    assert len(firsts) == 8
    assert min(firsts.values()) > 800  # 1000 expected each


@pytest.mark.parametrize("n", [1, 2, 3, 8, 13, 300])
def test_balanced_permutations_put_every_item_at_every_position_equally(n: int) -> None:
    rows = balanced_permutations(n, random.Random(n))
    assert all(sorted(row) == list(range(n)) for row in rows)
    for position in range(min(n, 4)):
        counts = Counter(row[position] for row in rows)
        assert len(counts) == n
        assert len(set(counts.values())) == 1


# --- weighted ----------------------------------------------------------------------------

WEIGHTED = record(
    "weighted",
    [
        {"value": "10.0.0.1", "check": 0, "weight": 3},
        {"value": "10.0.0.2", "check": 1, "weight": 1},
        {"value": "10.0.0.3", "check": 2, "weight": 0},
    ],
)


def test_weighted_picks_one_by_weight() -> None:
    entry = entry_for(WEIGHTED)
    rng = random.Random(5)
    picks = Counter(picked(entry, view({}), rng)[0][0].value for _ in range(4000))
    assert set(picks) == {"10.0.0.1", "10.0.0.2"}  # weight 0 never while a weighted one is up
    assert 2.4 < picks["10.0.0.1"] / picks["10.0.0.2"] < 3.8


def test_weighted_skips_unhealthy() -> None:
    entry = entry_for(WEIGHTED)
    for seed in range(30):
        assert values(entry, view({0: DOWN}), seed=seed) == (["10.0.0.2"], False)


def test_weight_zero_answers_only_when_every_weighted_answer_is_down() -> None:
    entry = entry_for(WEIGHTED)
    assert values(entry, view({0: DOWN, 1: DOWN})) == (["10.0.0.3"], False)


def test_weighted_all_down_fails_open_by_weight_never_weight_zero() -> None:
    entry = entry_for(WEIGHTED)
    rng = random.Random(9)
    down = view({0: DOWN, 1: DOWN, 2: DOWN})
    results = [picked(entry, down, rng) for _ in range(2000)]
    assert all(opened for _, opened in results)
    picks = Counter(chosen[0].value for chosen, _ in results)
    assert set(picks) == {"10.0.0.1", "10.0.0.2"}
    assert picks["10.0.0.1"] > picks["10.0.0.2"]


def test_weighted_all_down_without_fail_open_answers_nothing() -> None:
    entry = entry_for(WEIGHTED)
    assert values(entry, view({0: DOWN, 1: DOWN, 2: DOWN}), fail_open=False) == ([], False)


def test_weighted_all_weights_zero_choose_evenly_among_healthy() -> None:
    entry = entry_for(
        record(
            "weighted",
            [{"value": f"10.0.0.{i}", "check": i, "weight": 0} for i in range(1, 4)],
        )
    )
    rng = random.Random(2)
    picks = Counter(picked(entry, view({1: DOWN}), rng)[0][0].value for _ in range(3000))
    assert set(picks) == {"10.0.0.2", "10.0.0.3"}
    all_down = view({1: DOWN, 2: DOWN, 3: DOWN})
    chosen, opened = picked(entry, all_down, rng)
    assert opened
    assert len(chosen) == 1


# --- failover ----------------------------------------------------------------------------

FAILOVER = record(
    "failover",
    [
        {"value": "10.0.0.2", "check": 1, "role": "secondary"},
        {"value": "10.0.0.1", "check": 0, "role": "primary"},
    ],
)


def test_failover_primary_while_healthy() -> None:
    entry = entry_for(FAILOVER)
    assert values(entry, view({})) == (["10.0.0.1"], False)
    assert values(entry, view({1: DOWN})) == (["10.0.0.1"], False)


def test_failover_secondary_when_primary_down() -> None:
    entry = entry_for(FAILOVER)
    assert values(entry, view({0: DOWN})) == (["10.0.0.2"], False)


def test_failover_both_down_fails_open_to_primary() -> None:
    entry = entry_for(FAILOVER)
    assert values(entry, view({0: DOWN, 1: DOWN})) == (["10.0.0.1"], True)


def test_failover_both_down_without_fail_open_answers_nothing() -> None:
    entry = entry_for(FAILOVER)
    assert values(entry, view({0: DOWN, 1: DOWN}), fail_open=False) == ([], False)


def test_failover_unknown_primary_counts_as_healthy() -> None:
    entry = entry_for(FAILOVER)
    assert values(entry, view({0: UNKNOWN})) == (["10.0.0.1"], False)


# --- constant work -----------------------------------------------------------------------


class CountingView(bytes):
    """A down view that counts how many bytes a query reads."""

    reads = 0

    def __getitem__(self, index: Any) -> Any:
        CountingView.reads += 1
        return super().__getitem__(index)


@pytest.mark.parametrize("healthy", [True, False])
def test_every_candidate_is_read_on_every_query(healthy: bool) -> None:
    entry = entry_for(FAILOVER)
    base = view({} if healthy else {0: DOWN, 1: DOWN})
    counting = CountingView(base)
    CountingView.reads = 0
    # itemgetter calls __getitem__ once per slot: both candidates, though the first decides.
    resolve(entry, (counting,) * MODES, NORMAL, random.Random(1), entry.candidates)
    assert CountingView.reads == 2
