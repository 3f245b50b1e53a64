"""`urn bench` dispatch: own-parser benches get every word, others their parsed options."""

from __future__ import annotations

import argparse

from bench import cli


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
