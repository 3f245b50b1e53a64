"""A whole local fleet described once: targets per AZ, checks, records, ports, processes.

Owns: the generated config document for a fleet of simulated targets, the command lines
of every process, and the attribution of an answer back to the AZ and target behind it
(answer values are data only: loopback addresses in 127.100.0.0/14 that nothing listens
on and nothing ever connects to).
Never: starts anything; `sim.fleet` runs what this describes.
"""

# urn: pure

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.farm_layout import checks_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sim.farm_layout import TargetSpec

__all__ = [
    "AZS",
    "FleetPlan",
    "answer_value",
    "attribute",
    "build_document",
]

AZS = ("a", "b", "c", "d", "e", "f")
ZONE = "example.com."
_ANSWER_BASE = 100  # answers live in 127.(100 + az).x.y


def answer_value(az: str, index: int) -> str:
    """The A record value standing for target `index` of AZ `az`."""
    return f"127.{_ANSWER_BASE + AZS.index(az)}.{index // 256}.{index % 256}"


def attribute(value: str) -> tuple[str, int] | None:
    """(az, index) of an answer value made by `answer_value`, else None."""
    try:
        octets = ipaddress.IPv4Address(value).packed
    except ValueError:
        return None
    az_index = octets[1] - _ANSWER_BASE
    if octets[0] != 127 or not 0 <= az_index < len(AZS):
        return None
    return AZS[az_index], octets[2] * 256 + octets[3]


@dataclass(frozen=True)
class FleetPlan:
    """Sizes, timings and addresses of one local fleet."""

    azs: tuple[str, ...] = ("a", "b", "c")
    checkers_per_az: int = 1
    aggregators: int = 2
    resolvers: int = 1
    probe_interval: float = 1.0
    push_interval: float = 0.5
    config_interval: float = 5.0
    timeout: float = 0.5
    failures: int | None = None  # None: urn's shipped per-checker default
    of_last: int | None = None
    capacity: int = 10_000
    shuffle_shard: int | None = None
    aggregator_ports: tuple[int, ...] = ()
    resolver_ports: tuple[tuple[int, int], ...] = ()  # (http, dns) per resolver
    checker_ports: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def checker_ids(self) -> list[tuple[str, str]]:
        """(id, az) of every checker, in start order."""
        return [
            (f"checker-{az}{n + 1}", az) for az in self.azs for n in range(self.checkers_per_az)
        ]

    @property
    def aggregator_ids(self) -> list[str]:
        """The id of every aggregator, in start order (one per port once ports are set)."""
        return [
            f"aggregator-{i + 1}" for i in range(len(self.aggregator_ports) or self.aggregators)
        ]

    def aggregator_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.aggregator_ports]

    def resolver_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{http}" for http, _ in self.resolver_ports]

    def processes(self, config_path: str) -> list[tuple[str, list[str], str | None]]:
        """(name, urn arguments, health URL) for every process of the fleet."""
        out: list[tuple[str, list[str], str | None]] = []
        for i, (http, dns) in enumerate(self.resolver_ports):
            name = f"resolver-{i + 1}"
            args = [
                "resolver",
                "--config",
                config_path,
                "--id",
                name,
                "--listen",
                f"127.0.0.1:{http}",
                "--dns",
                f"127.0.0.1:{dns}",
            ]
            out.append((name, args, f"http://127.0.0.1:{http}/healthz"))
        for name, port in zip(self.aggregator_ids, self.aggregator_ports, strict=False):
            args = [
                "aggregator",
                "--config",
                config_path,
                "--id",
                name,
                "--listen",
                f"127.0.0.1:{port}",
            ]
            out.append((name, args, f"http://127.0.0.1:{port}/healthz"))
        for (checker_id, az), port in zip(self.checker_ids, self.checker_ports, strict=True):
            args = [
                "checker",
                "--config",
                config_path,
                "--id",
                checker_id,
                "--az",
                az,
                "--listen",
                f"127.0.0.1:{port}",
            ]
            out.append((checker_id, args, f"http://127.0.0.1:{port}/healthz"))
        return out


def build_document(targets: Sequence[TargetSpec], plan: FleetPlan) -> dict[str, Any]:
    """The config document: one check per target, four kinds of record per service.

    Target `i` of every AZ (id `<az>-<i>`) together form service `i`. Services cycle through the
    policies: multivalue across the AZs, weighted (AZ weights 1, 2, 3, ...), failover
    (primary in one AZ, secondary in the next) and simple.
    """
    checks = checks_for(targets, extra=None)
    by_service: dict[int, list[tuple[str, int]]] = {}
    for check in checks:
        index = int(check["name"].rsplit("-", 1)[1])
        check["labels"] = {"service": f"svc{index}"}
        by_service.setdefault(index, []).append((check["az"], check["slot"]))
    records = [_record(index, members, plan) for index, members in sorted(by_service.items())]
    document: dict[str, Any] = {
        "capacity": plan.capacity,
        "intervals": {
            "probe": plan.probe_interval,
            "push": plan.push_interval,
            "config": plan.config_interval,
        },
        "staleness": max(3 * plan.push_interval, 2 * plan.probe_interval),
        "fail_open": True,
        "zones": [ZONE],
        "defaults": _defaults(plan),
        "aggregators": plan.aggregator_urls(),
        "resolvers": plan.resolver_urls(),
        "push_key": {"env": "URN_PUSH_KEY"},  # checker tables
        "table_key": {"env": "URN_TABLE_KEY"},  # aggregated tables (sim.fleet makes one)
        # Resolvers take aggregated tables from this fleet's aggregators alone, aggregators
        # checker tables from its checkers alone.
        "senders": {
            "aggregators": plan.aggregator_ids,
            "checkers": [checker_id for checker_id, _ in plan.checker_ids],
        },
        "checks": checks,
        "records": records,
    }
    # Naming the checkers lets each spread its probes of a check evenly among the others'.
    document["assignment"] = {"checkers": [checker_id for checker_id, _ in plan.checker_ids]}
    if plan.shuffle_shard is not None:
        document["assignment"]["shuffle_shard"] = plan.shuffle_shard
    document.update(plan.extra)
    return document


def _defaults(plan: FleetPlan) -> dict[str, Any]:
    defaults: dict[str, Any] = {"timeout": plan.timeout}
    if plan.failures is not None:
        defaults["failures"] = plan.failures
    if plan.of_last is not None:
        defaults["of_last"] = plan.of_last
    return defaults


def _record(index: int, members: list[tuple[str, int]], plan: FleetPlan) -> dict[str, Any]:
    policy = ("multivalue", "weighted", "failover", "simple")[index % 4]
    answers: list[dict[str, Any]] = []
    for position, (az, slot) in enumerate(members):
        answer: dict[str, Any] = {"value": answer_value(az, index), "check": slot}
        if policy == "weighted":
            answer["weight"] = position + 1
        answers.append(answer)
    if policy == "failover":
        primary = index // 4 % len(members)
        secondary = (primary + 1) % len(members)
        answers = [
            {**answers[primary], "role": "primary"},
            {**answers[secondary], "role": "secondary"},
        ]
    return {
        "name": f"svc{index}.{ZONE}",
        "type": "A",
        "ttl": 5,
        "policy": policy,
        "answers": answers,
    }
