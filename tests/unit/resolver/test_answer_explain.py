"""resolver/answer.py: /v1/explain bodies in full, the down view, the Responder's counters
and flags, SERVFAIL, and query types from the HTTP API (pure, no event loop).

`explain` is what an operator reads to learn why a name answers what it does, so its body
is asserted whole, for each way a candidate can be counted.
"""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import numpy as np
import pytest

from resolver.answer import Responder, down_view, explain, qtype_of, unknown_view
from resolver.levers import plain
from resolver.records import Compiled, compile_records
from sim.testing import document_dict
from sim.testing.resolver import answer_from, failover_record, multivalue_record, tcp_checks
from urn.config import Document, parse_document
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 8
UNHEALTHY = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
HEALTHY = aggregated_byte(Status.HEALTHY)
QR, AA, TC, RD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0010


def document(fail_open: bool = True) -> Document:
    return parse_document(
        document_dict(
            checks=tcp_checks(range(CAPACITY)),
            records=[
                failover_record("api.example.com.", ("10.1.0.1", 4), ("10.1.0.2", 5)),
                {"name": "api.example.com.", "type": "TXT", "answers": [{"value": "hi"}]},
                multivalue_record("www.example.com.", 3),
            ],
            capacity=CAPACITY,
            fail_open=fail_open,
        )
    )


def compiled(fail_open: bool = True) -> Compiled:
    return compile_records(document(fail_open), random.Random(1))


def explained(
    name: str,
    qtype: int | None,
    raw: bytes | None,
    down: bytes,
    fail_open: bool = True,
    table: dict[str, Any] | None = None,
    changed: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
) -> dict[str, Any]:
    """`explain` under a document without levers, from the down view `down`."""
    index = compiled(fail_open)
    return explain(
        index,
        document(fail_open),
        name,
        qtype,
        raw,
        plain(index.levers, down),
        random.Random(3),
        {} if table is None else table,
        changed,
    )


def table(**slots: int) -> bytes:
    raw = bytearray(CAPACITY)
    for slot, byte in slots.items():
        raw[int(slot[1:])] = byte
    return bytes(raw)


def view(raw: bytes, changed: np.ndarray[Any, np.dtype[np.bool_]] | None = None) -> bytes:
    return down_view(np.frombuffer(raw, dtype=np.uint8), changed)


def answer(
    value: str, slot: int | None, role: str | None, counted: str, status: str, reason: str | None
) -> dict[str, Any]:
    levers = {} if slot is None else {"inverted": False, "override": None, "shifted": None}
    return {
        "value": value,
        "slot": slot,
        "weight": 1,
        "role": role,
        "counted_as": counted,
        "status": status,
        "reason": reason,
        **levers,
    }


def thresholds(mode: str, ttl: int = 60, when_all_down: str = "open") -> dict[str, Any]:
    """What a record without levers of its own says of them, in `mode`."""
    return {
        "mode": mode,
        "ttl_now": ttl,
        "min_healthy": None,
        "when_all_down": when_all_down,
        "ttl_when_degraded": None,
    }


TXT = {
    "type": "TXT",
    "qtype": 16,
    "policy": "simple",
    "ttl": 60,
    "answers": [answer("hi", None, None, "healthy", "no_check", None)],
    "would_answer": ["hi"],
    "fail_open_applied": False,
    **thresholds("normal"),
}


def failover_entry(
    answers: list[dict[str, Any]], would: list[str], failed_open: bool, mode: str = "normal"
) -> dict[str, Any]:
    return {
        "type": "A",
        "qtype": 1,
        "policy": "failover",
        "ttl": 60,
        "answers": answers,
        "would_answer": would,
        "fail_open_applied": failed_open,
        **thresholds(mode),
    }


def test_explain_shows_every_candidate_its_status_and_the_pick() -> None:
    raw = table(s4=UNHEALTHY, s5=HEALTHY)
    body = explained("api.example.com.", None, raw, view(raw), table={"t": 1})
    assert body == {
        "name": "api.example.com.",
        "table": {"t": 1},
        "fail_open_config": True,
        "shifts": [],
        "autoshift": {"azs": [], "active": False, "overruled_by_shift": False},
        "rcode": "noerror",
        "zone": "example.com.",
        "records": [
            failover_entry(
                [
                    answer("10.1.0.1", 4, "primary", "unhealthy", "unhealthy", "timeout"),
                    answer("10.1.0.2", 5, "secondary", "healthy", "healthy", None),
                ],
                ["10.1.0.2"],
                False,
                "normal",
            ),
            TXT,
        ],
    }


def test_explain_of_a_fail_open_answer_says_so() -> None:
    raw = table(s4=UNHEALTHY, s5=UNHEALTHY)
    body = explained("api.example.com.", 1, raw, view(raw))
    assert body["records"] == [
        failover_entry(
            [
                answer("10.1.0.1", 4, "primary", "unhealthy", "unhealthy", "timeout"),
                answer("10.1.0.2", 5, "secondary", "unhealthy", "unhealthy", "timeout"),
            ],
            ["10.1.0.1"],
            True,
            "all_down_open",
        )
    ]


def test_explain_without_a_table_or_for_a_changed_slot_counts_it_unknown() -> None:
    no_table = explained("api.example.com.", 1, None, unknown_view(CAPACITY), fail_open=False)
    assert no_table["records"][0]["answers"] == [
        answer("10.1.0.1", 4, "primary", "healthy", "unknown", None),
        answer("10.1.0.2", 5, "secondary", "healthy", "unknown", None),
    ]
    raw = table(s4=UNHEALTHY, s5=HEALTHY)
    changed = np.zeros(CAPACITY, dtype=np.bool_)
    changed[4] = True
    body = explained("api.example.com.", 1, raw, view(raw, changed), False, changed=changed)
    why = "config_changed: the table predates this slot's current target"
    assert body["records"] == [
        failover_entry(
            [
                answer("10.1.0.1", 4, "primary", "healthy", "unknown", why),
                answer("10.1.0.2", 5, "secondary", "healthy", "healthy", None),
            ],
            ["10.1.0.1"],
            False,
        )
        | {"when_all_down": "closed"}
    ]


def test_explain_of_a_multivalue_name_draws_its_order() -> None:
    raw = table(s1=UNHEALTHY)
    body = explained("www.example.com.", 1, raw, view(raw))
    (entry,) = body["records"]
    assert entry["policy"] == "multivalue"
    assert sorted(entry["would_answer"]) == ["10.0.0.1", "10.0.0.3"]


@pytest.mark.parametrize(
    ("name", "rcode"), [("nope.example.com.", "nxdomain"), ("x.example.org.", "refused")]
)
def test_explain_of_a_name_without_records(name: str, rcode: str) -> None:
    body = explained(name, None, None, unknown_view(CAPACITY))
    assert body == {
        "name": name,
        "table": {},
        "fail_open_config": True,
        "shifts": [],
        "autoshift": {"azs": [], "active": False, "overruled_by_shift": False},
        "rcode": rcode,
        "records": [],
    }


def test_down_view_marks_only_unchanged_unhealthy_slots_and_ends_with_a_zero() -> None:
    raw = table(s0=UNHEALTHY, s1=UNHEALTHY, s2=HEALTHY, s3=HEALTHY)
    changed = np.zeros(CAPACITY, dtype=np.bool_)
    changed[[1, 3]] = True
    assert view(raw) == bytes([1, 1, 0, 0, 0, 0, 0, 0, 0])
    assert view(raw, changed) == bytes([1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert unknown_view(CAPACITY) == bytes(CAPACITY + 1)


# --- the Responder over wire bytes ---------------------------------------------------------

WWW = b"\x03www\x07example\x03com\x00"


def query(flags: int = RD, qtype: int = 1, opt: bytes = b"", name: bytes = WWW) -> bytes:
    counts = (1, 0, 0, 1 if opt else 0)
    return (
        struct.pack(">HHHHHH", 0x4242, flags, *counts) + name + struct.pack(">HH", qtype, 1) + opt
    )


def opt_rr(flags: int = 0, version: int = 0, payload: int = 1232) -> bytes:
    return struct.pack(">BHHBBHH", 0, 41, payload, 0, version, flags, 0)


def flags_of(reply: bytes | None) -> int:
    assert reply is not None
    return int(struct.unpack_from(">H", reply, 2)[0])


def test_counters_add_up_over_several_queries() -> None:
    raw = table(s0=UNHEALTHY, s1=UNHEALTHY, s2=UNHEALTHY)
    responder = Responder(compiled(), random.Random(2))
    answer_from(responder, view(raw))  # every www answer down: fail-open answers
    tally: dict[tuple[int, int], int] = {}
    for _ in range(3):
        responder.dns(query(), True, tally)
    json.loads(responder.json("www.example.com.", 1, tally))
    assert responder.fail_open_answers == 4
    assert tally == {(1, 0): 4}
    for _ in range(2):
        responder.dns(query(flags=RD | 0x7800), True, tally)  # opcode 15
        responder.dns(query(opt=opt_rr(version=1)), True, tally)
        responder.dns(query()[:-1], True, tally)  # FORMERR: cut question
    assert responder.malformed == {"opcode": 2, "edns_version": 2, "overrun": 2}
    assert tally == {(1, 0): 4, (-1, 4): 2, (-1, 16): 2, (-1, 1): 2}


def test_responses_copy_only_rd_and_cd_from_the_query() -> None:
    responder = Responder(compiled(), random.Random(2))
    ad = 0x0020
    reply = responder.dns(query(flags=RD | CD | ad), True, {})
    assert flags_of(reply) == QR | AA | RD | CD
    badvers = responder.dns(query(flags=RD | CD | ad, opt=opt_rr(version=1)), True, {})
    assert flags_of(badvers) == QR | RD | CD
    plain = responder.dns(query(flags=0, opt=opt_rr(version=1)), True, {})
    assert flags_of(plain) == QR


def test_edns_answers_echo_the_do_bit_only_when_asked() -> None:
    responder = Responder(compiled(), random.Random(2))
    without = responder.dns(query(opt=opt_rr()), True, {})
    with_do = responder.dns(query(opt=opt_rr(flags=0x8000)), True, {})
    assert without is not None
    assert with_do is not None
    assert struct.unpack_from(">H", without, len(without) - 4)[0] == 0
    assert struct.unpack_from(">H", with_do, len(with_do) - 4)[0] == 0x8000


def _txt_responder(sizes: tuple[int, ...]) -> Responder:
    document = parse_document(
        document_dict(
            records=[
                {
                    "name": "t.example.com.",
                    "type": "TXT",
                    "answers": [{"value": chr(97 + i) * size} for i, size in enumerate(sizes)],
                }
            ],
            capacity=CAPACITY,
        )
    )
    return Responder(compile_records(document, random.Random(1)), random.Random(2))


@pytest.mark.parametrize("size", [512, 513])
def test_a_udp_answer_without_edns_is_cut_past_512_bytes_keeping_its_flags(size: int) -> None:
    name = b"\x01t\x07example\x03com\x00"
    base = _txt_responder((200, 100, 100)).dns(query(qtype=16, name=name), False, {})
    assert base is not None
    responder = _txt_responder((200, 100, 100 + size - len(base)))
    full = responder.dns(query(qtype=16, name=name), False, {})
    assert full is not None
    assert len(full) == size
    reply = responder.dns(query(qtype=16, name=name), True, {})
    if size == 512:
        assert reply == full
    else:
        assert flags_of(reply) == QR | AA | RD | TC
        assert reply is not None
        assert len(reply) == 12 + len(name) + 4


def test_servfail_from_the_header_alone_and_counted() -> None:
    responder = Responder(compiled(), random.Random(2))
    tally: dict[tuple[int, int], int] = {}
    assert responder.servfail(b"\x00" * 11, tally) is None
    header = struct.pack(">HHHHHH", 0x0707, RD, 1, 0, 0, 0)
    for _ in range(2):
        assert responder.servfail(header, tally) == struct.pack(
            ">HHHHHH", 0x0707, QR | RD | 2, 0, 0, 0, 0
        )
    assert tally == {(-1, 2): 2}


def test_json_for_a_missing_name_echoes_the_question() -> None:
    responder = Responder(compiled(), random.Random(2))
    body = json.loads(responder.json("nope.example.com.", 1, {}))
    assert body["Question"] == [{"name": "nope.example.com.", "type": 1}]


@pytest.mark.parametrize(
    ("text", "value"), [("1", 1), ("65535", 65535), ("aaaa", 28), (" mx ", 15)]
)
def test_query_types_from_the_api(text: str, value: int) -> None:
    assert qtype_of(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "type '0' is out of range 1-65535"),
        ("65536", "type '65536' is out of range 1-65535"),
        ("BOGUS", "type 'BOGUS' is not a DNS record type"),
    ],
)
def test_bad_query_types_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        qtype_of(text)
    assert str(info.value) == message


def test_the_first_json_answer_counts_once() -> None:
    responder = Responder(compiled(), random.Random(2))
    tally: dict[tuple[int, int], int] = {}
    responder.json("www.example.com.", 1, tally)
    assert tally == {(1, 0): 1}


def test_a_response_of_exactly_65535_bytes_over_tcp_is_whole() -> None:
    # The largest record validation accepts (see test_config_validate_edges): 245 TXT answers
    # whose response with an OPT record is exactly one full DNS message.
    answers = [{"value": f"{i:03d}" + "x" * 252} for i in range(244)] + [{"value": "y" * 88}]
    document = parse_document(
        document_dict(
            records=[{"name": "t.example.com.", "type": "TXT", "answers": answers}],
            capacity=CAPACITY,
        )
    )
    responder = Responder(compile_records(document, random.Random(1)), random.Random(2))
    name = b"\x01t\x07example\x03com\x00"
    reply = responder.dns(query(qtype=16, name=name, opt=opt_rr()), False, {})
    assert reply is not None
    assert len(reply) == 65535
    assert flags_of(reply) == QR | AA | RD  # not truncated
    assert struct.unpack_from(">H", reply, 6)[0] == 245
