"""Metrics helpers, JSON logs and run_main: the plumbing every role shares."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry

from sim.testing import document_dict
from urn.config import parse_document
from urn.errors import StartupError
from urn.logs import get_logger
from urn.metrics import (
    AggregatorMetrics,
    CheckerMetrics,
    ResolverMetrics,
    SlotAzs,
    TableCollector,
)
from urn.runtime import run_main
from urn.table import FAILURE_REASONS, Reason, Status, aggregated_byte, empty_table

if TYPE_CHECKING:
    import asyncio
    import io

    import pytest


def test_each_component_registers_in_its_own_registry() -> None:
    for factory in (CheckerMetrics, AggregatorMetrics, ResolverMetrics):
        registry = CollectorRegistry()
        metrics = factory(registry)
        assert (
            registry.get_sample_value(
                "urn_build_info", {"version": "0.1.0", "role": metrics.component}
            )
            == 1
        )
        assert registry.get_sample_value("urn_config_loads_total", {"result": "error"}) == 0


def test_checker_probe_reasons_are_preinitialised() -> None:
    registry = CollectorRegistry()
    CheckerMetrics(registry)
    for reason in (Reason.HEALTHY, *FAILURE_REASONS):
        assert registry.get_sample_value("urn_probes_total", {"result": reason.label}) == 0


def test_peers_preinitialise_push_labels() -> None:
    registry = CollectorRegistry()
    metrics = AggregatorMetrics(registry)
    metrics.peers(["http://r1"])
    for result in ("ok", "timeout", "error", "rejected"):
        assert (
            registry.get_sample_value("urn_pushes_total", {"peer": "http://r1", "result": result})
            == 0
        )


def test_table_collector_counts_statuses_and_reasons_at_scrape_time() -> None:
    table = empty_table(10)
    table[:3] = aggregated_byte(Status.HEALTHY)
    table[3:5] = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
    table[5] = aggregated_byte(Status.UNHEALTHY, Reason.TLS)
    configured = np.zeros(10, dtype=np.uint8)
    configured[:8] = 1
    current: list[np.ndarray | None] = [None]
    registry = CollectorRegistry()
    registry.register(TableCollector(lambda: current[0], lambda: 1.5, lambda: configured))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("urn_slots", status="healthy") is None  # no table yet: no samples
    assert value("urn_table_age_seconds") == 1.5
    current[0] = table
    assert value("urn_slots", status="healthy") == 3
    assert value("urn_slots", status="unhealthy") == 3
    assert value("urn_slots", status="unknown") == 2  # slots 6 and 7; 8 and 9 unconfigured
    assert value("urn_unhealthy_slots", reason="timeout") == 2
    assert value("urn_unhealthy_slots", reason="tls") == 1
    assert value("urn_unhealthy_slots", reason="dns") == 0


def test_table_collector_counts_each_azs_slots_by_status() -> None:
    checks = [
        {"slot": 0, "name": "a0", "type": "tcp", "host": "10.0.0.1", "port": 1, "az": "a"},
        {"slot": 1, "name": "a1", "type": "tcp", "host": "10.0.0.2", "port": 1, "az": "a"},
        {"slot": 2, "name": "b0", "type": "tcp", "host": "10.0.0.3", "port": 1, "az": "b"},
        {"slot": 3, "name": "x", "type": "tcp", "host": "10.0.0.4", "port": 1},  # no AZ
    ]
    document = parse_document(document_dict(checks, capacity=8))
    azs = SlotAzs.of(document)
    assert azs.names == ("a", "b")
    table = empty_table(8)
    table[0] = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
    table[1] = table[2] = table[3] = aggregated_byte(Status.HEALTHY)
    registry = CollectorRegistry()
    registry.register(TableCollector(lambda: table, lambda: 0.0, lambda: None, lambda: azs))

    def cell(az: str, status: str) -> float | None:
        return registry.get_sample_value("urn_az_slots", {"az": az, "status": status})

    assert (cell("a", "unhealthy"), cell("a", "healthy"), cell("a", "unknown")) == (1, 1, 0)
    assert (cell("b", "unhealthy"), cell("b", "healthy")) == (0, 1)
    assert cell("", "healthy") is None  # slots outside every AZ are not an AZ


def test_log_events_are_one_json_object_per_line(log_stream: io.StringIO) -> None:
    log = get_logger("test")
    log.info("table_rejected", reason="bad_mac", sender="c1", count=3)
    log.debug("not_shown")
    log.error("odd\nevent", detail="multi\nline")
    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "table_rejected"
    assert first["level"] == "info"
    assert first["component"] == "urn.test"
    assert (first["reason"], first["sender"], first["count"]) == ("bad_mac", "c1", 3)
    assert isinstance(first["ts"], float)
    assert second["detail"] == "multi\nline"


def test_run_main_returns_main_code_and_maps_startup_error_to_2(
    capsys: pytest.CaptureFixture[str], log_stream: io.StringIO
) -> None:
    async def ok(stop: asyncio.Event) -> int:
        return 0 if not stop.is_set() else 1

    async def refuses(_: asyncio.Event) -> int:
        raise StartupError("no usable config at x.yaml: it is missing")

    assert run_main(ok, "asyncio") == 0
    assert run_main(ok, "auto") == 0
    assert run_main(refuses, "asyncio") == 2
    assert (
        capsys.readouterr().err == "urn: cannot start: no usable config at x.yaml: it is missing\n"
    )
    assert json.loads(log_stream.getvalue().splitlines()[-1])["event"] == "startup_failed"
