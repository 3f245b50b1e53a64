"""urn/shiftedit.py: `--for` durations, the one-block edit of a YAML or JSON document
(comments and layout kept, verified by parsing), and what the summary says the fleet does."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from sim.testing import document_dict
from urn.config import parse_document
from urn.config.levers import format_time
from urn.config.load import load_text
from urn.errors import ConfigError
from urn.shiftedit import (
    describe_end,
    describe_list,
    describe_start,
    edit_text,
    end_shift,
    format_span,
    impact,
    parse_span,
    shift_entries,
    start_shift,
    with_shifts,
)

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
B = {"az": "b", "until": "2027-01-15T08:30:00Z", "reason": "deploy of web 4.2"}
C = {"az": "c", "until": "2027-01-15T09:00:00Z", "reason": "network work"}


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("1m", 60), ("30m", 1800), ("2h", 7200), ("1h30m", 5400),
     ("1h0m1s", 3601), ("72h", 72 * 3600), ("4320m", 72 * 3600), (" 10m ", 600)],
)  # fmt: skip
def test_a_duration_is_hours_minutes_and_seconds(text: str, seconds: int) -> None:
    assert parse_span(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "1.5h", "30 m", "1d", "m", "-5m", "30m1h", "1H"])
def test_a_duration_that_is_not_one_is_refused_with_the_forms(text: str) -> None:
    with pytest.raises(ConfigError, match="must be a duration like 90s, 30m, 2h or 1h30m") as e:
        parse_span(text)
    assert e.value.field_path == "--for"


@pytest.mark.parametrize("text", ["59s", "0m", "72h1s", "73h", "4321m"])
def test_a_duration_outside_a_minute_to_72_hours_names_the_bounds(text: str) -> None:
    with pytest.raises(ConfigError, match="is outside 1m to 72h") as e:
        parse_span(text)
    assert str(e.value).startswith(f"--for: {text!r} ")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (-3, "0s"), (59.9, "59s"), (1799, "29m 59s"), (5400, "1h 30m"),
     (3601, "1h 1s"), (72 * 3600, "72h")],
)  # fmt: skip
def test_format_span(seconds: float, text: str) -> None:
    assert format_span(seconds) == text


# --- the shifts list --------------------------------------------------------------------


def test_start_adds_a_shift_or_replaces_its_azs_in_place() -> None:
    entries, replaced = start_shift([], B)
    assert (entries, replaced) == ([B], None)
    longer = B | {"until": "2027-01-15T10:00:00Z"}
    entries, replaced = start_shift([B, C], longer)
    assert (entries, replaced) == ([longer, C], B)


def test_end_removes_the_azs_shift_and_says_which() -> None:
    assert end_shift([B, C], "b") == ([C], B)
    assert end_shift([C], "b") == ([C], None)


def test_entries_are_read_as_written_and_an_unquoted_yaml_time_as_text() -> None:
    raw = load_text("shifts:\n  - {az: b, until: 2027-01-15T08:30:00Z, reason: x}\n")
    assert shift_entries(raw) == [{"az": "b", "until": "2027-01-15T08:30:00Z", "reason": "x"}]
    assert shift_entries({}) == []


def test_with_shifts_keeps_the_key_in_place_and_drops_it_when_empty() -> None:
    raw = {"capacity": 64, "shifts": [C], "checks": []}
    assert list(with_shifts(raw, [B])) == ["capacity", "shifts", "checks"]
    assert with_shifts(raw, [B])["shifts"] == [B]
    assert with_shifts(raw, []) == {"capacity": 64, "checks": []}
    assert list(with_shifts({"capacity": 64}, [B])) == ["capacity", "shifts"]


# --- the text edit ----------------------------------------------------------------------

YAML = """\
# the fleet
capacity: 64   # slots
checks:
  # AZ b
  - {slot: 1, name: web-b1, az: b}
"""


def edit(text: str, entries: list[dict[str, str]]) -> tuple[str, bool]:
    edited = edit_text(text, load_text(text), entries)
    assert dict(load_text(edited.text)) == with_shifts(load_text(text), entries)
    return edited.text, edited.whole


def test_yaml_without_shifts_gains_a_block_at_the_end_and_loses_it_again() -> None:
    text, whole = edit(YAML, [B])
    assert not whole
    assert text == YAML + (
        'shifts:\n  - {az: b, until: "2027-01-15T08:30:00Z", reason: "deploy of web 4.2"}\n'
    )
    assert edit(text, []) == (YAML, False)


def test_yaml_without_a_final_newline_gets_one_before_the_block() -> None:
    text, _ = edit(YAML.rstrip("\n"), [C])
    assert text.startswith(YAML + "shifts:\n")


def test_an_existing_block_is_replaced_where_it_is_and_comments_around_it_stay() -> None:
    before = YAML + "# levers\nshifts:   # one per AZ\n"
    after = "  # - {az: a, ...} the next one\n\n# records below\nrecords: []\n"
    old = "  - az: c\n    until: 2027-01-15T09:00:00Z\n    reason: >\n      folded\n      text\n"
    text, whole = edit(before + old + after, [B])
    assert not whole
    assert text == (
        YAML + "# levers\nshifts:\n"
        '  - {az: b, until: "2027-01-15T08:30:00Z", reason: "deploy of web 4.2"}\n' + after
    )
    text, _ = edit(before + old + after, [])
    assert text == YAML + "# levers\n" + after


@pytest.mark.parametrize(
    "value",
    [" []", "", " []  # none now", " null", "\n  - {az: c, until: '2027-01-15T09:00:00Z', "
     "reason: x}  # old"],
)  # fmt: skip
def test_every_form_of_a_shifts_value_is_replaced_whole(value: str) -> None:
    text = f"capacity: 64\nshifts:{value}\nrecords: []\n"
    edited, whole = edit(text, [B, C])
    assert not whole
    assert edited.startswith("capacity: 64\nshifts:\n  - {az: b")
    assert edited.endswith('reason: "network work"}\nrecords: []\n')


def test_a_block_scalar_ending_the_block_is_replaced_up_to_the_next_key() -> None:
    text = "shifts:\n  - az: c\n    until: '2027-01-15T09:00:00Z'\n    reason: |\n      x\n\nz: 1\n"
    edited, whole = edit(text, [B])
    assert not whole
    assert edited.endswith('"deploy of web 4.2"}\nz: 1\n')


def test_an_alias_into_the_block_from_it_is_edited_in_place() -> None:
    text = "x: &k 1\nshifts:\n  - {az: b, until: '2027-01-15T08:30:00Z', reason: *k}\n"
    assert edit(text, [C]) == (
        'x: &k 1\nshifts:\n  - {az: c, until: "2027-01-15T09:00:00Z", reason: "network work"}\n',
        False,
    )


def test_crlf_line_ends_are_kept() -> None:
    text = YAML.replace("\n", "\r\n")
    edited, _ = edit(text, [B])
    assert edited.startswith(text)
    assert edited.endswith("\r\n")
    assert "\n" not in edited.replace("\r\n", "")


@pytest.mark.parametrize(
    "reason",
    ["two\nlines", "emoji \U0001f600 and é", "quotes \" ' and \\", "# not a comment", "yes",
     "line\u2028separator", "tab\there", "a: b, {c}"],
)  # fmt: skip
def test_any_reason_is_written_on_one_line_and_reads_back_as_itself(reason: str) -> None:
    text, whole = edit(YAML, [B | {"reason": reason}])
    assert not whole
    assert text.startswith(YAML)
    assert text.count("\n") == YAML.count("\n") + 2


def test_a_plain_word_stays_plain_and_anything_yaml_would_reread_is_quoted() -> None:
    text, _ = edit(YAML, [B | {"az": "us-east-1a", "reason": "r"}, C | {"az": "no"}])
    assert "{az: us-east-1a, until: " in text
    assert "reason: r}" in text
    assert '{az: "no", until: ' in text  # YAML 1.1 reads a bare no as false


@pytest.mark.parametrize(
    "text",
    [
        "{capacity: 64,  # flow style with a comment: not JSON\n checks: []}\n",
        "  capacity: 64\n  checks: []\n",  # keys not at the start of their lines
        "base: &s\n  - {az: c, until: '2027-01-15T09:00:00Z', reason: x}\nshifts: *s\n",
        "shifts:\n  - {az: b, until: '2027-01-15T08:30:00Z', reason: &k x}\nother: *k\n",
    ],
)
def test_yaml_that_cannot_be_edited_in_place_is_dumped_whole(text: str) -> None:
    edited, whole = edit(text, [C])
    assert whole
    assert yaml.safe_load(edited)["shifts"] == [C]


def test_an_edit_that_does_not_read_back_as_intended_falls_back_to_a_whole_dump() -> None:
    text = "capacity: 64\nrecords: []\n...\n"  # an explicit document end: appending breaks
    edited, whole = edit(text, [B])
    assert whole
    assert load_text(edited)["shifts"] == [B]


def test_json_stays_json_in_its_order_and_indentation() -> None:
    raw: dict[str, Any] = {"capacity": 64, "shifts": [C], "checks": [{"slot": 1}]}
    for indent in (None, 2, 4, "\t"):
        text = json.dumps(raw, indent=indent) + "\n"
        edited, whole = edit(text, [B])
        assert not whole
        assert edited == json.dumps(with_shifts(raw, [B]), indent=indent) + "\n"
    compact = json.dumps({"capacity": 64})
    assert edit(compact, [B])[0] == json.dumps({"capacity": 64, "shifts": [B]})
    assert edit(json.dumps({"capacity": 64, "shifts": [B]}), [])[0] == compact


def test_json_keeps_unicode_readable() -> None:
    edited, _ = edit('{"capacity": 64}', [B | {"reason": "déploiement"}])
    assert '"reason": "déploiement"' in edited


# --- the summary ------------------------------------------------------------------------


def document(*shifts: dict[str, str], records: list[dict[str, Any]] | None = None) -> Any:
    checks = [
        {"slot": slot, "name": f"c{slot}", "type": "tcp", "host": "10.0.0.1", "port": 80, "az": az}
        for slot, az in enumerate("aabbc")
    ]
    if records is None:
        records = [
            {"name": "www.example.com.", "answers": [{"value": f"10.0.0.{s + 1}", "check": s}
                                                     for s in range(5)]},
            {"name": "b.example.com.", "answers": [{"value": "10.0.1.1", "check": 2},
                                                   {"value": "10.0.1.2", "check": 3}]},
            {"name": "bc.example.com.", "answers": [{"value": "10.0.2.1", "check": 3},
                                                    {"value": "10.0.2.2", "check": 4}]},
            {"name": "a.example.com.", "answers": [{"value": "10.0.3.1", "check": 0}]},
            {"name": "free.example.com.", "answers": [{"value": "10.0.4.1", "check": 2},
                                                      {"value": "10.0.4.2"}]},
        ]  # fmt: skip
    raw = document_dict(checks, records, shifts=list(shifts))
    return parse_document(raw, NOW)


def at(seconds: float) -> str:
    return format_time(NOW + seconds)


def test_impact_counts_checks_records_and_the_records_that_ignore_the_shift() -> None:
    what = impact(document(B | {"until": at(1800)}), "b", NOW)
    assert what.checks == 2
    assert what.records == (
        "www.example.com. A", "b.example.com. A", "bc.example.com. A", "free.example.com. A",
    )  # fmt: skip
    assert what.ignoring == ("b.example.com. A",)  # an answer without a check is never shifted
    assert what.shifted == ("b",)


def test_with_another_az_shifted_a_record_in_both_ignores_them() -> None:
    doc = document(B | {"until": at(1800)}, C | {"until": at(600)})
    assert impact(doc, "b", NOW).ignoring == ("b.example.com. A", "bc.example.com. A")
    expired = document(B | {"until": at(1800)}, C | {"until": at(-1)})
    assert impact(expired, "b", NOW).ignoring == ("b.example.com. A",)


def test_describe_start_says_until_when_what_it_touches_and_what_ignores_it() -> None:
    doc = document(B | {"until": at(1799)}, C | {"until": at(3600)})
    lines = describe_start(doc, "b", NOW, replaced=B)
    assert lines == [
        "AZ b is shifted until 2027-01-15T08:29:59Z (in 29m 59s): deploy of web 4.2",
        "  replaces its shift until 2027-01-15T08:30:00Z (deploy of web 4.2)",
        "  also shifted: c until 2027-01-15T09:00:00Z",
        "  touches 2 checks and 4 records of 5: their answers in AZ b count as unhealthy",
        "  takes effect at each process's next config pass: within 5s (intervals.config)",
        "  2 records will ignore it and keep answering from AZ b, as all their answers are in "
        "shifted AZs (b, c) and a shift never empties a name: b.example.com. A, "
        "bc.example.com. A",
    ]


def test_describe_start_with_no_record_ignoring_it_says_so() -> None:
    answers = [{"value": "10.0.0.1", "check": 0}, {"value": "10.0.0.2", "check": 2}]
    records = [{"name": "www.example.com.", "answers": answers}]
    lines = describe_start(document(B, records=records), "b", NOW, replaced=None)
    assert (
        lines[1] == "  touches 2 checks and 1 record of 1: their answers in AZ b count as unhealthy"
    )
    assert lines[-1].startswith("  no record has all its answers in shifted AZs")


def test_a_long_list_of_ignoring_records_is_cut() -> None:
    records = [{"name": f"n{i}.example.com.", "answers": [{"value": "10.0.0.1", "check": 2}]}
               for i in range(13)]  # fmt: skip
    lines = describe_start(document(B, records=records), "b", NOW, replaced=None)
    assert lines[-1].endswith("n8.example.com. A, n9.example.com. A and 3 more")


def test_describe_end_of_an_active_and_of_an_expired_shift() -> None:
    doc = document()
    lines = describe_end(doc, B | {"until": at(600)}, NOW)
    assert lines == [
        "AZ b is no longer shifted (the shift had 10m left, until 2027-01-15T08:10:00Z: "
        "deploy of web 4.2)",
        "  its 2 checks and 4 records answer by health again at each process's next config "
        "pass: within 5s (intervals.config)",
    ]
    assert describe_end(doc, B | {"until": at(-90)}, NOW) == [
        "AZ b's shift is gone: it had ended at 2027-01-15T07:58:30Z (expired 1m 30s ago), "
        "so nothing changes"
    ]


def test_describe_list_gives_the_time_left_and_marks_expired_shifts() -> None:
    assert describe_list(document(), NOW) == ["no shifts"]
    doc = document(B | {"until": at(1799)}, C | {"az": "c", "until": at(-7260)})
    assert describe_list(doc, NOW) == [
        "b  until 2027-01-15T08:29:59Z  in 29m 59s  deploy of web 4.2",
        "c  until 2027-01-15T05:59:00Z  expired 2h 1m ago (inactive)  network work",
    ]
