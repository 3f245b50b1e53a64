"""End to end: `urn bench az-failure` on a small fleet, judged on correctness, not timings.

The real command, as a user runs it: a target farm, then for each design a fleet of
separate processes and a load generator; AZ b refuses connections, then recovers. Every
affected name must turn away within the detection bound and come back, and no healthy
answer may be dropped, in urn and in the edge-triggered contrast alike. The second run
works the operator levers (a shift, a partial failure, min_healthy on every record).
Both run after the rest of the suite, alone on the machine (the `serial` marker,
tests/conftest.py): their correctness counters assume no second fleet beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim.testing.bounds import slack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def bench(command: list[str], *, timeout: float) -> dict:
    """Run `command` (an `urn bench az-failure`) to its end; its closing JSON line."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    last: dict = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["bench"] == "az-failure"
    return last


def test_small_az_failure_run_is_correct_in_both_designs(tmp_path):
    out = tmp_path / "bench"
    command = [
        sys.executable,
        "-m",
        "urn",
        "bench",
        "az-failure",
        "--checks", "600",
        "--checkers-per-az", "1",
        "--probe-interval", "1",
        "--push-interval", "0.5",
        "--timeout", "1",
        "--aggregators", "2",
        "--qps", "300",
        "--fail-mode", "refuse",
        "--phase-seconds", "5",
        "--design", "both",
        "--farm-processes", "2",
        "--no-plots",
        "--quiet",
        "--out", str(out),
    ]  # fmt: skip
    bench(command, timeout=240)
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").exists()
    assert report["config"]["farm_processes"] == 2  # the AZ fails across both shards at once
    for design in ("urn", "edge"):
        correctness = report["designs"][design]["correctness"]
        assert correctness["affected_names"] > 0, design
        assert correctness["never_turned"] == [], design
        assert correctness["dead_answers_after_bound"] == 0, design
        assert correctness["healthy_answers_dropped"] == 0, (design, correctness)
        assert correctness["recovery_s"], design
        for phase in ("steady", "failure", "recovery"):
            assert report["designs"][design]["phases"][phase]["latency"]["answered"] > 0
    assert report["designs"]["urn"]["phases"]["steady"]["roles"]["farm"]["members"] == 2
    # urn pushes whole tables: the same bytes per push in every phase.
    urn = report["designs"]["urn"]["phases"]
    for role in ("checker", "aggregator"):
        sizes = {urn[p]["roles"][role]["bytes_per_push"] for p in ("steady", "failure")}
        assert len(sizes) == 1, (role, sizes)


def _small_run(out, *extra: str, phase: str = "4") -> dict:
    """One small urn-only run (three checkers, one aggregator, no viewers); its report."""
    command = [
        sys.executable, "-m", "urn", "bench", "az-failure",
        "--checks", "300",
        "--checkers-per-az", "1",
        "--probe-interval", "1",
        "--push-interval", "0.5",
        "--config-interval", "1",
        "--timeout", "1",
        "--aggregators", "1",
        "--qps", "200",
        "--phase-seconds", phase,
        "--farm-processes", "1",
        "--viewers", "0",
        "--no-plots",
        "--quiet",
        "--out", str(out),
        *extra,
    ]  # fmt: skip
    last = bench(command, timeout=120)
    assert list(last["figures"]) == ["config", "urn"]  # a lever implies --design urn
    return json.loads((out / "report.json").read_text())


def test_a_shift_of_a_healthy_az_and_a_partial_failure_of_another_in_one_run(tmp_path):
    """One run, with every record's min_healthy in force: AZ c is shifted (`--shift c`)
    while 60 % of AZ b's targets refuse (`--fail-fraction 0.6`, no autoshift). c's answers
    leave within a config plus a push interval and all come back once the shift is
    removed (as `urn shift end` does; expiry is a bench figure, bench/az_failure.md). b's
    dead answers leave within the detection bound and come back, its live ones never
    leave. No other answer is ever dropped (a failover whose primary died in b and whose
    secondary is in c ignores the shift: a shift never empties a name), and the whole
    tables stay the same size throughout."""
    out = tmp_path / "levers"
    report = _small_run(
        out,
        "--shift", "c",
        "--fail-az", "b",
        "--fail-fraction", "0.6",
        "--fail-mode", "refuse",
        "--min-healthy",
    )  # fmt: skip
    assert report["config"]["min_healthy"] == {"count": 1, "percent": 50}
    urn = report["designs"]["urn"]
    correctness = urn["correctness"]
    assert correctness["healthy_answers_dropped"] == 0, correctness["dropped_examples"]
    assert correctness["never_turned"] == []
    assert correctness["dead_answers_after_bound"] == 0

    shift = urn["levers"]["shift"]
    assert shift["leave_bound_s"] == 1.5
    assert shift["timed_names"] > 0
    assert shift["never_left"] == 0
    # the bench's own bound, times the suite's one slack factor (docs/testing.md)
    assert shift["leave_s"]["max"] <= shift["leave_bound_s"] * slack()
    assert shift["back_names"] > 0
    assert shift["not_back"] == 0, shift
    assert shift["ignoring_names"] == 1  # svc6: primary b-6 (dead), secondary in c

    partial = urn["levers"]["fail_fraction"]
    assert partial["autoshift"] is False
    assert partial["dead_targets"] + partial["live_targets"] == 100
    assert 40 <= partial["dead_targets"] <= 80
    assert partial["dead_names"] > 0
    assert partial["dead_leave_s"]["max"] <= partial["dead_bound_s"] * slack()
    assert partial["dead_never_left"] == 0
    assert partial["live_names"] > 0
    assert partial["live_leave_s"] == {}  # no live answer of b ever left
    assert partial["live_never_left"] > 0
    assert partial["live_answers_after_bound"] > 0
    assert partial["not_back"] == 0
    assert partial["autoshift_active_s"] is None

    for role in ("checker", "aggregator"):
        sizes = {urn["phases"][p]["roles"][role]["bytes_per_push"] for p in ("steady", "failure")}
        assert len(sizes) == 1, (role, sizes)
    text = (out / "report.md").read_text()
    assert "## zonal shift of AZ c (urn), ended by `urn shift end`-style removal" in text
    assert "## 60 % of AZ b fails (urn), autoshift off" in text


def test_with_autoshift_the_live_rest_of_a_mostly_dead_az_leaves_too(tmp_path):
    """60 % of AZ b refuses and `--autoshift` is on: once the aggregators' unhealthy share
    of b crosses 0.5 the whole AZ is shifted, so b's live answers leave too, within a
    push interval of the crossing; no answer of a or c is dropped, and every b answer
    comes back after the restore and clear_after (1 s here). Through real processes:
    the aggregators judge it, the envelope carries it, the resolver applies it."""
    out = tmp_path / "autoshift"
    report = _small_run(
        out,
        "--fail-az", "b",
        "--fail-fraction", "0.6",
        "--fail-mode", "refuse",
        "--autoshift",
        "--autoshift-clear-after", "1",
    )  # fmt: skip
    correctness = report["designs"]["urn"]["correctness"]
    assert correctness["healthy_answers_dropped"] == 0, correctness["dropped_examples"]
    partial = report["designs"]["urn"]["levers"]["fail_fraction"]
    assert partial["autoshift"] is True
    assert partial["dead_never_left"] == 0
    assert partial["live_names"] > 0
    assert partial["live_never_left"] == 0  # the live ones left as well
    assert partial["threshold_crossed_s"] is not None
    assert partial["autoshift_active_s"] is not None
    assert partial["live_leave_after_threshold_s"] is not None
    assert partial["live_leave_after_threshold_s"] <= partial["after_threshold_bound_s"] * slack()
    assert partial["not_back"] == 0
    assert partial["autoshift_cleared_s"] is not None
