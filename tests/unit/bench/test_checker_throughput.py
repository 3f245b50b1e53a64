"""The checker-throughput ladder's and dead/healthy ratios' arithmetic, with canned runs."""

from __future__ import annotations

import argparse
import contextlib
import types
from typing import Any

import pytest

from bench import checker_throughput


def step(done: float, offered: float, p99_ms: float = 5.0) -> dict[str, Any]:
    return {
        "completed_per_s": done,
        "offered_per_s": offered,
        "lateness_p99_ms": p99_ms,
        "skipped": 0,
        "interval": 10_000 / offered,
        "runq_wait_share": 0.0,
        "steal_share": 0.0,
    }


def climb_drifting(
    monkeypatch: pytest.MonkeyPatch,
    steps: list[dict[str, Any]],
    *,
    floors: list[float],
    retries: int,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """`climb` over a three-step ladder whose runs give `steps` in turn, with the floor
    doing `floors` in turn: the first one before the ladder, then one after each run."""
    results = iter(steps)
    monkeypatch.setattr(checker_throughput, "scenario", lambda *_a, **_k: next(results))
    after = iter([{"completed_per_s": float(v)} for v in floors[1:]])
    return checker_throughput.climb(
        argparse.Namespace(retries=retries),
        [(10_000, 10_000 / 15_000), (10_000, 10_000 / 17_000), (10_000, 0.5)],
        floor_after=lambda: next(after),
        floor_before={"completed_per_s": float(floors[0])},
        mode="healthy",
    )


def test_each_step_is_compared_with_the_floors_either_side_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A machine whose speed drifts: the floor runs at 20,000, 16,000 and 12,000/s around
    two steps. Each step's share is of the mean of its two neighbours, never of the first
    floor alone, and the climb stops at the step that is not sustained."""
    ran, best = climb_drifting(
        monkeypatch,
        [step(15_000, 15_000), step(14_000, 17_000, p99_ms=80.0)],
        floors=[20_000, 16_000, 12_000],
        retries=0,
    )
    assert len(ran) == 2  # the third step never ran
    assert best is ran[0]
    assert ran[0]["floor_beside_per_s"] == 18_000
    assert ran[0]["share_of_floor_beside"] == pytest.approx(15_000 / 18_000)
    assert ran[1]["floor_beside_per_s"] == 14_000
    assert ran[1]["share_of_floor_beside"] == pytest.approx(1.0)


def test_each_step_is_also_compared_with_the_raw_floors_either_side_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The raw floor runs with the uvloop floor after each step; a step's share of it is
    of the mean of the raw floors either side, as for the uvloop floor."""
    results = iter([step(15_000, 15_000)])
    monkeypatch.setattr(checker_throughput, "scenario", lambda *_a, **_k: next(results))
    ran, _ = checker_throughput.climb(
        argparse.Namespace(retries=0),
        [(10_000, 10_000 / 15_000)],
        floor_after=lambda: {"completed_per_s": 16_000.0, "raw_per_s": 20_000.0},
        floor_before={"completed_per_s": 20_000.0, "raw_per_s": 30_000.0},
        mode="healthy",
    )
    assert ran[0]["floor_beside_per_s"] == 18_000
    assert ran[0]["raw_floor_beside_per_s"] == 25_000
    assert ran[0]["share_of_raw_floor_beside"] == pytest.approx(15_000 / 25_000)


def test_without_a_floor_a_step_has_no_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checker_throughput, "ladder_step", lambda *_a, **_k: step(500, 500))
    ran, best = checker_throughput.climb(argparse.Namespace(), [(500, 1.0)], mode="https")
    assert best is ran[0]
    assert "share_of_floor_beside" not in ran[0]


def test_a_step_failed_while_the_machine_slowed_is_run_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The floor after a failed step did 60 % of the one before it: the machine slowed,
    so the step runs again (with a floor after it again), and its second result counts.
    A step that fails with the floor steady is not run again."""
    ran, best = climb_drifting(
        monkeypatch,
        [step(9_000, 15_000, p99_ms=300.0), step(15_000, 15_000), step(1, 17_000)],
        floors=[20_000, 12_000, 19_000, 19_500],
        retries=2,
    )
    assert [r["completed_per_s"] for r in ran] == [15_000, 1]  # the retry, then the stop
    assert best is ran[0]
    assert ran[0]["floor_beside_per_s"] == (12_000 + 19_000) / 2
    assert ran[1]["floor_beside_per_s"] == (19_000 + 19_500) / 2


@pytest.mark.parametrize(
    ("starved", "stolen", "runs"),
    [(0.0, 0.08, 2), (0.06, 0.0, 2), (0.02, 0.02, 1)],
    ids=["host-took-the-cpus", "neighbours-took-the-core", "lost-too-little"],
)
def test_a_failed_step_runs_again_when_the_window_was_lost_to_others(
    monkeypatch: pytest.MonkeyPatch, starved: float, stolen: float, runs: int
) -> None:
    """Steal (the host keeping the vCPUs) counts like waiting for the core: over 5 % of the
    window lost either way, a failed step runs again; under it, its failure stands."""
    failed = {**step(9_000, 15_000, p99_ms=300.0), "runq_wait_share": starved}
    results = iter([{**failed, "steal_share": stolen}, {**step(15_000, 15_000), "steal_share": 0}])
    ran: list[int] = []

    def scenario(*_a: Any, **_k: Any) -> dict[str, Any]:
        ran.append(1)
        return next(results)

    monkeypatch.setattr(checker_throughput, "scenario", scenario)
    result = checker_throughput.ladder_step(argparse.Namespace(retries=2), mode="healthy")
    assert len(ran) == runs
    assert checker_throughput.sustained(result) is (runs == 2)


def test_a_step_runs_at_most_retries_more_times_whatever_the_reasons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Starved and with the floor falling every time, a failing step still runs only
    1 + retries times, each followed by one floor run."""
    failing = {**step(9_000, 15_000, p99_ms=300.0), "runq_wait_share": 0.2}
    ran: list[int] = []
    floors = iter([800.0, 600.0, 400.0, 300.0, 200.0])

    def scenario(*_a: Any, **_k: Any) -> dict[str, Any]:
        ran.append(1)
        return dict(failing)

    monkeypatch.setattr(checker_throughput, "scenario", scenario)
    steps, best = checker_throughput.climb(
        argparse.Namespace(retries=2),
        [(10_000, 10_000 / 15_000)],
        floor_after=lambda: {"completed_per_s": next(floors)},
        floor_before={"completed_per_s": 1_000.0},
        mode="healthy",
    )
    assert len(ran) == 3
    assert next(floors) == 300.0  # three floors ran, one after each try
    assert best is None
    assert steps[0]["floor_beside_per_s"] == (600 + 400) / 2


def test_each_dead_mode_runs_once_in_each_place_over_three_rounds() -> None:
    orders = checker_throughput.round_orders(["refused", "blackhole", "slow"], 4)
    assert orders == [
        ["refused", "blackhole", "slow"],
        ["blackhole", "slow", "refused"],
        ["slow", "refused", "blackhole"],
        ["refused", "blackhole", "slow"],
    ]
    for place in range(3):
        assert {order[place] for order in orders[:3]} == {"refused", "blackhole", "slow"}


TRUE_RATIOS = {"refused": 0.5, "blackholed": 0.9, "slow": 1.1}
PACED_RATIOS = {"slow": 1.02}  # the paced floor's own where it differs from the checker's


def drifting_healthy(at: float) -> float:
    """A machine slowing steadily: a healthy run costs 40 at t=0 and 20 more every 40 s."""
    return 40.0 + 0.5 * at


def test_a_dead_run_is_compared_with_the_healthy_figure_at_the_moment_it_ran() -> None:
    # Compared with the one healthy run before its round, the last mode of a round would
    # read 1.1 * 55 / 40 = 1.51 (the drift, not the mode). Refused runs are short (no
    # farm to start), so places in a round are not evenly spaced in time.
    def dead(name: str, at: float) -> tuple[str, tuple[float, float]]:
        return name, (at, TRUE_RATIOS[name] * drifting_healthy(at))

    healthy = [(at, drifting_healthy(at)) for at in (0.0, 40.0, 80.0)]
    rounds = [
        [dead("refused", 6.0), dead("blackholed", 18.0), dead("slow", 30.0)],
        [dead("blackholed", 50.0), dead("slow", 62.0), dead("refused", 72.0)],
    ]
    ratios = checker_throughput.ratios_beside_healthy(healthy, rounds)
    assert ratios == {name: pytest.approx([value] * 2) for name, value in TRUE_RATIOS.items()}


def test_the_healthy_runs_must_bracket_every_round_and_have_cost_something() -> None:
    one = [("slow", (1.0, 1.0))]
    with pytest.raises(ValueError, match="2 rounds need 3 healthy runs"):
        checker_throughput.ratios_beside_healthy([(0.0, 1.0), (2.0, 1.0)], [one, one])
    with pytest.raises(ValueError, match="must be positive"):
        checker_throughput.ratios_beside_healthy([(0.0, 0.0), (2.0, 1.0)], [one])


def test_the_ratio_runs_bracket_each_round_with_healthy_runs_and_name_each_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Canned scenarios on a steadily slowing machine: each run takes 10 s of a clock
    # the bench reads around it, and costs its mode's true ratio times a healthy run's.
    clock = [0.0]
    ran: list[str] = []

    def scenario(_args: Any, *, mode: str, **_how: Any) -> dict[str, Any]:
        ran.append(mode)
        clock[0] += 10.0
        util = drifting_healthy(clock[0] - 5.0) / 100
        if mode != "healthy":
            util *= TRUE_RATIOS[checker_throughput.RATIO_FIGURE_NAMES[mode]]
        return {
            "cpu_util": util,
            "cpu_s": util * 8.0,
            "wall_s": 8.0,
            "started_per_s": 5_000.0,
            "runq_wait_share": 0.0,
            "steal_share": 0.01 * sum(not m.startswith("paced") for m in ran),
            "skipped": 0,
            "reasons": {mode: 1},
        }

    def paced_floor(_args: Any, *, mode: str, **_how: Any) -> dict[str, Any]:
        # The machine's own ratio: slow costs any prober 1.02, the others what they cost
        # the checker; the floor runs at 0.8 of the checker's CPU.
        ran.append(f"paced {mode}")
        clock[0] += 10.0
        util = drifting_healthy(clock[0] - 5.0) / 100 * 0.8
        if mode != "healthy":
            name = checker_throughput.RATIO_FIGURE_NAMES[mode]
            util *= PACED_RATIOS.get(name, TRUE_RATIOS[name])
        return {
            "cpu_util": util,
            "cpu_s": util * 8.0,
            "wall_s": 8.0,
            "started_per_s": 5_000.0,
            "failed": 0 if mode in ("healthy", "slow") else 40_000,
            "steal_share": 0.2 if mode == "slow" else 0.0,  # the host, while the floor ran
            "runq_wait_share": 0.0,
        }

    monkeypatch.setattr(checker_throughput, "scenario", scenario)
    monkeypatch.setattr(checker_throughput, "paced_floor", paced_floor)
    bench_clock = types.SimpleNamespace(monotonic=lambda: clock[0])
    monkeypatch.setattr(checker_throughput, "time", bench_clock)
    figures: dict[str, Any] = {}
    args = argparse.Namespace(
        ratio_rate=5_000.0, ratio_timeout=0.25, slow_delay=0.1, checks=10_000, repeats=3
    )
    checker_throughput.dead_vs_healthy(args, figures)
    checker_runs = [mode for mode in ran if not mode.startswith("paced")]
    assert checker_runs == [
        "healthy", "refused", "blackhole", "slow",
        "healthy", "blackhole", "slow", "refused",
        "healthy", "slow", "refused", "blackhole",
        "healthy",
    ]  # fmt: skip
    assert ran[1::2] == [f"paced {mode}" for mode in checker_runs]  # each right after its run
    assert figures["ratio_healthy_runs"] == 4
    for name, value in TRUE_RATIOS.items():
        assert figures[f"cpu_ratio_{name}_over_healthy"] == pytest.approx(value, abs=1e-3)
        assert figures[f"cpu_per_probe_ratios_{name}"] == pytest.approx([value] * 3, abs=1e-3)
        paced = PACED_RATIOS.get(name, value)
        assert figures[f"paced_floor_cpu_per_probe_ratio_{name}_over_healthy"] == pytest.approx(
            paced, abs=1e-3
        )
        # Back to back, not interpolated: off by the drift over one run (10 s here, of a
        # machine slowing far faster than a real one).
        assert figures[f"checker_over_paced_floor_{name}"] == pytest.approx(
            value / paced / 0.8, rel=0.1
        )
    assert figures["checker_over_paced_floor_healthy"] == pytest.approx(1 / 0.8, rel=0.1)
    assert figures["paced_floor_failed_healthy"] == 0
    assert figures["paced_floor_failed_refused"] == 3 * 40_000
    assert figures["blackholed_reasons"] == {"blackhole": 1}
    assert figures["ratio_steal_share_max"] == pytest.approx(0.2)  # the paced floor's counts


def test_between_halves_the_rate_gap_by_interval_or_by_checks() -> None:
    checks, interval = checker_throughput.between((10_000, 0.5), (10_000, 0.4))
    assert checks == 10_000
    assert checks / interval == pytest.approx(22_500)
    assert checker_throughput.between((500, 1.0), (750, 1.0)) == (625, 1.0)
    with pytest.raises(ValueError, match="share their checks or their interval"):
        checker_throughput.between((500, 1.0), (750, 2.0))


def test_refining_halves_the_gap_past_the_last_sustained_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """15,000/s sustained, 17,000/s not: halfway, 16,000/s is sustained, 16,500/s is
    not, and halfway between those two 16,250/s is. The figure is 16,250/s, not the
    ladder's 15,000/s, and every run is kept."""
    offered: list[float] = []
    outcome = {15_000: 5.0, 17_000: 80.0, 16_000: 9.0, 16_500: 40.0, 16_250: 20.0}

    def scenario(*_a: Any, checks: int, interval: float, **_k: Any) -> dict[str, Any]:
        rate = round(checks / interval)
        offered.append(rate)
        return step(rate, rate, p99_ms=outcome[rate])

    monkeypatch.setattr(checker_throughput, "scenario", scenario)
    ran, best = checker_throughput.climb(
        argparse.Namespace(retries=0),
        [(10_000, 10_000 / 15_000), (10_000, 10_000 / 17_000), (10_000, 0.5)],
        floor_after=lambda: {"completed_per_s": 20_000.0},
        floor_before={"completed_per_s": 20_000.0},
        refine=3,
        mode="healthy",
    )
    assert offered == [15_000, 17_000, 16_000, 16_500, 16_250]
    assert best is ran[4]
    assert [bool(r.get("refined")) for r in ran] == [False, False, True, True, True]
    assert ran[4]["share_of_floor_beside"] == pytest.approx(16_250 / 20_000)


@pytest.mark.parametrize(
    ("p99s", "runs"),
    [([80.0, 5.0], 1), ([5.0, 5.0], 2)],
    ids=["first-step-fails", "every-step-sustained"],
)
def test_nothing_is_refined_without_a_sustained_step_and_one_that_was_not(
    monkeypatch: pytest.MonkeyPatch, p99s: list[float], runs: int
) -> None:
    results = iter([step(15_000, 15_000, p99_ms=p) for p in p99s])
    monkeypatch.setattr(checker_throughput, "ladder_step", lambda *_a, **_k: next(results))
    ran, _ = checker_throughput.climb(
        argparse.Namespace(), [(15_000, 1.0), (17_000, 1.0)], refine=2, mode="https"
    )
    assert len(ran) == runs


@pytest.mark.parametrize(
    ("mode", "warmup"),
    [("healthy", 3.0), ("https", 3.0 + checker_throughput.HTTPS_WARMUP_EXTRA)],
)
def test_an_https_run_warms_up_past_its_first_cycle_of_full_handshakes(
    monkeypatch: pytest.MonkeyPatch, mode: str, warmup: float
) -> None:
    specs: list[dict[str, Any]] = []

    def measured(_child: Any, spec: dict[str, Any], args: Any, _farm: Any, **how: Any) -> Any:
        specs.append({**spec, "warmup": how.get("warmup") or args.warmup})
        return {
            **step(500, 500),
            "cpu_s": 1.0,
            "wall_s": 8.0,
            "sys_s": 0.1,
            "farm_cpu_util": 0.2,
        }

    monkeypatch.setattr(checker_throughput, "_child", lambda _flag: contextlib.nullcontext())
    monkeypatch.setattr(checker_throughput, "_targets_for", lambda *_a: (None, "h", [(1, "/")]))
    monkeypatch.setattr(checker_throughput, "_measured", measured)
    args = argparse.Namespace(warmup=3.0)
    checker_throughput.scenario(args, mode=mode, checks=500, interval=1.0, timeout=1.0)
    assert specs[0]["warmup"] == warmup
