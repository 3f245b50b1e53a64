"""One resolver query without sockets: µs per query, all healthy vs all unhealthy, interleaved.

Run: `.venv/bin/python -m bench.micro.resolve [--rounds R] [--per-round K]`.
Measures, for an 8-answer multivalue name in a 10,000-slot table: the UDP protocol path
(`datagram_received` with a no-op transport: parse, read every candidate, choose, build),
`Responder.json` (the DoH-JSON body), and for scale a Prometheus `Histogram.observe`
and `Counter.inc` against the dict increment the hot path uses instead. Healthy and
unhealthy (fail-open) rounds alternate, so machine noise hits both alike; the ratio
should be 1.00 within noise. Best-of-rounds is the floor, median what a noisy machine gives.
`--levers`: every record carries `min_healthy` (count 2, 50 %) and `ttl_when_degraded`,
and a third world, "panic" (6 of every 8 answers down: below min_healthy), joins the
rounds; the levers are decided per refresh, so the per-query cost must not move.
Ends with one JSON line: {"bench": "resolve", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import TYPE_CHECKING

import dns.message
import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from resolver.answer import Responder, down_view, up_view
from resolver.dnsserver import _Udp
from resolver.levers import plain
from resolver.records import compile_records
from sim.testing import document_dict
from sim.testing.resolver import multivalue_record, tcp_checks
from urn.config import parse_document
from urn.metrics import QUERY_BUCKETS
from urn.table import Reason, Status, aggregated_byte

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main"]

CAPACITY = 10_000
NAMES = 100


class _NullTransport:
    def sendto(self, data: bytes, addr: object) -> None:
        pass


def _run(fn: Callable[[], object], per_round: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(per_round):
        fn()
    return (time.perf_counter_ns() - started) / per_round / 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=20_000)
    parser.add_argument(
        "--levers", action="store_true", help="min_healthy and ttl_when_degraded on every record"
    )
    args = parser.parse_args(argv)
    records = [multivalue_record(f"n{i}.example.com.", 8, i * 8) for i in range(NAMES)]
    if args.levers:
        for record in records:
            record.update(min_healthy={"count": 2, "percent": 50}, ttl_when_degraded=5)
    document = parse_document(
        document_dict(checks=tcp_checks(range(NAMES * 8)), records=records, capacity=CAPACITY)
    )
    compiled = compile_records(document, random.Random(1))
    responder = Responder(compiled, random.Random(2))
    healthy = aggregated_byte(Status.HEALTHY)
    unhealthy = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
    tables = {
        "healthy": np.full(CAPACITY, healthy, dtype=np.uint8),
        "unhealthy": np.full(CAPACITY, unhealthy, dtype=np.uint8),
    }
    if args.levers:
        tables["panic"] = np.where(np.arange(CAPACITY) % 8 < 6, unhealthy, healthy).astype(np.uint8)
    views = {
        health: plain(compiled.levers, down_view(table), up_view(table))
        for health, table in tables.items()
    }
    wire = dns.message.make_query("n42.example.com.", "A").to_wire()
    protocol = _Udp(responder, {}, lambda _: None, 15)
    protocol.transport = _NullTransport()  # type: ignore[assignment]
    address = ("127.0.0.1", 5353)
    tally: dict[tuple[int, int], int] = {}
    paths: dict[str, Callable[[], object]] = {
        "udp": lambda: protocol.datagram_received(wire, address),
        "json": lambda: responder.json("n42.example.com.", 1, tally),
    }
    samples: dict[str, list[float]] = {}
    for path, fn in paths.items():
        for health, view in views.items():
            responder.install(compiled, view)
            _run(fn, args.per_round)  # warm up
            samples[f"{path}_{health}"] = []
    for round_ in range(args.rounds):
        for path, fn in paths.items():
            order = list(views.items()) if round_ % 2 == 0 else list(views.items())[::-1]
            for health, view in order:
                responder.install(compiled, view)
                samples[f"{path}_{health}"].append(_run(fn, args.per_round))
    registry = CollectorRegistry()
    histogram = Histogram("h", "h", buckets=QUERY_BUCKETS, registry=registry)
    counter = Counter("c", "c", ["transport"], registry=registry).labels("udp")
    tallies: dict[tuple[int, int], int] = {}

    def dict_tally() -> None:
        key = (1, 0)
        tallies[key] = tallies.get(key, 0) + 1

    for name, fn in (
        ("histogram_observe", lambda: histogram.observe(0.0001)),
        ("counter_inc", counter.inc),
        ("dict_tally", dict_tally),
    ):
        samples[name] = [_run(fn, args.per_round) for _ in range(5)]
    figures: dict[str, float] = {}
    print(f"{'path':24} {'best µs':>8} {'median µs':>10}")
    for name, values in samples.items():
        best, median = min(values), statistics.median(values)
        figures[f"{name}_best_us"] = round(best, 3)
        figures[f"{name}_median_us"] = round(median, 3)
        print(f"{name:24} {best:8.3f} {median:10.3f}")
    for path in paths:
        for health in [h for h in views if h != "healthy"]:
            ratio = statistics.median(samples[f"{path}_{health}"]) / statistics.median(
                samples[f"{path}_healthy"]
            )
            figures[f"{path}_ratio_{health}_vs_healthy"] = round(ratio, 3)
            print(f"{path}: {health}/healthy (median) = {ratio:.3f}")
    print(json.dumps({"bench": "resolve", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
