"""urn.trust: allow-lists match ids and patterns; a policy is built whole from one pass."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sim.testing import document_dict
from urn.config import Document, parse_text
from urn.keys import Keyring, Keys
from urn.trust import AllowList, ReceivePolicy, receive_policy, trust_warnings
from urn.wire import TableKind

PUSH = Keyring(b"p" * 32, (b"p" * 32, b"old-p" * 4))
TABLE = Keyring(b"t" * 32, (b"t" * 32, b"old-t" * 4))
KEYS = Keys(push=PUSH, table=TABLE)


def document(**top: Any) -> Document:
    return parse_text(json.dumps(document_dict(**top)))


@pytest.mark.parametrize(
    ("entries", "sender", "admitted"),
    [
        (("agg-1", "agg-2"), "agg-1", True),
        (("agg-1", "agg-2"), "agg-3", False),
        (("agg-1",), "agg-10", False),  # an exact id is not a prefix
        (("agg-1",), "AGG-1", False),
        (("chk-*",), "chk-a1-5d8f9c7b6d-x2k9p", True),
        (("chk-*",), "chk-", True),
        (("chk-*",), "xchk-a1", False),  # anchored at the start ...
        (("*-a1",), "chk-a1x", False),  # ... and at the end
        (("chk-?1",), "chk-a1", True),
        (("chk-?1",), "chk-ab1", False),
        (("chk-[ab]1",), "chk-b1", True),
        (("chk-[ab]1",), "chk-c1", False),
        (("Chk-*",), "chk-a1", False),  # case-sensitive on every platform
        (("agg-1", "chk-*"), "chk-b2", True),
        (("agg-1", "chk-*"), "agg-1", True),
        (("agg.1",), "aggx1", False),  # no regex meaning leaks through
    ],
)
def test_allow_list_matches_ids_and_fnmatch_patterns(
    entries: tuple[str, ...], sender: str, admitted: bool
) -> None:
    assert AllowList.of(entries).admits(sender) is admitted


def test_a_resolver_policy_takes_the_table_tier_and_the_aggregator_list() -> None:
    doc = document(senders={"aggregators": ["agg-1"], "checkers": ["chk-*"]}, skew=7.0)
    policy = receive_policy(doc, KEYS, TableKind.AGGREGATE)
    assert (policy.kind, policy.capacity, policy.skew) == (TableKind.AGGREGATE, 64, 7.0)
    assert policy.keys == TABLE.accepted
    assert not set(policy.keys) & set(PUSH.accepted)
    assert policy.admits("agg-1")
    assert not policy.admits("chk-a1")  # the checker pattern is the aggregators' business
    assert policy.forget_after == 14.0


def test_an_aggregator_policy_takes_the_push_tier_and_the_checker_list() -> None:
    doc = document(senders={"aggregators": ["agg-1"], "checkers": ["chk-*"]})
    policy = receive_policy(doc, KEYS, TableKind.CHECKER)
    assert policy.keys == PUSH.accepted
    assert policy.admits("chk-a1")
    assert not policy.admits("agg-1")


def test_without_lists_any_sender_is_admitted() -> None:
    policy = receive_policy(document(), KEYS, TableKind.AGGREGATE)
    assert policy.senders is None
    assert policy.admits("anyone-at-all")


def test_a_policy_is_immutable_and_equal_for_equal_passes() -> None:
    doc = document(senders={"aggregators": ["agg-1"]})
    policy = receive_policy(doc, KEYS, TableKind.AGGREGATE)
    assert policy == receive_policy(doc, KEYS, TableKind.AGGREGATE)
    with pytest.raises(AttributeError):
        policy.skew = 99.0  # type: ignore[misc]
    assert isinstance(policy, ReceivePolicy)


def test_a_receiver_missing_its_tier_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="aggregate"):
        receive_policy(document(), Keys(push=PUSH, table=None), TableKind.AGGREGATE)


def test_resolvers_are_warned_of_a_defaulted_table_key_and_a_missing_aggregator_list() -> None:
    weak = trust_warnings(document(), TableKind.AGGREGATE, receives=True)
    assert [w.split(" ")[0] for w in weak] == ["table_key", "senders.aggregators"]
    assert receive_policy(document(), KEYS, TableKind.AGGREGATE).warnings == tuple(weak)
    strong = document(table_key={"env": "URN_TABLE_KEY"}, senders={"aggregators": ["agg-1"]})
    assert trust_warnings(strong, TableKind.AGGREGATE, receives=True) == []


def test_aggregators_are_warned_of_a_defaulted_table_key_only_as_senders() -> None:
    doc = document()
    assert [w.split(" ")[0] for w in trust_warnings(doc, TableKind.AGGREGATE, receives=False)] == [
        "table_key"
    ]
    # Receiving checker tables without a checker list is allowed and says nothing.
    assert trust_warnings(doc, TableKind.CHECKER, receives=True) == []
    assert trust_warnings(doc, TableKind.CHECKER, receives=False) == []
