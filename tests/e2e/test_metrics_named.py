"""Every metric the Grafana dashboard and the alert rules read is one a live process
exports: a fleet of real processes is scraped, role by role."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest

from sim.chaos import fast_plan, live_fleet
from sim.testing import wait_until
from sim.testing.assets import metrics_named

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


async def test_the_dashboard_and_the_rules_read_only_metrics_that_exist(tmp_path: Path) -> None:
    plan = fast_plan(azs=("a", "b", "c"), aggregators=1, resolvers=1)
    async with live_fleet(tmp_path, plan) as live:
        await live.wait_answers(dead=())
        members = ("checker-a1", "aggregator-1", "resolver-1")
        exported: set[str] = set()

        named = metrics_named()

        async def scraped() -> bool:
            exported.clear()
            for member in members:
                exported.update(key.partition("{")[0] for key in await live.metrics(member))
            return named <= exported

        with contextlib.suppress(AssertionError):  # the assertion below names what is missing
            await wait_until(scraped, 20, message="every metric named to be exported")
    missing = sorted(named - exported)
    assert missing == [], missing
