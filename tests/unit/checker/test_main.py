"""`urn checker` flags -> CheckerSettings, and the clear errors for bad flags."""

from __future__ import annotations

import argparse

import pytest

from checker.main import add_arguments
from checker.settings import CheckerSettings, Selector
from urn.errors import StartupError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--config", "c.yaml", "--id", "chk-a1", "--az", "a", *argv])


def test_defaults_listen_on_7301():
    settings = CheckerSettings.from_args(parse())
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 7301)
    assert (settings.id, settings.az, settings.config) == ("chk-a1", "a", "c.yaml")
    assert settings.select == ()


def test_sidecar_selectors_and_limits():
    settings = CheckerSettings.from_args(
        parse(
            "--select",
            "name=web-*",
            "--select",
            "label=app=shop",
            "--listen",
            ":9000",
            "--max-concurrency",
            "50",
            "--probe-ca",
            "/ca.pem",
        )
    )
    assert settings.select == (Selector("name", "web-*"), Selector("label", "shop", "app"))
    assert settings.listen_port == 9000
    assert settings.max_concurrency == 50
    assert settings.probe_ca == "/ca.pem"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--select", "colour=blue"], "selector 'colour=blue'"),
        (["--listen", "127.0.0.1:http"], "is not a number"),
        (["--max-concurrency", "0"], "at least 1"),
        (["--az", "a" * 17], "--az"),
        (["--id", "c" * 33], "--id"),
    ],
)
def test_bad_flags_are_startup_errors(argv: list[str], message: str):
    with pytest.raises(StartupError, match=message):
        CheckerSettings.from_args(parse(*argv))
