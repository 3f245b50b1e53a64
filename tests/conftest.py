"""Fixtures every tier shares: a fresh metrics registry, a FakeClock, a throwaway CA,
urn's log lines captured.

Tiers (each mirrors the package layout inside it):
  unit/       pure cores and static checks of the tree: no event loop where possible, no ports
  component/  one service or shell at a time, over loopback, with FakeClock and fakes
  e2e/        real processes: CLIs, fleets, the demo, benchmark smoke runs
  reliability/ faults: kill -9, partitions, hostile bytes, checkers that see wrongly
  deploy/     the compose config and the Kubernetes manifests
Test helpers live in `sim/testing/`, importable by benchmarks and the demo too.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import pytest
import trustme
from prometheus_client import CollectorRegistry

from urn.clock import FakeClock
from urn.logs import setup_logging

if TYPE_CHECKING:
    from collections.abc import Iterator


# Benchmark runs measure CPU and latency side by side with a floor, and the contrast
# design's correctness figures assume the machine is not running a second fleet.
SERIAL_PATHS = ("tests/e2e/bench/",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in item.nodeid for part in SERIAL_PATHS):
            item.add_marker(pytest.mark.serial)


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of this test's own, so metric assertions never see another's samples."""
    return CollectorRegistry()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """One certificate authority for the whole run; tests issue what they need from it."""
    return trustme.CA()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """urn's JSON log lines at info into a buffer (read them with `log_events`); the
    "urn" logger is put back as it was afterwards."""
    out = io.StringIO()
    logger = logging.getLogger("urn")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    setup_logging("info", out)
    yield out
    logger.handlers[:], logger.level, logger.propagate = saved
