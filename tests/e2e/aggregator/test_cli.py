"""The CLI's failure modes and the tick bench's shape (purity: tests/unit/test_purity.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.aggregator_tick import run as run_bench
from sim.testing import run_urn as urn

if TYPE_CHECKING:
    from pathlib import Path


def test_without_a_usable_config_it_refuses_to_start(tmp_path: Path) -> None:
    result = urn("aggregator", "--config", str(tmp_path / "missing.yaml"), "--id", "agg-1")
    assert result.returncode == 2
    assert "cannot start" in result.stderr
    assert "missing.yaml" in result.stderr


def test_bad_flags_are_refused() -> None:
    result = urn("aggregator", "--config", "x", "--id", "agg-1", "--window", "0")
    assert result.returncode == 2
    assert "--window 0" in result.stderr
    result = urn("aggregator", "--config", "x", "--id", "a" * 40)
    assert result.returncode == 2
    assert "--id" in result.stderr


def test_tick_bench_runs_both_scenarios() -> None:
    figures = run_bench(capacity=60, checkers=3, window=2, ticks=4, warmup=1)
    # a tick reads each checker's newest table only, whatever the window keeps
    assert figures["tables_per_tick"] == 3
    assert figures["steady_slots_flipped_per_tick"] == 0
    assert figures["flipping_slots_flipped_per_tick"] == 20
    assert figures["ratio_p50"] > 0
