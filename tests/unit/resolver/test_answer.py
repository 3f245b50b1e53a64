"""DoH-JSON bodies, explain, canonical names and query types: pure, no event loop."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from resolver.answer import Responder, down_view, explain, qtype_of
from resolver.levers import plain
from resolver.records import Compiled, compile_records, name_to_wire, wire_to_text
from sim.testing import document_dict
from sim.testing.resolver import answer_from, failover_record, multivalue_record, tcp_checks
from urn.config import Document, parse_document
from urn.names import canonical_name
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 32


def document() -> Document:
    return parse_document(
        document_dict(
            checks=tcp_checks(range(8)),
            records=[
                multivalue_record("www.example.com.", 4),
                failover_record("api.example.com.", ("10.1.0.1", 4), ("10.1.0.2", 5)),
                {"name": "api.example.com.", "type": "TXT", "answers": [{"value": 'say "hi"'}]},
            ],
            capacity=CAPACITY,
        )
    )


def compiled() -> Compiled:
    return compile_records(document(), random.Random(1))


def body(responder: Responder, name: str, qtype: int = 1) -> dict:
    return json.loads(responder.json(name, qtype, {}))


def test_json_answer_shape() -> None:
    reply = body(Responder(compiled(), random.Random(1)), "www.example.com.")
    assert reply["Status"] == 0
    assert {"TC", "RD", "RA", "AD", "CD"} <= set(reply)
    assert reply["Question"] == [{"name": "www.example.com.", "type": 1}]
    assert len(reply["Answer"]) == 4
    assert all(
        a["name"] == "www.example.com." and a["type"] == 1 and a["TTL"] == 30
        for a in reply["Answer"]
    )
    assert "fail_open" not in reply


def test_json_txt_is_presentation_format() -> None:
    reply = body(Responder(compiled(), random.Random(1)), "api.example.com.", 16)
    assert reply["Answer"][0]["data"] == '"say \\"hi\\""'


def test_json_rcodes_and_authority() -> None:
    responder = Responder(compiled(), random.Random(1))
    nx = body(responder, "zzz.example.com.")
    assert nx["Status"] == 3
    assert nx["Authority"][0]["type"] == 6
    nodata = body(responder, "www.example.com.", 28)
    assert (nodata["Status"], nodata["Answer"]) == (0, [])
    assert body(responder, "www.example.org.")["Status"] == 5
    assert body(responder, "www.example.com.", 255)["Answer"][0]["type"] == 13


def test_json_flags_fail_open() -> None:
    responder = Responder(compiled(), random.Random(1))
    answer_from(
        responder, down_view(np.full(CAPACITY, aggregated_byte(Status.UNHEALTHY), dtype=np.uint8))
    )
    reply = body(responder, "api.example.com.")
    assert reply["fail_open"] is True
    assert [a["data"] for a in reply["Answer"]] == ["10.1.0.1"]


def test_explain_lists_every_candidate_with_status_and_reason() -> None:
    table = np.full(CAPACITY, aggregated_byte(Status.HEALTHY), dtype=np.uint8)
    table[4] = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
    facts = {"state": "fresh", "age": 0.5, "aggregator": "agg-1"}
    index = compiled()
    decision = plain(index.levers, down_view(table))
    result = explain(
        index, document(), "api.example.com.", 1, table.tobytes(), decision, random.Random(1), facts
    )
    assert result["table"] == facts
    (record,) = result["records"]
    assert record["policy"] == "failover"
    assert [(a["slot"], a["status"], a["reason"]) for a in record["answers"]] == [
        (4, "unhealthy", "timeout"),
        (5, "healthy", None),
    ]
    assert record["would_answer"] == ["10.1.0.2"]
    assert not record["fail_open_applied"]
    every_type = explain(
        index, document(), "api.example.com.", None, None, decision, random.Random(1), {}
    )
    assert {r["type"] for r in every_type["records"]} == {"A", "TXT"}
    assert every_type["records"][0]["answers"][0]["status"] == "unknown"  # no table: unknown
    assert (
        explain(index, document(), "no.example.com.", None, None, decision, random.Random(1), {})[
            "rcode"
        ]
        == "nxdomain"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("WWW.Example.com", "www.example.com."), ("www.example.com.", "www.example.com."), (".", ".")],
)
def test_canonical_name(text: str, expected: str) -> None:
    assert canonical_name(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("a..b", "empty label"),
        ("a" * 64 + ".com", "longer than 63"),
        ("a." * 130, "longer than 253"),
        ("bücher.example", "ASCII"),
        ("a b.example", "space"),
    ],
)
def test_canonical_name_rejects(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        canonical_name(text)


def test_qtype_of() -> None:
    assert qtype_of("aaaa") == 28
    assert qtype_of("15") == 15
    assert qtype_of("MX") == 15
    for bad in ("0", "70000", "NOPE"):
        with pytest.raises(ValueError):
            qtype_of(bad)


def test_wire_names_round_trip() -> None:
    assert wire_to_text(name_to_wire("www.example.com.")) == "www.example.com."
    assert name_to_wire(".") == b"\0"


def test_a_config_pass_reuses_identical_encodings_and_re_encodes_changes() -> None:
    first = compiled()
    document = parse_document(
        document_dict(
            checks=tcp_checks(range(8)),
            records=[
                multivalue_record("www.example.com.", 4),
                {
                    "name": "api.example.com.",
                    "type": "TXT",
                    "ttl": 5,
                    "answers": [{"value": "new"}],
                },
            ],
            capacity=CAPACITY,
        )
    )
    second = compile_records(document, random.Random(1), first)
    www_first = first.by_text["www.example.com."].by_type[1]
    www_second = second.by_text["www.example.com."].by_type[1]
    assert www_second.wires == www_first.wires
    assert www_second is not www_first  # the index itself is built anew
    txt = second.by_text["api.example.com."].by_type[16]
    assert json.loads(txt.jsons[0]) == {
        "name": "api.example.com.",
        "type": 16,
        "TTL": 5,
        "data": '"new"',
    }
    assert set(second.encodings) == {
        *((("www.example.com.", "A", 30, f"10.0.0.{i}")) for i in range(1, 5)),
        ("api.example.com.", "TXT", 5, "new"),
    }
