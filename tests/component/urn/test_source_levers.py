"""The config loader judges levers' expiries by its own injected clock: a shift more than
72 hours after the loader's now is refused naming the field, and the last good stays."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry

from sim.testing import TEST_PUSH_KEY, document_dict
from urn.clock import FakeClock
from urn.config.levers import LEVER_HORIZON, format_time
from urn.errors import StartupError
from urn.metrics import CommonMetrics
from urn.source import ConfigLoader, Loaded

if TYPE_CHECKING:
    from pathlib import Path

ENV = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}


def shifted(until: float, reason: str = "deploy") -> str:
    checks = [{"slot": 0, "type": "tcp", "host": "10.0.0.1", "port": 80, "az": "b"}]
    shift: dict[str, Any] = {"az": "b", "until": format_time(until), "reason": reason}
    return json.dumps(document_dict(checks, shifts=[shift]))


def keep(loaded: Loaded) -> Loaded:
    return loaded


async def test_the_horizon_is_judged_by_the_loaders_clock_not_the_hosts(tmp_path: Path) -> None:
    clock = FakeClock()  # its wall clock reads November 2023
    path = tmp_path / "urn.json"
    # An hour after the host's now: fine by the host's clock, years ahead by the loader's.
    path.write_text(shifted(time.time() + 3600))
    loader = ConfigLoader(str(path), clock, CommonMetrics(CollectorRegistry()), ENV)
    with pytest.raises(StartupError, match=r"shifts\[0\]\.until: .* is more than 72 hours"):
        await loader.load_first(keep)


async def test_a_refused_lever_keeps_the_last_good_document(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "urn.json"
    path.write_text(shifted(clock.time() + LEVER_HORIZON))
    registry = CollectorRegistry()
    loader = ConfigLoader(str(path), clock, CommonMetrics(registry), ENV)
    first = await loader.load_first(keep)
    assert first.document.shifts[0].until == clock.time() + LEVER_HORIZON
    await clock.advance(3600.0)  # a pass an hour later over the same bytes keeps it
    assert await loader.poll_once(lambda loaded: None)
    path.write_text(shifted(clock.time() + LEVER_HORIZON + 1, "a longer deploy"))
    assert not await loader.poll_once(lambda loaded: None)
    assert loader.last_error is not None
    assert loader.last_error.startswith("shifts[0].until: ")
    assert loader.current.document.shifts[0].reason == "deploy"
    assert registry.get_sample_value("urn_config_loads_total", {"result": "error"}) == 1
