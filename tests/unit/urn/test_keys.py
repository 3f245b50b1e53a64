"""urn.keys: a keyring per tier; each process reads only the tiers it needs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from sim.testing import document_dict
from urn.config import Document, parse_text
from urn.errors import ConfigError
from urn.keys import Keyring, Keys, load_keys
from urn.wire import TableKind

if TYPE_CHECKING:
    from pathlib import Path

CHECKER, AGGREGATE = TableKind.CHECKER, TableKind.AGGREGATE
ENV = {
    "URN_PUSH_KEY": "push-key-0123456789abcdef",
    "OLD_PUSH_KEY": "old-push-key-0123456789ab",
    "URN_TABLE_KEY": "table-key-0123456789abcdef",
    "OLD_TABLE_KEY": "old-table-key-0123456789a",
}
PUSH, OLD_PUSH = b"push-key-0123456789abcdef", b"old-push-key-0123456789ab"
TABLE, OLD_TABLE = b"table-key-0123456789abcdef", b"old-table-key-0123456789a"


def document(**top: Any) -> Document:
    return parse_text(json.dumps(document_dict(**top)))


TIERED = {
    "previous_push_keys": [{"env": "OLD_PUSH_KEY"}],
    "table_key": {"env": "URN_TABLE_KEY"},
    "previous_table_keys": [{"env": "OLD_TABLE_KEY"}],
}


def test_each_tier_signs_with_its_own_key_and_accepts_its_previous_ones() -> None:
    keys = load_keys(document(**TIERED), ENV)
    assert keys.for_kind(CHECKER) == Keyring(PUSH, (PUSH, OLD_PUSH))
    assert keys.for_kind(AGGREGATE) == Keyring(TABLE, (TABLE, OLD_TABLE))
    assert not keys.table_defaulted


def test_a_checker_key_is_never_accepted_for_aggregated_tables_once_table_key_is_set() -> None:
    keys = load_keys(document(**TIERED), ENV)
    assert not set(keys.for_kind(CHECKER).accepted) & set(keys.for_kind(AGGREGATE).accepted)


def test_without_table_key_the_aggregated_tier_falls_back_to_the_push_keys() -> None:
    keys = load_keys(document(previous_push_keys=[{"env": "OLD_PUSH_KEY"}]), ENV)
    assert keys.table_defaulted
    assert keys.for_kind(AGGREGATE) == keys.for_kind(CHECKER) == Keyring(PUSH, (PUSH, OLD_PUSH))


def test_moving_off_the_default_accepts_the_coming_table_key_first() -> None:
    """Step 1 of giving the aggregated tier its own key: accept it before anyone signs."""
    doc = document(previous_table_keys=[{"env": "URN_TABLE_KEY"}])
    assert load_keys(doc, ENV).for_kind(AGGREGATE) == Keyring(PUSH, (PUSH, TABLE))


def test_a_table_key_that_is_a_push_key_is_refused() -> None:
    same = {**ENV, "URN_TABLE_KEY": ENV["OLD_PUSH_KEY"]}
    with pytest.raises(ConfigError, match="table_key: 'env URN_TABLE_KEY' holds a push key"):
        load_keys(document(**TIERED), same)


def test_a_checker_never_reads_the_table_key(tmp_path: Path) -> None:
    doc = document(table_key={"file": str(tmp_path / "not-mounted-here")})
    keys = load_keys(doc, ENV, needs={CHECKER})
    assert keys.for_kind(CHECKER).signing == PUSH
    with pytest.raises(LookupError, match="aggregate"):
        keys.for_kind(AGGREGATE)
    with pytest.raises(ConfigError, match=r"table_key\.file: .* cannot be read"):
        load_keys(doc, ENV)  # an aggregator, which needs both tiers, does read it


def test_a_resolver_with_a_table_key_never_reads_the_push_key() -> None:
    env = {k: v for k, v in ENV.items() if "PUSH" not in k}
    keys = load_keys(document(**TIERED), env, needs={AGGREGATE})
    assert keys == Keys(push=None, table=Keyring(TABLE, (TABLE, OLD_TABLE)))
    with pytest.raises(LookupError, match="checker"):
        keys.for_kind(CHECKER)


def test_a_resolver_without_a_table_key_needs_the_push_key() -> None:
    env = {k: v for k, v in ENV.items() if k != "URN_PUSH_KEY"}
    with pytest.raises(ConfigError, match=r"push_key\.env: 'URN_PUSH_KEY' is not set"):
        load_keys(document(), env, needs={AGGREGATE})


def test_a_missing_or_short_table_key_names_its_field() -> None:
    with pytest.raises(ConfigError, match=r"previous_table_keys\[0\]\.env: 'OLD_TABLE_KEY'"):
        load_keys(document(**TIERED), {k: v for k, v in ENV.items() if k != "OLD_TABLE_KEY"})
    with pytest.raises(ConfigError, match="table_key: 'env URN_TABLE_KEY' holds a key shorter"):
        load_keys(document(**TIERED), {**ENV, "URN_TABLE_KEY": "short"})
