"""`urn bench` dispatch: own-parser benches get every word, others their parsed options."""

from __future__ import annotations

import argparse
import json

from bench import az_failure, cli
from sim.farm_layout import layout
from sim.scenario import FleetPlan, build_document
from urn.config.load import load_text


def parser() -> argparse.ArgumentParser:
    built = argparse.ArgumentParser(prog="urn bench")
    cli.add_arguments(built)
    return built


def test_az_failure_options_are_parsed():
    args = parser().parse_args(["az-failure", "--checks", "600", "--design", "edge,urn"])
    assert (args.bench, args.checks, args.design) == ("az-failure", 600, "edge,urn")


def test_micro_benches_get_their_words_untouched():
    args = parser().parse_args(["aggregator-tick", "--ticks", "5", "--help"])
    assert (args.bench, args.argv) == ("aggregator-tick", ["--ticks", "5", "--help"])


def test_edge_roles_take_the_role_flags():
    args = parser().parse_args(
        ["edge-checker", "--config", "c.json", "--id", "x", "--az", "a", "--loop", "asyncio"]
    )
    assert (args.bench, args.az, args.loop) == ("edge-checker", "a", "asyncio")


def test_az_failure_refuses_bad_numbers_before_starting_anything(capsys):
    for flag, value, message in (
        ("--failure-phase", "1.0", "--failure-phase: 1.0 must be in [0, 1)"),
        ("--farm-processes", "0", "--farm-processes: 0 must be 1..200 (targets per AZ)"),
        ("--farm-processes", "201", "--farm-processes: 201 must be 1..200"),
        ("--farm-nice", "-1", "--farm-nice: -1 must be 0..19"),
    ):
        args = parser().parse_args(["az-failure", "--checks", "600", flag, value])
        assert az_failure.run(args) == 2
        assert message in capsys.readouterr().err


def test_farm_processes_follow_the_probe_rate_within_a_quarter_of_the_cores(tmp_path):
    def shards(cores: int, *extra: str) -> int:
        args = parser().parse_args(["az-failure", "--out", str(tmp_path), *extra])
        bench = az_failure.AzFailure(args)
        bench.cores = cores
        return bench.farm_processes()

    full = ("--checks", "10000", "--checkers-per-az", "2", "--probe-interval", "1")
    assert shards(16, *full) == 4  # 60,000 probes/s
    assert shards(8, *full) == 2  # no more than a quarter of the cores
    assert shards(2, *full) == 1
    assert shards(16, "--checks", "10000", "--checkers-per-az", "1") == 1  # 6,000/s
    assert shards(2, *full, "--farm-processes", "3") == 3  # asked for: as asked


def test_lever_options_imply_urn_and_refuse_another_design_or_a_bad_value(capsys):
    for extra, message in (
        (["--shift", "b", "--design", "both"], "--shift: operator levers are measured on urn"),
        (["--autoshift", "--min-healthy", "--design", "edge"], "--autoshift, --min-healthy:"),
        (["--shift", "z"], "--shift: 'z' is not one of the AZs (a, b, c)"),
        (["--shift", "b", "--fail-fraction", "0.5"], "the shifted AZ stays healthy; fail part"),
        (
            ["--shift", "c", "--shift-ends", "expire", "--fail-fraction", "0.5"],
            "--shift-ends expire with --fail-fraction: the shift and the failure end together",
        ),
        (["--fail-fraction", "0"], "--fail-fraction: 0 must be in (0, 1]"),
        (["--fail-fraction", "1.5"], "--fail-fraction: 1.5 must be in (0, 1]"),
        (["--autoshift", "--autoshift-clear-after", "-1"], "--autoshift-clear-after: -1"),
    ):
        args = parser().parse_args(["az-failure", "--checks", "600", *extra])
        assert az_failure.run(args) == 2, extra
        assert message in capsys.readouterr().err, extra
    for extra, design in (
        (["--min-healthy"], "urn"),
        (["--shift", "c", "--design", "urn"], "urn"),
        (["--fail-fraction", "0.6"], "both"),  # a partial failure needs no lever
        (["--shift", "c", "--fail-fraction", "0.6"], "urn"),  # b fails while c is shifted
        ([], "both"),
    ):
        args = parser().parse_args(["az-failure", *extra])
        assert az_failure._lever_problem(args) is None
        assert args.design == design, extra


def test_fail_fraction_picks_the_same_share_of_the_az_every_time():
    specs = layout(("a", "b", "c"), 1000, 0)
    sixty = az_failure.failing_targets(specs, "b", 0.6)
    assert sixty == az_failure.failing_targets(specs, "b", 0.6)
    assert all(t.startswith("b-") for t in sixty)
    assert 550 <= len(sixty) <= 650
    assert set(az_failure.failing_targets(specs, "b", 0.3)) < set(sixty)
    assert len(az_failure.failing_targets(specs, "b", 1.0)) == 1000


def test_the_shift_is_written_into_the_config_file_and_ended_as_urn_shift_does(tmp_path):
    config = tmp_path / "config.json"
    document = build_document(layout(("a", "b", "c"), 10, 20000), FleetPlan())
    config.write_text(json.dumps(document))
    original = config.read_text()
    writer = az_failure.ShiftWriter(config, "b", 5.25)
    writer.prepare(1_800_000_000.0)
    writer.start(1_800_000_000.0)
    shifts = load_text(config.read_text())["shifts"]
    assert shifts == [
        {"az": "b", "until": "2027-01-15T08:00:05.250Z", "reason": "urn bench az-failure --shift"}
    ]
    assert writer.until == 1_800_000_005.25
    assert not list(tmp_path.glob(".*.tmp"))  # renamed into place
    writer.end()
    assert json.loads(config.read_text()) == json.loads(original)
