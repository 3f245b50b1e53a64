"""Which table answers, how it stands, and the published health-source protocol (no I/O)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from resolver.health import (
    FRESH,
    HELD,
    NO_TABLE,
    STALE,
    HealthSource,
    HealthView,
    ReceivedTable,
    choose,
    judge,
)
from resolver.service import ResolverService

ROOT = Path(__file__).resolve().parents[3]


def table(
    sender: str, received_at: float, checkers: int = 6, azs: int = 3, generated_at: float = 0.0
) -> ReceivedTable:
    return ReceivedTable(
        sender=sender,
        az="a",
        sequence=1,
        generated_at=generated_at,
        received_at=received_at,
        checkers=checkers,
        azs=azs,
        autoshift="",
        digest=b"",
        slots=b"",
        array=np.zeros(0, np.uint8),
    )


MAX_AGE, PUSH = 30.0, 1.0


def test_a_table_answers_up_to_max_table_age_by_receipt_then_none_does() -> None:
    one = table("agg-1", received_at=100.0)
    assert choose([], 100.0, MAX_AGE, PUSH) is None
    assert choose([one], 130.0, MAX_AGE, PUSH) is one
    assert choose([one], 130.001, MAX_AGE, PUSH) is None


def test_a_sender_clock_running_ahead_wins_nothing() -> None:
    """Aged by receipt: a table stamped 15 s in the future is no newer for it."""
    ahead = table("agg-1", received_at=100.0, generated_at=1_000_015.0)
    in_sync = table("agg-2", received_at=100.2, generated_at=1_000_000.2)
    assert choose([ahead, in_sync], 100.3, MAX_AGE, PUSH) is in_sync
    # ...and once it falls silent, the next round's table of the other one answers.
    later = table("agg-2", received_at=101.2)
    assert choose([ahead, later], 101.3, MAX_AGE, PUSH) is later


def test_the_replica_built_from_more_checkers_wins_within_a_round() -> None:
    full = table("agg-1", received_at=100.00, checkers=6, azs=3)
    half_blind = table("agg-2", received_at=100.01, checkers=4, azs=2)
    assert choose([full, half_blind], 100.1, MAX_AGE, PUSH) is full
    same_checkers_fewer_azs = table("agg-2", received_at=100.01, checkers=6, azs=2)
    assert choose([full, same_checkers_fewer_azs], 100.1, MAX_AGE, PUSH) is full


def test_a_tie_goes_to_the_latest_received() -> None:
    first = table("agg-1", received_at=100.00)
    second = table("agg-2", received_at=100.02)
    assert choose([first, second], 100.1, MAX_AGE, PUSH) is second


def test_a_tie_keeps_the_sender_that_answered_before() -> None:
    """Replicas whose tables arrive in either order each round, and differ (one restarted
    and lost an autoshift the other still holds), never take turns answering."""
    for order in ((100.00, 100.02), (100.02, 100.00)):
        holder = table("agg-1", received_at=order[0])
        restarted = table("agg-2", received_at=order[1])
        assert choose([holder, restarted], 100.1, MAX_AGE, PUSH, incumbent="agg-1") is holder
    more = table("agg-2", received_at=100.0, checkers=7)
    assert choose([holder, more], 100.1, MAX_AGE, PUSH, incumbent="agg-1") is more


def test_a_silent_replica_stops_competing_at_the_next_round() -> None:
    """More checkers do not keep a dead replica's last table answering."""
    dead = table("agg-1", received_at=100.0, checkers=9)
    alive = table("agg-2", received_at=101.0, checkers=6)
    assert choose([dead, alive], 101.1, MAX_AGE, PUSH) is alive


def test_without_a_fresh_table_the_state_follows_on_stale() -> None:
    assert judge(True, True, "hold") == FRESH
    assert judge(False, False, "hold") == NO_TABLE
    assert judge(False, True, "hold") == HELD
    assert judge(False, True, "open") == STALE
    assert judge(False, False, "open") == NO_TABLE


def test_the_resolver_service_is_itself_a_health_source() -> None:
    source: HealthSource = ResolverService.__new__(ResolverService)
    assert callable(source.current)
    assert HealthView(FRESH, b"\0").detail == {}


def test_the_edge_design_overrides_nothing_of_urns_services() -> None:
    """bench/edge/ plugs into published protocols; it subclasses no urn service."""
    services = {"ResolverService", "CheckerService", "Aggregator", "AggregatorService"}
    offending = []
    for path in sorted((ROOT / "bench" / "edge").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases}
                if bases & services:
                    offending.append(f"{path.name}: {node.name}({', '.join(sorted(bases))})")
    assert offending == []
