"""Fixtures every tier shares: a fresh metrics registry, a FakeClock, a throwaway CA.

Tiers (each mirrors the package layout inside it):
  unit/       pure cores and static checks of the tree: no event loop where possible, no ports
  component/  one service or shell at a time, over loopback, with FakeClock and fakes
  e2e/        real processes: CLIs, fleets, the demo, benchmark smoke runs
  reliability/ faults: kill -9, partitions, hostile bytes, checkers that see wrongly
  deploy/     the compose config and the Kubernetes manifests
Test helpers live in `sim/testing/`, importable by benchmarks and the demo too.
"""

from __future__ import annotations

import pytest
import trustme
from prometheus_client import CollectorRegistry

from urn.clock import FakeClock


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
