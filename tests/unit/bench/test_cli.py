"""`urn bench` dispatch: own-parser benches get every word, others their parsed options."""

from __future__ import annotations

import argparse

from bench import az_failure, cli


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
