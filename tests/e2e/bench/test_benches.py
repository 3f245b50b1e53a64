"""The bench commands as a user runs them, shrunk to seconds, each ending with its JSON
line. The checker benches start a real checker and farm and classify every probe of
every scenario; the rest are smoke runs. Judged on what they found, never on timings
(the az-failure and aggregator-tick benches have tests of their own)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TINY = ["--checks", "200", "--warmup", "0.3", "--duration", "1.0"]


def _bench(module: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["bench"] == module.rsplit(".", 1)[-1]
    figures: dict[str, Any] = line["figures"]
    return figures


def test_checker_throughput_classifies_each_kind_of_dead_target() -> None:
    figures = _bench(
        "bench.checker_throughput",
        *TINY,
        "--duration", "0.5",  # after TINY's: classifying needs probes, not seconds
        "--targets", "20",
        "--ladder", "1.0",
        "--retries", "0",  # a busy CI machine starves steps: nothing here judges them
        "--floors", "64",
        "--https-ladder", "50",
        "--https-compare-rate", "0",
        "--repeats", "1",
        "--compare-rate", "200",
        "--ratio-rate", "200",
        # generous margins, so a starved farm on a busy CI machine cannot turn slow into
        # a timeout: slow answers after 0.05 s, the timeout is 0.5 s
        "--ratio-timeout", "0.5",
        "--slow-delay", "0.05",
    )  # fmt: skip
    assert [step["offered_per_s"] for step in figures["ladder"]] == [200]
    assert figures["ladder"][0]["done_per_s"] > 0
    assert figures["floor_probes_per_s"] > 0
    assert figures["ladder"][0]["floor_beside_per_s"] > 0  # the floor run next to the step
    assert figures["ladder"][0]["raw_floor_beside_per_s"] > 0  # and the raw floor with it
    assert 0 <= figures["ladder"][0]["steal_share"] < 1
    assert figures["floor_beside_sustained_per_s"] in (
        0,
        figures["ladder"][0]["floor_beside_per_s"],
    )
    # every probe of a dead farm ends with its own reason, and a slow answer inside the
    # timeout is healthy
    assert set(figures["refused_reasons"]) == {"refused"}
    assert set(figures["blackholed_reasons"]) == {"timeout"}
    assert set(figures["slow_reasons"]) == {"healthy"}
    # the one round of dead runs has a healthy run on either side of it
    assert figures["ratio_healthy_runs"] == 2
    assert len(figures["cpu_per_probe_ratios_slow"]) == 1
    # and the paced floor ran beside each run, against the same targets: every healthy
    # or slow answer came within its deadline, no refused or blackholed one did
    assert figures["paced_floor_healthy_cpu_us_per_probe"] > 0
    assert len(figures["paced_floor_cpu_per_probe_ratios_slow"]) == 1
    assert figures["paced_floor_failed_healthy"] == figures["paced_floor_failed_slow"] == 0
    assert figures["paced_floor_failed_refused"] > 0
    assert figures["paced_floor_failed_blackholed"] > 0
    # HTTPS runs on the same probe path
    assert figures["https_ladder"][0]["done_per_s"] > 0


def test_checker_overhead_runs_both_designs_without_false_timeouts() -> None:
    figures = _bench(
        "bench.checker_overhead", *TINY, "--quick", "--rate", "200", "--rounds", "1",
        "--timeout", "2",
    )  # fmt: skip
    for design in ("urn", "edge"):
        assert figures[f"{design}_done_per_s"] > 0
        assert figures[f"{design}_timeouts"] == 0  # healthy targets: no probe timed out
        assert 0 <= figures[f"{design}_steal_share"] < 1  # the host's share, read from /proc


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["bench.micro.codec", "--rounds", "3", "--per-round", "5"], id="codec"),
        pytest.param(["bench.micro.resolve", "--rounds", "3", "--per-round", "50"], id="resolve"),
        pytest.param(["bench.micro.doh", "--rounds", "1", "--requests", "200"], id="doh"),
        pytest.param(
            ["bench.micro.probe_path", "--rounds", "1", "--seconds", "0.05"], id="probe-path"
        ),
        pytest.param(
            ["bench.resolver_qps", "--seconds", "0.3", "--rounds", "1", "--names", "20"],
            id="resolver-qps",
        ),
        pytest.param(["bench.soak", "--minutes", "0.1", "--per-az", "2"], id="soak"),
    ],
)
def test_every_other_bench_runs_and_ends_with_its_json_line(argv: list[str]) -> None:
    assert _bench(*argv)
