"""urn/config/validate.py at its limits: each refusal word for word, each bound's last
accepted value, and the one-DNS-message size rule at exactly 65,535 bytes (no I/O).

`urn validate` prints these messages to the person fixing the document, so the field path,
the value and the problem are all part of the contract (README: "names the field that is
wrong").
"""

from __future__ import annotations

from typing import Any

import pytest

from sim.testing import document_dict
from urn.config import Document, parse_document
from urn.config.validate import normalize_name
from urn.errors import ConfigError


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "t.example.com.",
        "type": "A",
        "answers": [{"value": "10.0.0.1"}],
    }
    return {**base, **fields}


def tcp(host: str) -> list[dict[str, Any]]:
    return [{"slot": 0, "name": "c0", "type": "tcp", "host": host, "port": 9}]


def parse(**top: Any) -> Document:
    return parse_document(document_dict(**top))


def refusal(**top: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse(**top)
    return str(info.value)


@pytest.mark.parametrize(
    ("top", "message"),
    [
        (
            {"records": [record(answers=[{"value": "10.0.0.1", "check": True}])]},
            "records[0].answers[0].check: True must be a check slot or name",
        ),
        (
            {"records": [record(answers=[{"value": "10.0.0.1", "check": 1.5}])]},
            "records[0].answers[0].check: 1.5 must be a check slot or name",
        ),
        (
            {
                "records": [
                    record(
                        policy="failover",
                        answers=[
                            {"value": "10.0.0.1", "role": "backup"},
                            {"value": "10.0.0.2", "role": "secondary"},
                        ],
                    )
                ]
            },
            "records[0].answers[0].role: 'backup' must be primary or secondary",
        ),
        (
            {"records": [record(type="TXT", answers=[{"value": "x" * 256}])]},
            f"records[0].answers[0].value: {'x' * 256!r} TXT strings are at most 255 bytes",
        ),
        (
            {
                "records": [
                    record(
                        type="CNAME",
                        answers=[{"value": "a.example.com."}, {"value": "b.example.com."}],
                    )
                ]
            },
            "records[0].answers: ['a.example.com.', 'b.example.com.'] a CNAME answers one name: "
            "use weighted or failover",
        ),
        ({"records": [record(ttl=-1)]}, "records[0].ttl: -1 must be at least 0"),
        ({"records": [record(ttl=2**31)]}, "records[0].ttl: 2147483648 must be at most 2147483647"),
        (
            {"records": [record(answers=[{"value": "10.0.0.1", "weight": -1}])]},
            "records[0].answers[0].weight: -1 must be at least 0",
        ),
        (
            {"records": [record(answers=[{"value": "10.0.0.1", "weight": 256}])]},
            "records[0].answers[0].weight: 256 must be at most 255",
        ),
        (
            {"aggregators": ["http://a:99999"]},
            "aggregators[0]: 'http://a:99999' has an invalid port",
        ),
        ({"checks": tcp("")}, "checks[0].host: '' is not a host name or address"),
        ({"checks": tcp("a b")}, "checks[0].host: 'a b' is not a host name or address"),
    ],
)
def test_each_refusal_names_field_value_and_problem(top: dict[str, Any], message: str) -> None:
    assert refusal(**top) == message


def test_the_last_value_inside_each_bound_is_accepted() -> None:
    document = parse(
        checks=tcp("Xhost.example"),
        aggregators=["http://aggX/"],
        records=[
            record(ttl=0),
            record(
                name="u.example.com.", ttl=2**31 - 1, answers=[{"value": "10.0.0.1", "weight": 0}]
            ),
            record(name="v.example.com.", answers=[{"value": "10.0.0.1", "weight": 255}]),
            record(name="w.example.com.", type="TXT", answers=[{"value": "x" * 255}]),
            record(
                name="x.example.com.",
                type="CNAME",
                policy="multivalue",
                answers=[{"value": "a.example.com."}],
            ),
        ],
    )
    assert document.checks[0].host == "Xhost.example"
    assert document.aggregators == ("http://aggX",)  # only the trailing slash goes
    assert [r.ttl for r in document.records[:2]] == [0, 2**31 - 1]
    assert [r.answers[0].weight for r in document.records[1:3]] == [0, 255]


def test_ttl_and_weight_defaults() -> None:
    (only,) = parse(records=[record()]).records
    assert (only.ttl, only.answers[0].weight) == (60, 1)


def _txt_answers(last: int) -> list[dict[str, Any]]:
    # Header 12 + question 15 + 4 + OPT 11 = 42; each TXT answer 12 + 1 + its length.
    # 244 answers of 255 bytes (65,392) and one of `last` bytes: 42 + 65,392 + 13 + last.
    return [{"value": f"{i:03d}" + "x" * 252} for i in range(244)] + [{"value": "y" * last}]


def test_a_record_whose_largest_response_is_exactly_one_message_is_accepted() -> None:
    (only,) = parse(records=[record(type="TXT", answers=_txt_answers(88))]).records
    assert len(only.answers) == 245


def test_one_byte_more_is_refused_with_the_size() -> None:
    assert refusal(records=[record(type="TXT", answers=_txt_answers(89))]) == (
        "records[0].answers: '245 TXT answers' make a response of up to 65,536 bytes, over "
        "the 65,535 a DNS message can hold: use fewer or shorter answers, or policy multivalue"
    )


@pytest.mark.parametrize(("count", "accepted"), [(4093, True), (4094, False)])
def test_a_answers_are_sixteen_bytes_each(count: int, accepted: bool) -> None:
    # 42 + 16 x 4,093 = 65,530 fits; 4,094 answers make 65,546.
    answers = [{"value": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"} for i in range(count)]
    if accepted:
        assert len(parse(records=[record(answers=answers)]).records[0].answers) == count
    else:
        assert "65,546 bytes" in refusal(records=[record(answers=answers)])


CALC = [
    {"slot": 0, "name": "c0", "type": "tcp", "host": "127.0.0.1", "port": 9},
    {"slot": 1, "name": "c1", "type": "tcp", "host": "127.0.0.1", "port": 9},
]


def check(**fields: Any) -> list[dict[str, Any]]:
    return [{"slot": 0, "name": "c0", "type": "tcp", "host": "127.0.0.1", "port": 9, **fields}]


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"checks": check(failures=0)}, "checks[0].failures: 0 must be at least 1"),
        ({"checks": check(failures=1, of_last=0)}, "checks[0].of_last: 0 must be at least 1"),
        ({"checks": check(port=0)}, "checks[0].port: 0 must be at least 1"),
        ({"checks": check(timeout=0.0)}, "checks[0].timeout: 0.0 must be at least 0.001"),
        ({"checks": check(timeout=61.0)}, "checks[0].timeout: 61.0 must be at most 60.0"),
        (
            {
                "checks": [
                    *CALC,
                    {
                        "slot": 2,
                        "name": "k",
                        "type": "calculated",
                        "children": [0, 1],
                        "healthy_if_at_least": -1,
                    },
                ]
            },
            "checks[2].healthy_if_at_least: -1 must be at least 0",
        ),
        (
            {"checks": [*CALC, {"slot": 2, "name": "k", "type": "calculated", "children": [0, 0]}]},
            "checks[2].children[1]: 0 is a duplicate",
        ),
        ({"zones": ["."]}, "zones[0]: '.' is not a DNS name: the root holds no records here"),
        (
            {"records": [{"name": "t.example.com.", "answers": [5]}]},
            "records[0].answers[0]: 5 must be a mapping",
        ),
    ],
)
def test_check_bounds_and_names_are_refused_word_for_word(
    top: dict[str, Any], message: str
) -> None:
    assert refusal(**top) == message


def test_a_calculated_check_may_need_no_healthy_child_and_keeps_the_default_timeout() -> None:
    document = parse(
        checks=[
            *CALC,
            {
                "slot": 2,
                "name": "k",
                "type": "calculated",
                "children": [0, 1],
                "healthy_if_at_least": 0,
            },
        ]
    )
    assert (document.checks[2].healthy_if_at_least, document.checks[2].timeout) == (0, 1.0)


def test_normalize_name_refuses_a_non_string_naming_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        normalize_name(5, "records[0].name")
    assert (info.value.field_path, info.value.value, str(info.value)) == (
        "records[0].name",
        5,
        "records[0].name: 5 is not a DNS name",
    )
    assert normalize_name("Example.COM", "zones[0]") == "example.com."
