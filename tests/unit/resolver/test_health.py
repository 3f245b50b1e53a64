"""The freshness rule and the published health-source protocol (no I/O)."""

from __future__ import annotations

import ast
from pathlib import Path

from resolver.health import FRESH, NO_TABLE, STALE, HealthSource, HealthView, freshness
from resolver.service import ResolverService

ROOT = Path(__file__).resolve().parents[3]


def test_a_table_is_fresh_up_to_max_table_age_then_stale() -> None:
    assert freshness(None, 30.0) == NO_TABLE
    assert freshness(0.0, 30.0) == FRESH
    assert freshness(30.0, 30.0) == FRESH
    assert freshness(30.001, 30.0) == STALE


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
