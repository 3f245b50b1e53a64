"""The README keeps its promises: the two commands first, every metric documented."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from urn.metrics import (
    AggregatorMetrics,
    CheckerMetrics,
    LeverCollector,
    ResolverMetrics,
    TableCollector,
)

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_the_first_commands_are_make_demo_and_make_test() -> None:
    commands = re.findall(r"^\s*(make \w+)", README, flags=re.MULTILINE)
    assert commands[:2] == ["make demo", "make test"]


def test_every_metric_is_documented() -> None:
    registry = CollectorRegistry()
    for metrics in (CheckerMetrics, AggregatorMetrics, ResolverMetrics):
        fresh = CollectorRegistry()
        metrics(fresh)
        for family in fresh.collect():
            registry_name = family.name + ("_total" if family.type == "counter" else "")
            assert f"`{registry_name}`" in README, registry_name
    registry.register(TableCollector(lambda: np.zeros(8, np.uint8), lambda: 0.0))
    registry.register(LeverCollector(lambda: None))
    for family in registry.collect():
        assert f"`{family.name}`" in README, family.name
