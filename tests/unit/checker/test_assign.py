"""assign.py and settings selectors: all, shuffle sharding, sidecar selection (no I/O)."""

from __future__ import annotations

from collections import Counter

import pytest

from checker.assign import assigned_checks, check_key, position, shard_owners
from checker.schedule import spread_phase
from checker.settings import CheckerSettings, parse_selector
from sim.testing import document_dict
from urn.config import parse_document
from urn.errors import ConfigError

CHECKERS = [f"chk-{i}" for i in range(8)]


def doc(n: int = 40, **top):
    checks = [
        {
            "slot": i,
            "name": f"web-{i}" if i % 2 else f"db-{i}",
            "type": "http" if i % 2 else "tcp",
            "host": "127.0.0.1",
            "port": 1000 + i,
            "labels": {"app": "shop" if i < 10 else "blog"},
        }
        for i in range(n)
    ]
    checks.append({"slot": n, "name": "calc", "type": "calculated", "children": [0, 1]})
    return parse_document(document_dict(checks, capacity=64, **top))


def me(checker: str = "chk-0", *selectors: str) -> CheckerSettings:
    return CheckerSettings(id=checker, az="a", select=tuple(map(parse_selector, selectors)))


def test_default_assigns_every_probed_check_in_slot_order():
    checks = assigned_checks(doc(), me())
    assert [c.slot for c in checks] == list(range(40))  # the calculated check is not probed


def test_shuffle_shard_gives_each_check_exactly_k_checkers():
    document = doc(assignment={"shuffle_shard": 3, "checkers": CHECKERS})
    owners: Counter[int] = Counter()
    subsets = set()
    for checker in CHECKERS:
        for check in assigned_checks(document, me(checker)):
            owners[check.slot] += 1
    assert set(owners.values()) == {3}
    assert len(owners) == 40
    for slot in range(40):
        subsets.add(shard_owners(f"{slot}/x", CHECKERS, 3))
    assert len(subsets) > 20  # different checks land on different k-subsets


def test_shard_owners_is_stable_and_order_independent():
    a = shard_owners("7/web-7", CHECKERS, 2)
    assert a == shard_owners("7/web-7", list(reversed(CHECKERS)), 2)
    assert len(set(a)) == 2


def test_removing_a_checker_moves_only_its_checks():
    keys = [f"{i}/c{i}" for i in range(200)]
    before = {k: set(shard_owners(k, CHECKERS, 2)) for k in keys}
    fewer = CHECKERS[:-1]
    after = {k: set(shard_owners(k, fewer, 2)) for k in keys}
    for key in keys:
        if "chk-7" not in before[key]:
            assert after[key] == before[key]
        else:
            assert before[key] - {"chk-7"} <= after[key]


def test_unlisted_checker_under_sharding_is_a_config_error():
    document = doc(assignment={"shuffle_shard": 2, "checkers": CHECKERS})
    with pytest.raises(ConfigError) as info:
        assigned_checks(document, me("stranger"))
    assert info.value.field_path == "assignment.checkers"
    assert "stranger" in str(info.value)


def test_sidecar_selection_by_name_glob_and_label():
    assert [c.slot for c in assigned_checks(doc(), me("chk-0", "name=web-1*"))] == [
        1,
        11,
        13,
        15,
        17,
        19,
    ]
    shop = assigned_checks(doc(), me("chk-0", "label=app=shop"))
    assert [c.slot for c in shop] == list(range(10))
    both = assigned_checks(doc(), me("chk-0", "label=app=shop", "name=db-2?"))
    assert [c.slot for c in both] == [*range(10), 20, 22, 24, 26, 28]
    assert assigned_checks(doc(), me("chk-0", "label=tier=x")) == ()


def test_sidecar_selection_applies_after_sharding():
    document = doc(assignment={"shuffle_shard": 2, "checkers": CHECKERS})
    sharded = {c.slot for c in assigned_checks(document, me("chk-1"))}
    selected = {c.slot for c in assigned_checks(document, me("chk-1", "label=app=shop"))}
    assert selected == {s for s in sharded if s < 10}


@pytest.mark.parametrize("text", ["name", "name=", "label=app", "label==x", "tag=x=y", "=x"])
def test_bad_selectors_are_rejected(text: str):
    with pytest.raises(ValueError, match="selector"):
        parse_selector(text)


def test_selector_round_trips_to_text():
    assert str(parse_selector("label=app=shop*")) == "label=app=shop*"
    assert str(parse_selector("name=a=b")) == "name=a=b"


def _circular_gaps(phases: list[float]) -> list[float]:
    ordered = sorted(phases)
    return [b - a for a, b in zip(ordered, [*ordered[1:], ordered[0] + 1.0], strict=True)]


def test_listed_checkers_each_get_their_place_and_an_even_phase():
    listed = ["c1", "c2", "c3"]
    document = doc(assignment={"checkers": listed})
    for check in document.checks:
        if not check.is_probed:
            continue
        places = [position(document, c, check) for c in listed]
        assert places == [(0, 3), (1, 3), (2, 3)]
        phases = [spread_phase(check_key(check), *place) for place in places if place]
        base = phases[0]
        assert phases[1] == pytest.approx((base + 1 / 3) % 1.0)
        assert phases[2] == pytest.approx((base + 2 / 3) % 1.0)
        assert _circular_gaps(phases) == pytest.approx([1 / 3] * 3)
    # Without sharding every listed checker probes every check.
    assert all(len(assigned_checks(document, me(c))) == 40 for c in listed)


def test_unlisted_checkers_have_no_place_and_keep_hashed_phases():
    document = doc()
    assert all(position(document, "chk-0", c) is None for c in document.checks)
    listed = doc(assignment={"checkers": ["c1", "c2"]})
    assert all(position(listed, "sidecar-9", c) is None for c in listed.checks)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_shuffle_shard_owners_get_evenly_spread_phases(k: int):
    document = doc(assignment={"shuffle_shard": k, "checkers": CHECKERS})
    for check in document.checks:
        if not check.is_probed:
            continue
        owners = shard_owners(check_key(check), CHECKERS, k)
        places = {c: position(document, c, check) for c in CHECKERS}
        assert {c for c, place in places.items() if place is not None} == set(owners)
        assert sorted(place for place in places.values() if place is not None) == [
            (i, k) for i in range(k)
        ]
        # Each owner probes the check, and at its own share of the interval.
        for owner in owners:
            assert check.slot in {c.slot for c in assigned_checks(document, me(owner))}
        phases = [spread_phase(check_key(check), i, k) for i in range(k)]
        assert _circular_gaps(phases) == pytest.approx([1 / k] * k)
