"""Zones in the config: a bare name as before, or a delegable zone (name, ns, addresses, ttl,
soa); each refusal word for word with its field path, and every default (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from sim.testing import document_dict
from urn.config import Document, Soa, Zone, parse_document, parse_text
from urn.errors import ConfigError

NS1, NS2 = "ns1.example.com.", "ns2.example.com."


def zone(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "example.com.",
        "ns": [NS1, NS2],
        "addresses": {NS1: ["192.0.2.1", "2001:db8::1"], NS2: ["192.0.2.2"]},
    }
    return {**base, **fields}


def parse(*zones: Any, records: list[dict[str, Any]] | None = None) -> Document:
    return parse_document(document_dict(zones=list(zones), records=records or []))


def refusal(*zones: Any, records: list[dict[str, Any]] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(*zones, records=records)
    return info.value


def test_a_bare_name_keeps_the_soa_it_always_had_and_no_nameservers() -> None:
    (bare,) = parse("Example.COM").zones
    assert bare == Zone(
        name="example.com.",
        soa=Soa(
            mname="ns.example.com.",
            rname="hostmaster.example.com.",
            serial=1,
            refresh=3600,
            retry=600,
            expire=86400,
            minimum=60,
            ttl=60,
        ),
    )
    assert (bare.ns, dict(bare.addresses), bare.ttl) == ((), {}, 3600)


def test_a_mapping_with_only_a_name_is_the_bare_form() -> None:
    assert parse({"name": "example.com"}).zones == parse("example.com.").zones


def test_the_full_mapping_parses_from_yaml() -> None:
    document = parse_text(
        """
zones:
  - name: Example.com
    ns: [NS1.example.com, ns2.example.com., ns.provider.net.]
    addresses:
      ns1.example.com.: [192.0.2.1, "2001:DB8:0::1"]
      ns2.example.com: 192.0.2.2
    ttl: 7200
    soa: {mname: ns2.example.com., rname: dns-admin.example.com., serial: 2026120101,
          refresh: 14400, retry: 3600, expire: 1209600, minimum: 300, ttl: 3600}
  - internal.
"""
    )
    delegable, bare = document.zones
    assert delegable.name == "example.com."
    assert delegable.ns == (NS1, NS2, "ns.provider.net.")
    assert dict(delegable.addresses) == {NS1: ("192.0.2.1", "2001:db8::1"), NS2: ("192.0.2.2",)}
    assert delegable.ttl == 7200
    assert delegable.soa == Soa(
        mname=NS2,
        rname="dns-admin.example.com.",
        serial=2026120101,
        refresh=14400,
        retry=3600,
        expire=1209600,
        minimum=300,
        ttl=3600,
    )
    assert (bare.name, bare.ns) == ("internal.", ())
    assert document.zone_names == ("example.com.", "internal.")


def test_mname_defaults_to_the_first_nameserver() -> None:
    (delegable,) = parse(zone(ns=[NS2, NS1])).zones
    assert delegable.soa.mname == NS2
    assert delegable.soa.rname == "hostmaster.example.com."
    assert delegable.soa.serial == 1


def test_a_nameserver_outside_the_zone_needs_no_addresses() -> None:
    (delegable,) = parse({"name": "example.com.", "ns": ["a.dns.example.net."]}).zones
    assert delegable.ns == ("a.dns.example.net.",)
    assert dict(delegable.addresses) == {}
    # The parent's nameserver is outside the child: the child needs no glue for it.
    _, child = parse(zone(), {"name": "sub.example.com.", "ns": [NS1]}).zones
    assert (child.ns, dict(child.addresses)) == ((NS1,), {})


def test_soa_numbers_at_their_bounds_are_accepted() -> None:
    top = {"serial": 2**32 - 1, "refresh": 0, "retry": 2**32 - 1, "expire": 0, "minimum": 0}
    (delegable,) = parse(zone(soa={**top, "ttl": 2**31 - 1})).zones
    assert (delegable.soa.serial, delegable.soa.ttl) == (2**32 - 1, 2**31 - 1)


def test_default_names_of_a_zone_at_the_length_limit_stay_names() -> None:
    """ns.<zone> and hostmaster.<zone> would be too long: the zone itself stands in."""
    longest = ".".join(["x" * 63] * 3 + ["y" * 61]) + "."
    (bare,) = parse(longest).zones
    assert (bare.soa.mname, bare.soa.rname) == (longest, longest)


@pytest.mark.parametrize(
    ("zones", "records", "path", "message"),
    [
        (
            [5],
            [],
            "zones[0]",
            "zones[0]: 5 must be a zone name or a mapping (name, ns, ...)",
        ),
        ([{"ns": [NS1]}], [], "zones[0].name", "zones[0].name: None is required"),
        (
            [zone(), {"name": "EXAMPLE.com"}],
            [],
            "zones[1]",
            "zones[1]: 'example.com.' is a duplicate",
        ),
        (
            [zone(nameservers=[NS1])],
            [],
            "zones[0].nameservers",
            "zones[0].nameservers: ['ns1.example.com.'] is not a known field",
        ),
        (
            [zone(ns=NS1)],
            [],
            "zones[0].ns",
            "zones[0].ns: 'ns1.example.com.' must be a list",
        ),
        (
            [zone(ns=[NS1, "ns 2.example.com."])],
            [],
            "zones[0].ns[1]",
            "zones[0].ns[1]: 'ns 2.example.com.' is not a DNS name: name holds a space, "
            "quote, backslash or control character",
        ),
        (
            [zone(ns=[NS1, 7])],
            [],
            "zones[0].ns[1]",
            "zones[0].ns[1]: 7 is not a DNS name",
        ),
        (
            [zone(ns=[NS1, "NS1.example.com"])],
            [],
            "zones[0].ns[1]",
            "zones[0].ns[1]: 'ns1.example.com.' is a duplicate",
        ),
        (
            [zone(ns=[NS1, NS2, "ns3.example.com."])],
            [],
            "zones[0].ns[2]",
            "zones[0].ns[2]: 'ns3.example.com.' is inside example.com., so it needs its "
            "addresses (glue) in zones[0].addresses",
        ),
        (
            [zone(addresses={NS1: ["192.0.2.1", "192.0.2.300"], NS2: ["192.0.2.2"]})],
            [],
            "zones[0].addresses[ns1.example.com.][1]",
            "zones[0].addresses[ns1.example.com.][1]: '192.0.2.300' is not an IPv4 or IPv6 address",
        ),
        (
            [zone(addresses={NS1: [3221225985], NS2: ["192.0.2.2"]})],
            [],
            "zones[0].addresses[ns1.example.com.][0]",
            "zones[0].addresses[ns1.example.com.][0]: 3221225985 is not an IPv4 or IPv6 address",
        ),
        (
            [zone(addresses={NS1: ["fe80::1%eth0"], NS2: ["192.0.2.2"]})],
            [],
            "zones[0].addresses[ns1.example.com.][0]",
            "zones[0].addresses[ns1.example.com.][0]: 'fe80::1%eth0' is not an IPv4 or IPv6 "
            "address",
        ),
        (
            [zone(addresses={NS1: ["192.0.2.1", "192.0.2.01"], NS2: ["192.0.2.2"]})],
            [],
            "zones[0].addresses[ns1.example.com.][1]",
            "zones[0].addresses[ns1.example.com.][1]: '192.0.2.01' is not an IPv4 or IPv6 address",
        ),
        (
            [zone(addresses={NS1: ["2001:db8::1", "2001:DB8:0::1"], NS2: ["192.0.2.2"]})],
            [],
            "zones[0].addresses[ns1.example.com.][1]",
            "zones[0].addresses[ns1.example.com.][1]: '2001:db8::1' is a duplicate",
        ),
        (
            [zone(addresses={NS1: [], NS2: ["192.0.2.2"]})],
            [],
            "zones[0].addresses[ns1.example.com.]",
            "zones[0].addresses[ns1.example.com.]: [] must be a list of IPv4 and IPv6 addresses",
        ),
        (
            [zone(addresses={NS1: ["192.0.2.1"], NS2: ["192.0.2.2"], "ns9.example.com.": []})],
            [],
            "zones[0].addresses[ns9.example.com.]",
            "zones[0].addresses[ns9.example.com.]: 'ns9.example.com.' is not one of ns "
            "['ns1.example.com.', 'ns2.example.com.']",
        ),
        (
            [
                zone(
                    ns=[NS1, "a.dns.example.net."],
                    addresses={NS1: ["192.0.2.1"], "a.dns.example.net.": ["192.0.2.9"]},
                )
            ],
            [],
            "zones[0].addresses[a.dns.example.net.]",
            "zones[0].addresses[a.dns.example.net.]: 'a.dns.example.net.' is outside "
            "example.com.: only a nameserver inside the zone has glue",
        ),
        (
            [zone(addresses={NS1: ["192.0.2.1"], "NS1.example.com": ["192.0.2.1"]})],
            [],
            "zones[0].addresses[NS1.example.com]",
            "zones[0].addresses[NS1.example.com]: 'NS1.example.com' is ns1.example.com. again",
        ),
        (
            [zone(soa={"serial": 2**32})],
            [],
            "zones[0].soa.serial",
            "zones[0].soa.serial: 4294967296 must be at most 4294967295",
        ),
        (
            [zone(soa={"expire": -1})],
            [],
            "zones[0].soa.expire",
            "zones[0].soa.expire: -1 must be at least 0",
        ),
        (
            [zone(soa={"minimum": "1h"})],
            [],
            "zones[0].soa.minimum",
            "zones[0].soa.minimum: '1h' must be an integer",
        ),
        (
            [zone(soa={"ttl": 2**31})],
            [],
            "zones[0].soa.ttl",
            "zones[0].soa.ttl: 2147483648 must be at most 2147483647",
        ),
        (
            [zone(ttl=-5)],
            [],
            "zones[0].ttl",
            "zones[0].ttl: -5 must be at least 0",
        ),
        (
            [zone(soa={"rname": "hostmaster@example.com"})],
            [],
            "zones[0].soa.rname",
            "zones[0].soa.rname: 'hostmaster@example.com' is a mailbox written as a DNS "
            "name: hostmaster.example.com. for hostmaster@example.com",
        ),
        (
            [zone(soa={"mname": "a..b."})],
            [],
            "zones[0].soa.mname",
            "zones[0].soa.mname: 'a..b.' is not a DNS name: name has an empty label",
        ),
        (
            [zone(soa={"refersh": 1})],
            [],
            "zones[0].soa.refersh",
            "zones[0].soa.refersh: 1 is not a known field",
        ),
        (
            [
                {
                    "name": "example.com.",
                    "ns": ["ns1.sub.example.com."],
                    "addresses": {"ns1.sub.example.com.": ["192.0.2.1"]},
                },
                {
                    "name": "sub.example.com.",
                    "ns": ["ns1.sub.example.com."],
                    "addresses": {"ns1.sub.example.com.": ["192.0.2.7"]},
                },
            ],
            [],
            "zones[1].addresses[ns1.sub.example.com.]",
            "zones[1].addresses[ns1.sub.example.com.]: ['192.0.2.7'] differ from "
            "zones[0].addresses[ns1.sub.example.com.]: a name has one set of addresses",
        ),
        (
            [zone()],
            [{"name": NS1, "type": "AAAA", "answers": [{"value": "2001:db8::9"}]}],
            "records[0].name",
            "records[0].name: 'ns1.example.com.' is a nameserver whose addresses "
            "zones[0].addresses gives: give them in one place, not as AAAA records too",
        ),
        (
            [zone()],
            [{"name": NS2, "type": "CNAME", "answers": [{"value": "www.example.com."}]}],
            "records[0].name",
            "records[0].name: 'ns2.example.com.' is a nameserver whose addresses "
            "zones[0].addresses gives: give them in one place, not as CNAME records too",
        ),
        (
            ["example.com."],
            [{"name": "example.com.", "type": "CNAME", "answers": [{"value": "x.example.net."}]}],
            "records[0].type",
            "records[0].type: 'CNAME' cannot be at the apex of zone example.com.",
        ),
    ],
)
def test_zone_mistakes_name_their_field(
    zones: list[Any], records: list[dict[str, Any]], path: str, message: str
) -> None:
    exc = refusal(*zones, records=records)
    assert (exc.field_path, str(exc)) == (path, message)


def test_a_nested_zone_may_repeat_the_same_glue() -> None:
    glue = {"ns1.sub.example.com.": ["192.0.2.1"]}
    document = parse(
        {"name": "example.com.", "ns": ["ns1.sub.example.com."], "addresses": glue},
        {"name": "sub.example.com.", "ns": ["ns1.sub.example.com."], "addresses": glue},
    )
    assert [dict(z.addresses) for z in document.zones] == [
        {"ns1.sub.example.com.": ("192.0.2.1",)}
    ] * 2


def test_other_records_may_live_at_a_nameserver_name() -> None:
    txt = {"name": NS1, "type": "TXT", "answers": [{"value": "hello"}]}
    a_below = {"name": "x." + NS1, "answers": [{"value": "10.0.0.1"}]}
    document = parse(zone(), records=[txt, a_below])
    assert [r.name for r in document.records] == [NS1, "x." + NS1]


def test_an_ns_answer_too_big_for_one_message_is_refused() -> None:
    servers = [f"{'n' * 60}.{i:03d}.{'d' * 60}.example.com." for i in range(60)]
    addresses = {s: [f"2001:db8::{i:x}:{j:x}" for j in range(16)] for i, s in enumerate(servers)}
    exc = refusal(zone(ns=servers, addresses=addresses))
    assert exc.field_path == "zones[0].ns"
    assert str(exc).startswith("zones[0].ns: '60 nameservers' with their addresses make an NS ")
    assert str(exc).endswith("bytes, over the 65,535 a DNS message can hold")
