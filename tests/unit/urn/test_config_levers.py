"""urn/config/levers.py: shifts, overrides, invert and record thresholds in the document,
each error naming its field, and expiries judged against the `now` the loader passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sim.testing import document_dict
from urn.config import (
    Forced,
    MinHealthy,
    Override,
    Shift,
    WhenAllDown,
    parse_document,
    parse_text,
)
from urn.config.levers import LEVER_HORIZON, format_time, parse_time
from urn.errors import ConfigError

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def at(seconds: float) -> str:
    return format_time(NOW + seconds)


def checks(**extra: Any) -> list[dict[str, Any]]:
    """Slots 0-2 in AZs a, b, c; `extra` goes into slot 0's check."""
    return [
        {"slot": slot, "name": f"c{slot}", "type": "tcp", "host": "10.0.0.1", "port": 80, "az": az}
        | (extra if slot == 0 else {})
        for slot, az in enumerate("abc")
    ]


def record(**extra: Any) -> dict[str, Any]:
    return {
        "name": "www.example.com.",
        "ttl": 30,
        "answers": [{"value": f"10.0.0.{i + 1}", "check": i} for i in range(3)],
        **extra,
    }


def doc(
    *, check: dict[str, Any] | None = None, rec: dict[str, Any] | None = None, **top: Any
) -> dict[str, Any]:
    return document_dict(checks=checks(**(check or {})), records=[record(**(rec or {}))], **top)


def error(raw: dict[str, Any], now: float | None = NOW) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_document(raw, now)
    return str(caught.value)


SHIFT = {"az": "b", "until": at(3600), "reason": "deploy"}
OVERRIDE = {"status": "unhealthy", "until": at(600), "reason": "disk swap"}


def test_a_shift_is_read_with_its_expiry() -> None:
    document = parse_document(doc(shifts=[SHIFT]), NOW)
    assert document.shifts == (Shift(az="b", until=NOW + 3600, reason="deploy"),)


def test_an_override_and_invert_are_read() -> None:
    document = parse_document(doc(check={"override": OVERRIDE, "invert": True}), NOW)
    check = document.checks[0]
    assert check.override == Override(Forced.UNHEALTHY, NOW + 600, "disk swap")
    assert check.invert
    assert document.checks[1].override is None
    assert not document.checks[1].invert


def test_levers_do_not_change_what_a_check_probes() -> None:
    plain = parse_document(doc(), NOW).checks[0]
    levered = parse_document(doc(check={"override": OVERRIDE, "invert": True}), NOW).checks[0]
    assert plain.target == levered.target  # a table's health of the slot still counts


# Each case: the document, the field its error names, and the rest of the message.
LEVER_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    (doc(shifts=[SHIFT | {"az": "d"}]), "shifts[0].az", "'d' is not the AZ of any check (a, b, c)"),
    (doc(shifts=[SHIFT, SHIFT]), "shifts[1].az", "'b' is already shifted by shifts[0]: one per AZ"),
    (
        doc(shifts=[{"az": "b", "reason": "x"}]),
        "shifts[0].until",
        "None is required: every lever ends by itself",
    ),
    (
        doc(shifts=[SHIFT | {"until": "tomorrow"}]),
        "shifts[0].until",
        "'tomorrow' must be an RFC 3339 UTC time like 2026-12-01T12:00:00Z",
    ),
    (
        doc(shifts=[SHIFT | {"until": "2027-01-15T09:00:00+02:00"}]),
        "shifts[0].until",
        "'2027-01-15T09:00:00+02:00' must be an RFC 3339 UTC time like 2026-12-01T12:00:00Z",
    ),
    (
        doc(shifts=[SHIFT | {"until": "2027-02-30T09:00:00Z"}]),
        "shifts[0].until",
        "'2027-02-30T09:00:00Z' is not a valid time: day is out of range for month",
    ),
    (
        doc(shifts=[SHIFT | {"until": 1800000000}]),
        "shifts[0].until",
        "1800000000 must be an RFC 3339 UTC time like 2026-12-01T12:00:00Z",
    ),
    (
        doc(shifts=[SHIFT | {"until": at(LEVER_HORIZON + 1)}]),
        "shifts[0].until",
        "'2027-01-18T08:00:01Z' is more than 72 hours after 2027-01-15T08:00:00Z, "
        "when this document was validated: a lever always has a near expiry",
    ),
    (doc(shifts=[SHIFT | {"reason": " "}]), "shifts[0].reason", "' ' must be 1-500 bytes of text"),
    (doc(shifts=[{"az": "b", "until": at(60)}]), "shifts[0].reason", "None is required"),
    (doc(shifts=[SHIFT | {"for": "30m"}]), "shifts[0].for", "'30m' is not a known field"),
    (doc(shifts={"az": "b"}), "shifts", "{'az': 'b'} must be a list"),
    (
        doc(check={"override": OVERRIDE | {"status": "maybe"}}),
        "checks[0].override.status",
        "'maybe' must be one of healthy, unhealthy",
    ),
    (
        doc(check={"override": {"status": "healthy", "reason": "x"}}),
        "checks[0].override.until",
        "None is required: every lever ends by itself",
    ),
    (
        doc(check={"override": OVERRIDE | {"until": at(LEVER_HORIZON + 60)}}),
        "checks[0].override.until",
        "'2027-01-18T08:01:00Z' is more than 72 hours after 2027-01-15T08:00:00Z, "
        "when this document was validated: a lever always has a near expiry",
    ),
    (doc(check={"override": "off"}), "checks[0].override", "'off' must be a mapping"),
    (doc(check={"invert": "yes"}), "checks[0].invert", "'yes' must be true or false"),
    (
        doc(rec={"min_healthy": {}}),
        "records[0].min_healthy",
        "{} needs count, percent or both (0 for none)",
    ),
    (
        doc(rec={"min_healthy": {"count": 4}}),
        "records[0].min_healthy.count",
        "4 exceeds the record's 3 answers",
    ),
    (
        doc(rec={"min_healthy": {"percent": 101}}),
        "records[0].min_healthy.percent",
        "101 must be at most 100.0",
    ),
    (
        doc(rec={"min_healthy": {"count": -1}}),
        "records[0].min_healthy.count",
        "-1 must be at least 0",
    ),
    (
        doc(rec={"min_healthy": {"count": 1, "share": 1}}),
        "records[0].min_healthy.share",
        "1 is not a known field",
    ),
    (
        doc(rec={"when_all_down": "panic"}),
        "records[0].when_all_down",
        "'panic' must be one of open, closed, nxdomain, servfail",
    ),
    (
        doc(rec={"ttl_when_degraded": 60}),
        "records[0].ttl_when_degraded",
        "60 exceeds the record's ttl 30",
    ),
    (doc(rec={"ttl_when_degraded": -1}), "records[0].ttl_when_degraded", "-1 must be at least 0"),
    (
        doc(defaults={"when_all_down": "shut"}),
        "defaults.when_all_down",
        "'shut' must be one of open, closed, nxdomain, servfail",
    ),
    (
        doc(defaults={"min_healthy": {"percent": -5}}),
        "defaults.min_healthy.percent",
        "-5 must be at least 0.0",
    ),
    (
        doc(defaults={"ttl_when_degraded": 2**31}),
        "defaults.ttl_when_degraded",
        "2147483648 must be at most 2147483647",
    ),
    (
        doc(fail_open=False, defaults={"when_all_down": "closed"}),
        "fail_open",
        "False is the old spelling of defaults.when_all_down: give one or the other",
    ),
    (
        doc(autoshift={"unhealthy_share": 0}),
        "autoshift.unhealthy_share",
        "0.0 must be above 0: no AZ is ever all healthy",
    ),
    (
        doc(autoshift={"unhealthy_share": 1.5}),
        "autoshift.unhealthy_share",
        "1.5 must be at most 1.0",
    ),
    (
        doc(autoshift={"unhealthy_share": 0.4, "clear_share": 0.4}),
        "autoshift.clear_share",
        "0.4 must be below unhealthy_share (0.4): the gap is the hysteresis",
    ),
    (doc(autoshift={"min_checks": 0}), "autoshift.min_checks", "0 must be at least 1"),
    (doc(autoshift={"clear_after": -1}), "autoshift.clear_after", "-1 must be at least 0.0"),
    (doc(autoshift={"share": 0.5}), "autoshift.share", "0.5 is not a known field"),
    (doc(autoshift=[0.5]), "autoshift", "[0.5] must be a mapping"),
    (
        doc(autoshift={"unhealthy_share": -0.5}),
        "autoshift.unhealthy_share",
        "-0.5 must be at least 0.0",
    ),
    (doc(autoshift={"clear_share": -0.1}), "autoshift.clear_share", "-0.1 must be at least 0.0"),
    (doc(shifts=["b"]), "shifts[0]", "'b' must be a mapping"),
    (
        document_dict(
            checks=[{"slot": 0, "name": "c0", "type": "tcp", "host": "10.0.0.1", "port": 80}],
            shifts=[SHIFT],
        ),
        "shifts[0].az",
        "'b' is not the AZ of any check (none)",
    ),
    (
        doc(defaults={"min_healthy": {"count": 0x10000}}),
        "defaults.min_healthy.count",
        "65536 must be at most 65535",
    ),
]


@pytest.mark.parametrize(("raw", "field", "problem"), LEVER_ERRORS)
def test_every_lever_error_names_its_field(raw: dict[str, Any], field: str, problem: str) -> None:
    assert error(raw) == f"{field}: {problem}"


def test_an_expiry_up_to_72_hours_ahead_is_accepted() -> None:
    parse_document(doc(shifts=[SHIFT | {"until": at(LEVER_HORIZON)}]), NOW)


def test_an_expired_lever_is_valid_and_simply_inactive() -> None:
    """A later pass over the same document, after its shift ran out, must not refuse it
    (the 1-minute minimum is `urn shift start`'s to keep: docs/resolver.md)."""
    raw = doc(shifts=[SHIFT | {"until": at(-5)}], check={"override": OVERRIDE | {"until": at(-5)}})
    document = parse_document(raw, NOW)
    assert document.shifts[0].until == NOW - 5
    assert document.checks[0].override is not None


def test_without_now_no_horizon_is_judged() -> None:
    parse_document(doc(shifts=[SHIFT | {"until": at(10 * LEVER_HORIZON)}]), None)


def test_the_horizon_follows_the_now_given() -> None:
    raw = doc(shifts=[SHIFT | {"until": at(LEVER_HORIZON + 10)}])
    assert "more than 72 hours" in error(raw, NOW)
    parse_document(raw, NOW + 10)  # validated 10 s later, the same expiry is in bounds


def test_yaml_reads_an_unquoted_utc_timestamp() -> None:
    text = f"""
capacity: 8
zones: [example.com.]
checks: [{{slot: 0, type: tcp, host: h, port: 1, az: b}}]
shifts: [{{az: b, until: {at(60)}, reason: deploy}}]
"""
    assert parse_text(text, now=NOW).shifts[0].until == NOW + 60
    local = text.replace("Z,", "+01:00,")
    with pytest.raises(ConfigError, match=r"shifts\[0\].until: .* must be a UTC time"):
        parse_text(local, now=NOW)
    naive = text.replace("Z,", ",")
    with pytest.raises(ConfigError, match=r"shifts\[0\].until: .* must be a UTC time"):
        parse_text(naive, now=NOW)
    with pytest.raises(ConfigError) as caught:
        parse_text(local, now=NOW)
    assert "2027-01-15 08:01:00+01:00" in str(caught.value)  # the time as written


def test_every_lever_at_its_bound_is_accepted() -> None:
    longest = "x" * 500
    document = parse_document(
        doc(
            shifts=[SHIFT | {"reason": longest}],
            rec={"min_healthy": {"count": 3}, "ttl_when_degraded": 30},
            defaults={"ttl_when_degraded": 2**31 - 1},
        ),
        NOW,
    )
    (www,) = document.records
    assert document.shifts[0].reason == longest
    assert (www.min_healthy, www.ttl_when_degraded) == (MinHealthy(count=3), 30)
    assert document.defaults.ttl_when_degraded == 2**31 - 1
    assert "must be 1-500 bytes" in error(doc(shifts=[SHIFT | {"reason": longest + "x"}]))


def test_a_lever_given_as_null_is_no_lever() -> None:
    document = parse_document(
        doc(check={"override": None}, rec={"min_healthy": None}, fail_open=None), NOW
    )
    assert document.checks[0].override is None
    assert document.records[0].min_healthy == MinHealthy()
    assert document.fail_open


def test_min_healthy_with_a_percent_alone_has_no_count() -> None:
    (www,) = parse_document(doc(rec={"min_healthy": {"percent": 50}}), NOW).records
    assert www.min_healthy == MinHealthy(count=0, percent=50.0)


def test_rfc3339_forms_and_their_round_trip() -> None:
    assert parse_time("2027-01-15T08:00:00Z", "x") == NOW
    assert parse_time("2027-01-15t08:00:00.5z", "x") == NOW + 0.5
    assert parse_time("2027-01-15T08:00:00+00:00", "x") == NOW
    assert parse_time(datetime(2027, 1, 15, 8, tzinfo=UTC), "x") == NOW
    assert parse_time(datetime(2027, 1, 15, 8, tzinfo=timezone(timedelta(0))), "x") == NOW
    assert format_time(NOW) == "2027-01-15T08:00:00Z"


def test_record_thresholds_inherit_the_fleet_defaults() -> None:
    defaults = {"min_healthy": {"count": 2}, "when_all_down": "servfail", "ttl_when_degraded": 60}
    document = parse_document(doc(defaults=defaults), NOW)
    (www,) = document.records
    assert www.min_healthy == MinHealthy(count=2)
    assert www.when_all_down is WhenAllDown.SERVFAIL
    assert www.ttl_when_degraded == 30  # the fleet default, cut to the record's TTL
    assert not document.fail_open
    overridden = parse_document(
        doc(
            defaults=defaults,
            rec={
                "min_healthy": {"count": 0, "percent": 0},  # opts out of the fleet's
                "when_all_down": "open",
                "ttl_when_degraded": 5,
            },
        ),
        NOW,
    ).records[0]
    assert not overridden.min_healthy.enabled
    assert overridden.when_all_down is WhenAllDown.OPEN
    assert overridden.ttl_when_degraded == 5


def test_fail_open_is_the_old_spelling_of_the_fleet_when_all_down() -> None:
    closed = parse_document(doc(fail_open=False), NOW)
    assert closed.defaults.when_all_down is WhenAllDown.CLOSED
    assert closed.records[0].when_all_down is WhenAllDown.CLOSED
    assert not closed.fail_open
    opened = parse_document(doc(fail_open=True), NOW)
    assert opened.records[0].when_all_down is WhenAllDown.OPEN
    assert parse_document(doc(), NOW).fail_open


def test_by_default_no_lever_is_in_force() -> None:
    document = parse_document(doc(), NOW)
    (www,) = document.records
    assert document.shifts == ()
    assert not document.autoshift.enabled
    assert (www.min_healthy, www.when_all_down, www.ttl_when_degraded) == (
        MinHealthy(),
        WhenAllDown.OPEN,
        None,
    )


def test_autoshift_is_on_with_its_section_and_clear_share_defaults_to_half() -> None:
    on = parse_document(doc(autoshift={"unhealthy_share": 0.6}), NOW).autoshift
    assert (on.enabled, on.unhealthy_share, on.min_checks, on.clear_share, on.clear_after) == (
        True,
        0.6,
        10,
        0.3,
        60.0,
    )
    assert parse_document(doc(autoshift={}), NOW).autoshift.enabled
    assert not parse_document(doc(autoshift={"enabled": False}), NOW).autoshift.enabled
    assert not parse_document(doc(autoshift=None), NOW).autoshift.enabled
