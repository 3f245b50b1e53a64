"""urn/config/fields.py, the field reader, and KeySource.describe, read directly (no I/O).

Every error a document gets names the full field path, the bad value and the problem;
these cases pin the readers the whole-document tests reach only through their happy paths.
"""

from __future__ import annotations

from typing import Any

import pytest

from urn.config import KeySource
from urn.config.fields import Fields
from urn.errors import ConfigError


def error_of(read: Any) -> tuple[str, object, str, str]:
    with pytest.raises(ConfigError) as info:
        read()
    exc = info.value
    return exc.field_path, exc.value, exc.problem, str(exc)


def test_index_keys_join_the_path_without_a_dot() -> None:
    fields = Fields({}, "checks")
    assert fields.path("[3]") == "checks[3]"
    assert fields.path("slot") == "checks.slot"
    assert Fields({}, "").path("capacity") == "capacity"


def test_an_explicit_null_optional_integer_counts_as_read() -> None:
    fields = Fields({"shuffle_shard": None}, "assignment")
    assert fields.optional_integer("shuffle_shard") is None
    fields.done()  # read, so not "is not a known field"


def test_an_optional_integer_keeps_its_lower_bound() -> None:
    fields = Fields({"shuffle_shard": 0}, "assignment")
    assert error_of(lambda: fields.optional_integer("shuffle_shard", low=1)) == (
        "assignment.shuffle_shard",
        0,
        "must be at least 1",
        "assignment.shuffle_shard: 0 must be at least 1",
    )
    assert Fields({"n": 3}, "").optional_integer("n", low=1) == 3


@pytest.mark.parametrize("read", ["string", "optional_string"])
def test_a_non_string_names_its_path_and_value(read: str) -> None:
    fields = Fields({"host": 5}, "checks[2]")
    method = getattr(fields, read)
    call = (lambda: method("host", "x")) if read == "string" else (lambda: method("host"))
    assert error_of(call) == (
        "checks[2].host",
        5,
        "must be a string",
        "checks[2].host: 5 must be a string",
    )


@pytest.mark.parametrize("item", ["2", True, 1.5])
def test_integer_lists_refuse_other_items_by_index(item: object) -> None:
    fields = Fields({"children": [0, item]}, "checks[4]")
    assert error_of(lambda: list(fields.integers("children"))) == (
        "checks[4].children[1]",
        item,
        "must be an integer",
        f"checks[4].children[1]: {item!r} must be an integer",
    )


def test_a_section_that_is_not_a_mapping_is_named() -> None:
    fields = Fields({"tls": 5}, "")
    assert error_of(lambda: fields.mapping("tls")) == (
        "tls",
        5,
        "must be a mapping",
        "tls: 5 must be a mapping",
    )


def test_key_sources_describe_where_the_key_comes_from() -> None:
    assert KeySource(env="URN_PUSH_KEY").describe() == "env URN_PUSH_KEY"
    assert KeySource(file="/run/secrets/push_key").describe() == "file /run/secrets/push_key"
