"""One resolver query without sockets: µs per query, all healthy vs all unhealthy, interleaved.

Run: `.venv/bin/python -m bench.micro.resolve [--rounds R] [--per-round K]`.
Measures, for an 8-answer multivalue name in a 10,000-slot table: the UDP protocol path
(`datagram_received` with a no-op transport: parse, read every candidate, choose, build),
`Responder.json` (the DoH-JSON body), and for scale a Prometheus `Histogram.observe`
and `Counter.inc` against the dict increment the hot path uses instead. Healthy and
unhealthy (fail-open) rounds alternate, so machine noise hits both alike; the ratio
should be 1.00 within noise. Best-of-rounds is the floor, median what a noisy machine gives.
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

from resolver.answer import Responder, down_view
from resolver.dnsserver import _Udp
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
    args = parser.parse_args(argv)
    document = parse_document(
        document_dict(
            checks=tcp_checks(range(NAMES * 8)),
            records=[multivalue_record(f"n{i}.example.com.", 8, i * 8) for i in range(NAMES)],
            capacity=CAPACITY,
        )
    )
    responder = Responder(compile_records(document, random.Random(1)), random.Random(2))
    views = {
        "healthy": down_view(np.full(CAPACITY, aggregated_byte(Status.HEALTHY), dtype=np.uint8)),
        "unhealthy": down_view(
            np.full(CAPACITY, aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT), dtype=np.uint8)
        ),
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
            responder.down = view
            _run(fn, args.per_round)  # warm up
            samples[f"{path}_{health}"] = []
    for round_ in range(args.rounds):
        for path, fn in paths.items():
            order = list(views.items()) if round_ % 2 == 0 else list(views.items())[::-1]
            for health, view in order:
                responder.down = view
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
        ratio = statistics.median(samples[f"{path}_unhealthy"]) / statistics.median(
            samples[f"{path}_healthy"]
        )
        figures[f"{path}_ratio_unhealthy_vs_healthy"] = round(ratio, 3)
        print(f"{path}: unhealthy/healthy (median) = {ratio:.3f}")
    print(json.dumps({"bench": "resolve", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
