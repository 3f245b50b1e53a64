"""The `urn` console script as a user meets it: help, unknown commands, `urn validate`."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

from sim.testing import TEST_PUSH_KEY, document_dict
from sim.testing import run_urn as urn

if TYPE_CHECKING:
    from pathlib import Path


def test_help_lists_every_command() -> None:
    result = urn("--help")
    assert result.returncode == 0
    for command in ("checker", "aggregator", "resolver", "demo", "bench", "validate"):
        assert f"  {command}" in result.stdout


def test_version() -> None:
    result = urn("--version")
    assert (result.returncode, result.stdout.strip()) == (0, "0.1.0")


def test_no_command_is_a_usage_error() -> None:
    result = urn()
    assert result.returncode == 2
    assert "commands:" in result.stdout


def test_unknown_command_exits_2() -> None:
    result = urn("frobnicate")
    assert result.returncode == 2
    assert result.stderr.startswith("urn: unknown command 'frobnicate'")


def test_validate_without_config_is_an_argparse_error() -> None:
    result = urn("validate")
    assert result.returncode == 2
    assert "the following arguments are required: --config" in result.stderr


@pytest.fixture
def good_config(tmp_path: Path) -> Path:
    path = tmp_path / "urn.yaml"
    checks = [{"slot": 3, "name": "web", "type": "http", "host": "10.0.0.1"}]
    records = [{"name": "www.example.com.", "answers": [{"value": "10.0.0.1", "check": 3}]}]
    path.write_text(json.dumps(document_dict(checks, records)))
    return path


def test_validate_good_config(good_config: Path) -> None:
    result = urn("validate", "--config", str(good_config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "ok: capacity 64, 1 checks (1 probed), 1 records, 1 zones (0 with NS), digest "
    )


def test_validate_a_delegable_zone_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "urn.yaml"
    zone: dict[str, object] = {"name": "example.com.", "ns": ["ns1.example.com."]}
    path.write_text(json.dumps(document_dict(zones=[zone])))
    result = urn("validate", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "invalid: zones[0].ns[0]: 'ns1.example.com.' is inside example.com., so it needs its "
        "addresses (glue) in zones[0].addresses"
    )
    zone["addresses"] = {"ns1.example.com.": ["192.0.2.1"]}
    path.write_text(json.dumps(document_dict(zones=[zone, "example.net."])))
    result = urn("validate", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert ", 0 records, 2 zones (1 with NS), digest " in result.stdout


def test_validate_bad_config_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "urn.yaml"
    path.write_text("capacity: 10000\nchecks:\n  - {slot: 12000, type: tcp, host: h, port: 1}\n")
    result = urn("validate", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.strip() == "invalid: checks[0].slot: 12000 is outside capacity 10000"


def test_validate_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "urn.yaml"
    path.write_text("capacity: 64\nchecks: [\n  {slot: 1\n")
    result = urn("validate", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"invalid: {path} is not valid YAML/JSON at line")


def test_validate_missing_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = urn("validate", "--config", str(missing))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"invalid: cannot read config from {missing}: No such file or directory"
    )


def test_validate_keys_reports_a_missing_key(good_config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "URN_PUSH_KEY"}
    result = urn("validate", "--config", str(good_config), "--keys", env=env)
    assert result.returncode == 1
    assert "push_key.env: 'URN_PUSH_KEY' is not set in the environment" in result.stderr
    env["URN_PUSH_KEY"] = TEST_PUSH_KEY.decode()
    assert urn("validate", "--config", str(good_config), "--keys", env=env).returncode == 0
