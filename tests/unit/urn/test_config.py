"""The configuration document: a full valid one parses; every mistake names its field."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.testing import document_dict
from urn.config import (
    Answer,
    Check,
    CheckType,
    Defaults,
    Document,
    Intervals,
    KeySource,
    OnStale,
    Policy,
    Quorum,
    RecordType,
    Senders,
    WhenAllDown,
    parse_document,
    parse_text,
)
from urn.errors import ConfigError

FULL_YAML = """\
capacity: 10000
intervals: {probe: 0.5, push: 1.0, config: 3.0}
staleness: 4.0
skew: 10.0
fail_open: false
max_table_age: 60.0
zones: [Example.COM, internal.]
aggregators: [http://127.0.0.1:7101, "https://127.0.0.1:7102/"]
resolvers: [http://127.0.0.1:7201]
defaults: {failures: 2, of_last: 5, timeout: 0.75}
quorum: {unhealthy_at: 0.6, min_checkers: 2, cross_az: false}
assignment: {shuffle_shard: 2, checkers: [chk-a1, chk-b1, chk-c1]}
push_key: {env: URN_PUSH_KEY}
previous_push_keys:
  - {file: /etc/urn/old.key}
table_key: {file: /etc/urn/table.key}
previous_table_keys: [{env: URN_OLD_TABLE_KEY}]
senders: {aggregators: [agg-1, agg-2], checkers: ["chk-*", probe-7]}
on_stale: open
tls: {cert: /etc/urn/cert.pem, key: /etc/urn/key.pem, ca: /etc/urn/ca.pem}
checks:
  - {slot: 0, name: web-a1, type: http, host: 10.0.1.10, port: 8080, path: /healthz,
     timeout: 1.0, search: "ok", failures: 3, of_last: 6, az: a, labels: {tier: web, n: 1},
     quorum: {min_checkers: 3}}
  - {slot: 1, name: db-a1, type: tcp, host: 10.0.1.20, port: 5432}
  - {slot: 7, name: web-b1, type: https, host: web-b1.internal, verify_tls: true}
  - {slot: 9999, name: web-all, type: calculated, children: [0, 7], healthy_if_at_least: 1}
records:
  - name: www.example.com.
    type: A
    ttl: 30
    policy: multivalue
    answers:
      - {value: 10.0.1.10, check: 0}
      - {value: 10.0.2.10, check: web-b1, weight: 2}
      - {value: 10.0.3.10}
  - name: api.example.com
    policy: failover
    answers:
      - {value: 10.0.1.11, check: 0, role: primary}
      - {value: 10.0.2.11, check: 9999, role: secondary}
  - name: v6.example.com.
    type: AAAA
    answers: [{value: "2001:db8::1", check: 1}]
  - name: alias.example.com.
    type: CNAME
    policy: weighted
    answers:
      - {value: www.example.com, weight: 3, check: 0}
      - {value: api.example.com., weight: 0}
  - name: txt.internal.
    type: TXT
    answers: [{value: "v=spf1 -all"}]
"""


def full() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(FULL_YAML)
    return raw


def error_of(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_document(raw)
    return caught.value


def tcp(slot: int, **extra: Any) -> dict[str, Any]:
    return {
        "slot": slot,
        "name": f"c{slot}",
        "type": "tcp",
        "host": "10.0.0.1",
        "port": 80,
        **extra,
    }


def record(name: str = "www.example.com.", **extra: Any) -> dict[str, Any]:
    return {"name": name, "answers": [{"value": "10.0.0.1"}], **extra}


# --- a full valid document ---------------------------------------------------------------


def test_full_yaml_document_parses() -> None:
    doc = parse_text(FULL_YAML)
    assert doc.capacity == 10_000
    assert doc.intervals == Intervals(probe=0.5, push=1.0, config=3.0)
    assert (doc.staleness, doc.skew, doc.fail_open, doc.max_table_age) == (4.0, 10.0, False, 60.0)
    assert doc.zone_names == ("example.com.", "internal.")
    assert doc.aggregators == ("http://127.0.0.1:7101", "https://127.0.0.1:7102")
    fleet_quorum = Quorum(unhealthy_at=0.6, min_checkers=2, cross_az=False)
    assert doc.defaults == Defaults(
        failures=2,
        of_last=5,
        timeout=0.75,
        quorum=fleet_quorum,
        when_all_down=WhenAllDown.CLOSED,  # fail_open: false, its old spelling
    )
    assert doc.assignment.shuffle_shard == 2
    assert doc.push_key.env == "URN_PUSH_KEY"
    assert doc.previous_push_keys[0].file == "/etc/urn/old.key"
    assert (doc.table_key, doc.previous_table_keys) == (
        KeySource(file="/etc/urn/table.key"),
        (KeySource(env="URN_OLD_TABLE_KEY"),),
    )
    assert doc.senders == Senders(aggregators=("agg-1", "agg-2"), checkers=("chk-*", "probe-7"))
    assert doc.on_stale is OnStale.OPEN
    assert doc.tls.serves_https
    assert [c.slot for c in doc.checks] == [0, 1, 7, 9999]
    web = doc.checks_by_slot[0]
    assert web == Check(
        slot=0,
        name="web-a1",
        type=CheckType.HTTP,
        failures=3,
        of_last=6,
        timeout=1.0,
        quorum=Quorum(unhealthy_at=0.6, min_checkers=3, cross_az=False),
        host="10.0.1.10",
        port=8080,
        path="/healthz",
        search="ok",
        az="a",
        labels=web.labels,
    )
    assert dict(web.labels) == {"tier": "web", "n": "1"}
    assert doc.checks_by_slot[1].quorum == fleet_quorum
    assert doc.checks_by_slot[7].port == 443
    assert doc.checks_by_slot[7].verify_tls
    calculated = doc.checks_by_slot[9999]
    assert calculated.children == (0, 7)
    assert not calculated.is_probed
    www, api, v6, alias, txt = doc.records
    assert www.policy is Policy.MULTIVALUE
    assert www.ttl == 30
    assert www.answers[1] == Answer(value="10.0.2.10", check=7, weight=2)
    assert www.answers[2].check is None
    assert api.name == "api.example.com."
    assert api.type is RecordType.A
    assert [a.role for a in api.answers] == ["primary", "secondary"]
    assert v6.answers[0].value == "2001:db8::1"
    assert alias.answers[0].value == "www.example.com."
    assert alias.answers[1].weight == 0
    assert txt.type is RecordType.TXT


def test_json_document_parses_to_the_same_document() -> None:
    assert parse_text(json.dumps(full())) == parse_text(FULL_YAML)
    assert parse_text(json.dumps(full()).encode()) == parse_text(FULL_YAML)


def test_defaults_are_applied() -> None:
    doc = parse_document({"checks": [{"slot": 0, "type": "http", "host": "h"}]})
    assert doc.capacity == 10_000
    assert doc.intervals == Intervals()
    assert doc.staleness == 5.0
    assert doc.skew == 10.0  # a table stamped 20 s ahead is refused
    assert doc.on_stale is OnStale.HOLD
    assert (doc.table_key, doc.previous_table_keys) == (None, ())
    assert doc.senders == Senders(aggregators=None, checkers=None)
    assert doc.fail_open is True
    assert doc.max_table_age == 30.0
    assert doc.push_key.env == "URN_PUSH_KEY"
    assert doc.previous_push_keys == ()
    assert not doc.tls.serves_https
    assert doc.defaults == Defaults(failures=1, of_last=1, timeout=1.0, quorum=Quorum())
    assert Quorum() == Quorum(unhealthy_at=0.51, min_checkers=1, cross_az=True)
    check = doc.checks[0]
    assert (check.name, check.port, check.path, check.failures, check.of_last) == (
        "slot-0",
        80,
        "/",
        1,
        1,
    )
    assert check.quorum == Quorum()
    assert check.timeout == 1.0
    assert check.search is None
    assert not check.verify_tls


def test_fleet_defaults_flow_into_checks() -> None:
    doc = parse_document(
        {"defaults": {"failures": 4, "timeout": 2.5}, "checks": [tcp(0), tcp(1, failures=1)]}
    )
    # of_last defaults to at least failures, so a raised failures stays satisfiable.
    assert (doc.checks[0].failures, doc.checks[0].of_last, doc.checks[0].timeout) == (4, 4, 2.5)
    assert (doc.checks[1].failures, doc.checks[1].of_last) == (1, 4)
    doc = parse_document(
        {"defaults": {"failures": 2, "of_last": 8}, "checks": [tcp(0), tcp(1, failures=8)]}
    )
    assert [(c.failures, c.of_last) for c in doc.checks] == [(2, 8), (8, 8)]


def test_fleet_quorum_flows_into_checks_and_a_check_overrides_part_of_it() -> None:
    doc = parse_document(
        {
            "quorum": {"unhealthy_at": 0.82, "cross_az": False},
            "checks": [tcp(0), tcp(1, quorum={"min_checkers": 3}), tcp(2, quorum={})],
        }
    )
    fleet = Quorum(unhealthy_at=0.82, min_checkers=1, cross_az=False)
    assert doc.defaults.quorum == fleet
    assert [c.quorum for c in doc.checks] == [
        fleet,
        Quorum(unhealthy_at=0.82, min_checkers=3, cross_az=False),
        fleet,
    ]


def test_unhealthy_at_of_one_is_allowed() -> None:
    assert parse_document({"quorum": {"unhealthy_at": 1}}).defaults.quorum.unhealthy_at == 1.0


def test_check_target_is_what_is_probed() -> None:
    base = parse_document(document_dict([tcp(0, labels={"a": 1})])).checks[0]
    relabelled = parse_document(
        document_dict([tcp(0, labels={"b": 2}, name="renamed", failures=2, quorum={})])
    ).checks[0]
    moved = parse_document(document_dict([tcp(0, port=81)])).checks[0]
    assert base.target == relabelled.target
    assert base.target != moved.target


def test_aggregate_lag_default_follows_push_interval() -> None:
    assert parse_document({"intervals": {"push": 0.25}}).intervals.aggregate_lag == 0.025
    assert parse_document({"intervals": {"push": 2.0}}).intervals.aggregate_lag == 0.2


def test_staleness_default_follows_push_interval() -> None:
    assert parse_document({"intervals": {"push": 4.0}}).staleness == 12.0


def test_empty_mapping_is_a_valid_document() -> None:
    assert parse_text("{}").checks == ()


# --- digest ------------------------------------------------------------------------------


def test_digest_is_stable_for_the_same_document() -> None:
    first = parse_text(FULL_YAML).digest
    assert len(first) == 32
    assert parse_text(FULL_YAML).digest == first
    assert parse_text(json.dumps(full())).digest == first
    reordered = dict(reversed(list(full().items())))
    assert parse_document(reordered).digest == first


def test_digest_changes_when_the_document_changes() -> None:
    changed = full()
    changed["checks"][1]["port"] = 5433
    assert parse_document(changed).digest != parse_text(FULL_YAML).digest


# --- errors name the field and the value --------------------------------------------------


def test_slot_outside_capacity_message_shape() -> None:
    raw = document_dict([tcp(0), tcp(1), tcp(2), tcp(12000)], capacity=10_000)
    assert str(error_of(raw)) == "checks[3].slot: 12000 is outside capacity 10000"


def test_config_error_carries_path_and_value() -> None:
    exc = error_of(document_dict([tcp(0), tcp(1), tcp(2), tcp(12000)], capacity=10_000))
    assert (exc.field_path, exc.value) == ("checks[3].slot", 12000)


def _set(path: list[Any], value: Any) -> dict[str, Any]:
    raw = full()
    target: Any = raw
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return raw


def _add_check(check: dict[str, Any]) -> dict[str, Any]:
    raw = full()
    raw["checks"].append(check)
    return raw


def _add_record(rec: dict[str, Any]) -> dict[str, Any]:
    raw = full()
    raw["records"].append(rec)
    return raw


def _del(path: list[Any]) -> dict[str, Any]:
    raw = full()
    target: Any = raw
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return raw


MISTAKES = [
    # (id, document, expected message)
    ("slot-negative", _set(["checks", 1, "slot"], -1), "checks[1].slot: -1 must be at least 0"),
    (
        "slot-capacity-edge",
        _set(["checks", 1, "slot"], 10_000),
        "checks[1].slot: 10000 is outside capacity 10000",
    ),
    (
        "duplicate-slot",
        _set(["checks", 1, "slot"], 0),
        "checks[1].slot: 0 is already used by checks[0]",
    ),
    (
        "duplicate-name",
        _set(["checks", 1, "name"], "web-a1"),
        "checks[1].name: 'web-a1' is already used by checks[0]",
    ),
    (
        "answer-missing-slot",
        _set(["records", 0, "answers", 0, "check"], 5),
        "records[0].answers[0].check: 5 is not the slot of any check",
    ),
    (
        "answer-missing-name",
        _set(["records", 0, "answers", 0, "check"], "nope"),
        "records[0].answers[0].check: 'nope' is not the name of any check",
    ),
    (
        "answer-check-wrong-type",
        _set(["records", 0, "answers", 0, "check"], 1.5),
        "records[0].answers[0].check: 1.5 must be a check slot or name",
    ),
    (
        "child-missing",
        _set(["checks", 3, "children"], [0, 42]),
        "checks[3].children[1]: 42 is not the slot of any check",
    ),
    (
        "unknown-top-field",
        _set(["capacty"], 5),
        "capacty: 5 is not a known field",
    ),
    (
        "unknown-check-field",
        _set(["checks", 0, "colour"], "red"),
        "checks[0].colour: 'red' is not a known field",
    ),
    (
        "unknown-nested-field",
        _set(["intervals", "prob"], 1),
        "intervals.prob: 1 is not a known field",
    ),
    (
        "unknown-answer-field",
        _set(["records", 0, "answers", 0, "wieght"], 1),
        "records[0].answers[0].wieght: 1 is not a known field",
    ),
    ("capacity-string", _set(["capacity"], "big"), "capacity: 'big' must be an integer"),
    ("capacity-bool", _set(["capacity"], True), "capacity: True must be an integer"),
    ("capacity-float", _set(["capacity"], 10.5), "capacity: 10.5 must be an integer"),
    ("capacity-zero", _set(["capacity"], 0), "capacity: 0 must be at least 1"),
    ("interval-string", _set(["intervals", "push"], "1s"), "intervals.push: '1s' must be a number"),
    (
        "lag-not-shorter-than-push",
        _set(["intervals", "aggregate_lag"], 1.0),
        "intervals.aggregate_lag: 1.0 must be shorter than push 1",
    ),
    (
        "lag-negative",
        _set(["intervals", "aggregate_lag"], -0.1),
        "intervals.aggregate_lag: -0.1 must be at least 0.0",
    ),
    ("staleness-nan", _set(["staleness"], float("nan")), "staleness: nan must be a number"),
    ("fail-open-string", _set(["fail_open"], "yes"), "fail_open: 'yes' must be true or false"),
    ("zones-not-list", _set(["zones"], "example.com."), "zones: 'example.com.' must be a list"),
    (
        "zone-not-a-name",
        _set(["zones", 0], 5),
        "zones[0]: 5 must be a zone name or a mapping (name, ns, ...)",
    ),
    ("checks-not-list", _set(["checks"], {"a": 1}), "checks: {'a': 1} must be a list"),
    ("check-not-mapping", _set(["checks", 0], 5), "checks[0]: 5 must be a mapping"),
    (
        "check-type",
        _set(["checks", 1, "type"], "udp"),
        "checks[1].type: 'udp' must be one of http, https, tcp, calculated",
    ),
    (
        "port-range",
        _set(["checks", 1, "port"], 70000),
        "checks[1].port: 70000 must be at most 65535",
    ),
    ("host-missing", _del(["checks", 1, "host"]), "checks[1].host: None is required"),
    ("slot-missing", _del(["checks", 1, "slot"]), "checks[1].slot: None is required"),
    (
        "path-relative",
        _set(["checks", 0, "path"], "healthz"),
        "checks[0].path: 'healthz' must start with / and hold no spaces",
    ),
    (
        "failures-over-of-last",
        _set(["checks", 0, "failures"], 7),
        "checks[0].failures: 7 exceeds of_last 6",
    ),
    (
        "of-last-over-history",
        _set(["checks", 0, "of_last"], 9),
        "checks[0].of_last: 9 must be at most 8",
    ),
    (
        "failures-over-history",
        _set(["checks", 1, "failures"], 9),
        "checks[1].failures: 9 must be at most 8",
    ),
    (
        "defaults-of-last-over-history",
        _set(["defaults", "of_last"], 9),
        "defaults.of_last: 9 must be at most 8",
    ),
    (
        "quorum-unhealthy-at-zero",
        _set(["quorum", "unhealthy_at"], 0.0),
        "quorum.unhealthy_at: 0.0 must be above 0 (0 would call all down)",
    ),
    (
        "quorum-unhealthy-at-over-one",
        _set(["quorum", "unhealthy_at"], 1.5),
        "quorum.unhealthy_at: 1.5 must be at most 1.0",
    ),
    (
        "quorum-min-checkers-zero",
        _set(["quorum", "min_checkers"], 0),
        "quorum.min_checkers: 0 must be at least 1",
    ),
    (
        "quorum-cross-az-string",
        _set(["quorum", "cross_az"], "yes"),
        "quorum.cross_az: 'yes' must be true or false",
    ),
    (
        "quorum-unknown-field",
        _set(["quorum", "majority"], 0.5),
        "quorum.majority: 0.5 is not a known field",
    ),
    (
        "check-quorum-min-checkers-zero",
        _set(["checks", 0, "quorum", "min_checkers"], 0),
        "checks[0].quorum.min_checkers: 0 must be at least 1",
    ),
    (
        "check-quorum-unknown-field",
        _set(["checks", 0, "quorum", "x"], 1),
        "checks[0].quorum.x: 1 is not a known field",
    ),
    (
        "quorum-under-defaults",
        _set(["defaults", "quorum"], {}),
        "defaults.quorum: {} is not a known field",
    ),
    (
        "defaults-failures-over-of-last",
        _set(["defaults"], {"failures": 6, "of_last": 5}),
        "defaults.failures: 6 exceeds of_last 5",
    ),
    (
        "label-name-not-string",
        _set(["checks", 0, "labels"], {1: "a", "b": "c"}),
        "checks[0].labels.1: 1 label names must be strings",
    ),
    (
        "label-value-not-scalar",
        _set(["checks", 0, "labels"], {"a": {"x": 1}}),
        "checks[0].labels.a: {'x': 1} label values must be scalars",
    ),
    (
        "failover-two-primaries",
        _set(["records", 1, "answers", 1, "role"], "primary"),
        "records[1].answers: ['primary', 'primary'] failover needs one primary and one secondary",
    ),
    (
        "failover-no-secondary",
        _set(["records", 1, "answers"], [{"value": "10.0.0.1", "role": "primary"}]),
        "records[1].answers: ['primary'] failover needs one primary and one secondary",
    ),
    (
        "failover-no-role",
        _del(["records", 1, "answers", 1, "role"]),
        "records[1].answers[1].role: None must be primary or secondary",
    ),
    (
        "role-outside-failover",
        _set(["records", 0, "answers", 0, "role"], "primary"),
        "records[0].answers[0].role: 'primary' only applies to failover, not multivalue",
    ),
    (
        "bad-ipv4",
        _set(["records", 0, "answers", 0, "value"], "10.0.0.300"),
        "records[0].answers[0].value: '10.0.0.300' is not an IPv4 address",
    ),
    (
        "ipv6-in-a",
        _set(["records", 0, "answers", 0, "value"], "2001:db8::1"),
        "records[0].answers[0].value: '2001:db8::1' is not an IPv4 address",
    ),
    (
        "ipv4-in-aaaa",
        _set(["records", 2, "answers", 0, "value"], "10.0.0.1"),
        "records[2].answers[0].value: '10.0.0.1' is not an IPv6 address",
    ),
    (
        "record-outside-zones",
        _add_record(record("www.other.org.")),
        "records[5].name: 'www.other.org.' is outside every zone ['example.com.', 'internal.']",
    ),
    (
        "cname-sharing-name",
        _add_record(record("alias.example.com.")),
        "records[5].type: 'A' CNAME cannot share a name with other records",
    ),
    (
        "cname-after-a",
        _add_record(
            {"name": "www.example.com.", "type": "CNAME", "answers": [{"value": "x.example.com."}]}
        ),
        "records[5].type: 'CNAME' CNAME cannot share a name with other records",
    ),
    (
        "duplicate-record",
        _add_record(record("WWW.example.com")),
        "records[5].name: 'www.example.com.' A already defined by records[0]",
    ),
    (
        "no-answers",
        _add_record({"name": "x.example.com.", "answers": []}),
        "records[5].answers: [] must hold at least one answer",
    ),
    (
        "repeated-answer",
        _add_record(
            {"name": "x.example.com.", "answers": [{"value": "10.0.0.1"}, {"value": "10.0.0.1"}]}
        ),
        "records[5].answers: ['10.0.0.1', '10.0.0.1'] repeat a value",
    ),
    (
        "bad-url",
        _set(["aggregators", 0], "ftp://x"),
        "aggregators[0]: 'ftp://x' is not an http(s) URL",
    ),
    (
        "push-key-both",
        _set(["push_key"], {"env": "A", "file": "/k"}),
        "push_key: {'env': 'A', 'file': '/k'} needs exactly one of env or file",
    ),
    (
        "shard-too-big",
        _set(["assignment", "shuffle_shard"], 4),
        "assignment.shuffle_shard: 4 needs at least that many checkers listed in "
        "assignment.checkers (3)",
    ),
    (
        "tls-cert-without-key",
        _del(["tls", "key"]),
        "tls.key: None cert and key must be given together",
    ),
    ("duplicate-zone", _set(["zones"], ["a.", "A"]), "zones[1]: 'a.' is a duplicate"),
    (
        "calculated-no-children",
        _set(["checks", 3, "children"], []),
        "checks[3].children: [] must name at least one child slot",
    ),
    (
        "calculated-threshold",
        _set(["checks", 3, "healthy_if_at_least"], 3),
        "checks[3].healthy_if_at_least: 3 must be at most 2",
    ),
    ("on-stale", _set(["on_stale"], "close"), "on_stale: 'close' must be one of hold, open"),
    (
        "table-key-both",
        _set(["table_key"], {"env": "K", "file": "/k"}),
        "table_key: {'env': 'K', 'file': '/k'} needs exactly one of env or file",
    ),
    (
        "previous-table-key-shape",
        _set(["previous_table_keys"], ["K"]),
        "previous_table_keys[0]: 'K' must be a mapping",
    ),
    (
        "senders-unknown",
        _set(["senders"], {"resolvers": ["r1"]}),
        "senders.resolvers: ['r1'] is not a known field",
    ),
    (
        "senders-empty",
        _set(["senders", "aggregators"], []),
        "senders.aggregators: [] must list at least one id or pattern (leave it out for any)",
    ),
    (
        "senders-not-a-list",
        _set(["senders", "aggregators"], "agg-1"),
        "senders.aggregators: 'agg-1' must be a list",
    ),
    (
        "senders-duplicate",
        _set(["senders", "checkers"], ["chk-*", "chk-*"]),
        "senders.checkers[1]: 'chk-*' is a duplicate",
    ),
    (
        "senders-long-id",
        _set(["senders", "aggregators"], ["a" * 33]),
        f"senders.aggregators[0]: {'a' * 33!r} is longer than a sender id can be (32 bytes)",
    ),
    (
        "senders-not-a-string",
        _set(["senders", "checkers"], [7]),
        "senders.checkers[0]: 7 must be a string",
    ),
    (
        "senders-empty-id",
        _set(["senders", "checkers"], [""]),
        "senders.checkers[0]: '' must be 1-255 bytes without NUL",
    ),
]


@pytest.mark.parametrize(
    ("raw", "message"), [(m[1], m[2]) for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_each_mistake_names_its_field(raw: dict[str, Any], message: str) -> None:
    exc = error_of(raw)
    assert str(exc) == message
    assert str(exc).startswith(exc.field_path + ": ")


# --- DNS names: zones, record names and CNAME targets --------------------------------


def name_of_length(total: int) -> str:
    """A name under example.com with `total` characters before its trailing dot (a wire
    name of `total` + 2 bytes), in labels of at most 63 bytes."""
    labels: list[str] = []
    left = total - len("example.com")
    while left > 0:
        size = min(63, left - 1)
        labels.append("x" * size)
        left -= size + 1
    name = ".".join([*labels, "example.com"])
    assert len(name) == total
    return name + "."


NAME_PLACES = {
    "zone": (lambda name: _set(["zones", 1], name), "zones[1]"),
    "record-name": (lambda name: _add_record(record(name)), "records[5].name"),
    "cname-target": (
        lambda name: _set(["records", 3, "answers", 0, "value"], name),
        "records[3].answers[0].value",
    ),
}

BAD_NAMES = [
    # (id, name, why: the whole reason after "is not a DNS name: ")
    ("empty", "", "name is empty"),
    ("blank", "  ", "name is empty"),
    ("empty-label", "a..example.com.", "name has an empty label"),
    ("leading-dot", ".example.com.", "name has an empty label"),
    ("label-64", "x" * 64 + ".example.com.", "name has a label longer than 63 characters"),
    ("name-254", name_of_length(254), "name is longer than 253 characters"),
    (
        "non-ascii",
        "bücher.example.com.",
        "name must be ASCII (use punycode for international names)",
    ),
    ("space", "a b.example.com.", "name holds a space, quote, backslash or control character"),
]


@pytest.mark.parametrize("place", NAME_PLACES, ids=list(NAME_PLACES))
@pytest.mark.parametrize(
    ("name", "why"), [(b[1], b[2]) for b in BAD_NAMES], ids=[b[0] for b in BAD_NAMES]
)
def test_a_name_dns_cannot_carry_names_its_field(place: str, name: str, why: str) -> None:
    build, path = NAME_PLACES[place]
    exc = error_of(build(name))
    assert (exc.field_path, exc.value) == (path, name)
    assert str(exc) == f"{path}: {name!r} is not a DNS name: {why}"


def test_names_at_the_limits_are_accepted() -> None:
    """A 63-byte label and a 253-character name (255 bytes on the wire) are DNS names."""
    longest = name_of_length(253)
    long_label = "x" * 63 + ".example.com."
    raw = _set(["records", 3, "answers", 0, "value"], longest)
    raw["records"] += [record(longest), record(long_label.upper())]
    raw["zones"].append("y" * 63 + ".")
    doc = parse_document(raw)
    assert {longest, long_label} <= {r.name for r in doc.records}
    assert doc.records[3].answers[0].value == longest
    assert doc.zones[-1].name == "y" * 63 + "."


# --- the tls block: what must come in pairs ----------------------------------------------

TLS_MISTAKES = [
    (
        "client-cert-without-key",
        {"client_cert": "/etc/urn/client.pem"},
        "tls.client_key: None client_cert and client_key go together",
    ),
    (
        "client-key-without-cert",
        {"client_key": "/etc/urn/client.key"},
        "tls.client_key: '/etc/urn/client.key' client_cert and client_key go together",
    ),
    (
        "require-client-cert-without-ca",
        {"cert": "/etc/urn/cert.pem", "key": "/etc/urn/key.pem", "require_client_cert": True},
        "tls.require_client_cert: True needs ca and cert (an HTTPS listener)",
    ),
    (
        "require-client-cert-without-cert",
        {"ca": "/etc/urn/ca.pem", "require_client_cert": True},
        "tls.require_client_cert: True needs ca and cert (an HTTPS listener)",
    ),
    (
        "key-without-cert",
        {"key": "/etc/urn/key.pem"},
        "tls.key: '/etc/urn/key.pem' cert and key must be given together",
    ),
]


@pytest.mark.parametrize(
    ("tls", "message"), [(m[1], m[2]) for m in TLS_MISTAKES], ids=[m[0] for m in TLS_MISTAKES]
)
def test_each_tls_pairing_mistake_names_its_field(tls: dict[str, Any], message: str) -> None:
    exc = error_of(_set(["tls"], tls))
    assert str(exc) == message
    assert str(exc).startswith(exc.field_path + ": ")


def test_mutual_tls_with_every_pair_is_accepted() -> None:
    tls = {
        "cert": "/etc/urn/cert.pem",
        "key": "/etc/urn/key.pem",
        "ca": "/etc/urn/ca.pem",
        "client_cert": "/etc/urn/client.pem",
        "client_key": "/etc/urn/client.key",
        "require_client_cert": True,
    }
    doc = parse_document(_set(["tls"], tls))
    assert (doc.tls.client_cert, doc.tls.client_key) == (tls["client_cert"], tls["client_key"])
    assert doc.tls.require_client_cert
    assert doc.tls.serves_https
    pushing_only = parse_document(
        _set(["tls"], {k: tls[k] for k in ("ca", "client_cert", "client_key")})
    )
    assert not pushing_only.tls.serves_https
    assert not pushing_only.tls.require_client_cert


def test_calculated_cycle_names_the_cycle() -> None:
    raw = document_dict(
        [
            {"slot": 0, "type": "calculated", "children": [1]},
            {"slot": 1, "type": "calculated", "children": [2]},
            {"slot": 2, "type": "calculated", "children": [0]},
            tcp(3),
        ]
    )
    exc = error_of(raw)
    assert exc.field_path == "checks[0].children"
    assert "form a cycle 0 -> 1 -> 2 -> 0" in str(exc)


def test_calculated_self_reference_is_a_cycle() -> None:
    exc = error_of(document_dict([{"slot": 5, "type": "calculated", "children": [5]}]))
    assert "cycle 5 -> 5" in str(exc)


def test_calculated_diamond_is_not_a_cycle() -> None:
    doc = parse_document(
        document_dict(
            [
                tcp(0),
                {"slot": 1, "type": "calculated", "children": [0]},
                {"slot": 2, "type": "calculated", "children": [0]},
                {"slot": 3, "type": "calculated", "children": [1, 2]},
            ]
        )
    )
    assert doc.checks_by_slot[3].children == (1, 2)


# --- text-level errors --------------------------------------------------------------------


def test_invalid_yaml_names_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_text("capacity: 10\nchecks: [1, 2\nrecords: []\n", origin="fleet.yaml")
    message = str(caught.value)
    assert message.startswith("fleet.yaml is not valid YAML/JSON at line 3, column")


def test_invalid_json_names_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_text('{\n  "capacity": 10,\n  "checks": [\n}', origin="fleet.json")
    assert "fleet.json is not valid YAML/JSON at line 4" in str(caught.value)


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string", "42", "", "null", "[]"])
def test_non_mapping_top_level(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_text(text, origin="f.yaml")
    assert str(caught.value) == "f.yaml must hold a mapping at the top level"


@pytest.mark.parametrize(
    "text",
    [
        "capacity: 5\ncapacity: 6\n",
        '{"capacity": 5, "capacity": 6}',
        "checks:\n- {slot: 1, slot: 2}\n",
    ],
)
def test_repeated_key_is_an_error_not_last_wins(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_text(text)
    assert "twice" in str(caught.value) or "duplicate key" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "a: " + "[" * 5000,
        '{"a": ' * 5000 + "1" + "}" * 5000,
        "!!python/object/apply:os.system [echo hi]",
        "a: &x [*x]",
        "? [1]\n: 2",
        b"\xff\xfe\x00\x01",
        b'{"a": "\xff"}',
        "\t\tcapacity: 1",
    ],
)
def test_hostile_text_is_a_config_error(text: str | bytes) -> None:
    with pytest.raises(ConfigError):
        parse_text(text)


_scalars = st.none() | st.booleans() | st.integers(-3, 70000) | st.floats() | st.text(max_size=6)
_keys = st.sampled_from(
    [
        "capacity",
        "checks",
        "records",
        "slot",
        "name",
        "type",
        "host",
        "answers",
        "value",
        "check",
        "children",
        "labels",
        "zones",
        "policy",
        "role",
        "x",
        "tcp",
        "http",
        "calculated",
    ]
)
_values = st.recursive(
    _scalars | st.sampled_from(["tcp", "http", "calculated", "failover", "A", "www.example.com."]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_keys | st.integers(0, 3), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_arbitrary_documents_only_raise_config_errors(raw: dict[str, Any]) -> None:
    outcome: Document | ConfigError
    try:
        outcome = parse_document(raw)
    except ConfigError as exc:
        outcome = exc
    if isinstance(outcome, ConfigError):
        assert str(outcome).startswith(outcome.field_path)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_mutated_full_document_only_raises_config_errors(data: st.DataObject) -> None:
    raw = copy.deepcopy(full())
    section = data.draw(st.sampled_from(["checks", "records"]))
    item = data.draw(st.integers(0, len(raw[section]) - 1))
    key = data.draw(st.sampled_from(sorted(raw[section][item])))
    raw[section][item][key] = data.draw(_values)
    with contextlib.suppress(ConfigError):
        parse_document(raw)
