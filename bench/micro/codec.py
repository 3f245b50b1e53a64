"""Encode + decode + verify one 10,000-slot table: µs per table, against a plain msgpack+HMAC.

Run: `.venv/bin/python -m bench.micro.codec [--capacity N] [--rounds R] [--per-round K]`.
Every figure is per table, measured in this one run: best-of-rounds (the floor, what the
code costs when nothing interferes) and median (what a noisy machine gives). The
baseline is what the issue quotes: `msgpack.packb` of the same fields with an
HMAC-SHA256 over it, and `msgpack.unpackb` plus the MAC check on the way back.
Ends with one JSON line: {"bench": "codec", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import hmac
import json
import statistics
import sys
import time
from typing import TYPE_CHECKING

import msgpack

from urn.table import checker_table
from urn.wire import Envelope, SequenceGuard, TableKind, decode, encode, encoded_size

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main", "measure"]

KEY = b"urn-bench-push-key-0123456789abcdef"
GOAL_US = 30.0


def measure(fn: Callable[[], object], rounds: int, per_round: int) -> tuple[float, float]:
    """(best, median) microseconds per call over `rounds` rounds of `per_round` calls."""
    for _ in range(per_round):  # warm caches and allocator
        fn()
    samples: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for _ in range(per_round):
            fn()
        samples.append((time.perf_counter_ns() - started) / per_round / 1000.0)
    return min(samples), statistics.median(samples)


def _baseline(capacity: int) -> tuple[Callable[[], bytes], Callable[[bytes], list[object]]]:
    slots = checker_table(bytes(i % 10 for i in range(capacity)))
    fields = [2, 1, b"chk-a1", b"a", 123456789, 1_700_000_000.25, b"\x11" * 32, capacity, slots]

    def encode_plain() -> bytes:
        body: bytes = msgpack.packb(fields)
        return body + hmac.digest(KEY, body, "sha256")

    def decode_plain(data: bytes) -> list[object]:
        body, mac = data[:-32], data[-32:]
        if not hmac.compare_digest(hmac.digest(KEY, body, "sha256"), mac):
            raise ValueError("bad mac")
        unpacked: list[object] = msgpack.unpackb(body)
        return unpacked

    return encode_plain, decode_plain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro.codec", description=__doc__)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--per-round", type=int, default=200)
    args = parser.parse_args(argv)
    capacity, rounds, per_round = args.capacity, args.rounds, args.per_round

    envelope = Envelope(
        kind=TableKind.CHECKER,
        sender="chk-a1",
        az="a",
        sequence=123456789,
        generated_at=1_700_000_000.25,
        config_digest=b"\x11" * 32,
        capacity=capacity,
        slots=checker_table(bytes(i % 10 for i in range(capacity))),
    )
    keys = (KEY,)
    data = encode(envelope, KEY)
    assert len(data) == encoded_size(capacity, TableKind.CHECKER)
    assert decode(data, keys, capacity, TableKind.CHECKER) == envelope
    guard = SequenceGuard(max_skew=30.0)
    now = envelope.generated_at

    def round_trip() -> None:
        received = decode(encode(envelope, KEY), keys, capacity, TableKind.CHECKER)
        guard.check(received, now)

    plain_encode, plain_decode = _baseline(capacity)
    plain_data = plain_encode()

    def plain_round_trip() -> None:
        plain_decode(plain_encode())

    signed = data[: -2 - 32]
    cases: dict[str, Callable[[], object]] = {
        "urn_encode": lambda: encode(envelope, KEY),
        "urn_decode_verify": lambda: decode(data, keys, capacity, TableKind.CHECKER),
        "urn_round_trip": round_trip,
        "plain_encode": plain_encode,
        "plain_decode_verify": lambda: plain_decode(plain_data),
        "plain_round_trip": plain_round_trip,
        "hmac_sha256_only": lambda: hmac.digest(KEY, signed, "sha256"),
    }
    figures: dict[str, float] = {}
    print(
        f"codec: capacity {capacity}, urn envelope {len(data)} B, plain {len(plain_data)} B; "
        f"{rounds} rounds x {per_round} calls; µs per table"
    )
    print(f"{'case':<22}{'best':>9}{'median':>9}")
    for name, fn in cases.items():
        best, median = measure(fn, rounds, per_round)
        figures[f"{name}_best_us"] = round(best, 2)
        figures[f"{name}_median_us"] = round(median, 2)
        print(f"{name:<22}{best:>9.2f}{median:>9.2f}")
    ratio_best = figures["urn_round_trip_best_us"] / figures["plain_round_trip_best_us"]
    ratio_median = figures["urn_round_trip_median_us"] / figures["plain_round_trip_median_us"]
    mac_share = 2 * figures["hmac_sha256_only_best_us"] / figures["urn_round_trip_best_us"]
    figures["urn_vs_plain_round_trip_best_ratio"] = round(ratio_best, 3)
    figures["urn_vs_plain_round_trip_median_ratio"] = round(ratio_median, 3)
    figures["mac_share_of_urn_round_trip"] = round(mac_share, 3)
    figures["envelope_bytes"] = len(data)
    figures["capacity"] = capacity

    def verdict(value: float) -> str:
        return "meets" if value < GOAL_US else "misses"

    print(
        f"urn round trip / plain msgpack+HMAC: {ratio_best:.2f}x (best), "
        f"{ratio_median:.2f}x (median); two MACs are {mac_share:.0%} of urn's round trip; "
        f"against the {GOAL_US:g} µs goal, best {verdict(figures['urn_round_trip_best_us'])}, "
        f"median {verdict(figures['urn_round_trip_median_us'])} (medians need a quiet machine)"
    )
    print(json.dumps({"bench": "codec", "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
