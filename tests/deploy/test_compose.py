"""docker-compose.yml follows the Compose Specification and matches the demo topology.

No Docker engine runs on these machines, so the file is checked against the Compose
Specification's JSON schema (vendored in check-jsonschema) and for the wiring that
makes it work: every config URL and check host names a service on a shared network.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from urn.config import parse_text

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CONFIG = ROOT / "deploy" / "compose" / "urn.yaml"


def _check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert found, "check-jsonschema is a test dependency (pyproject [test])"
    return found


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_follows_the_compose_specification() -> None:
    result = _validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_file(tmp_path: Path, compose: dict[str, Any]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(compose))
    broken["services"]["resolver-1"]["portz"] = ["53:53"]
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert _validate(path).returncode != 0


def test_topology_matches_the_demo(compose: dict[str, Any]) -> None:
    services = compose["services"]
    roles = [s["command"][0] for s in services.values()]
    assert roles.count("checker") == 6
    assert roles.count("aggregator") == 2
    assert roles.count("resolver") == 2
    assert roles.count("targets") == 3
    assert set(compose["networks"]) == {"az-a", "az-b", "az-c", "core"}
    for name, service in services.items():
        if service["command"][0] == "targets":
            assert service["networks"] == [f"az-{name[-1]}"]
        if service["command"][0] == "resolver":
            published = " ".join(service["ports"])
            assert "/udp" in published
            assert "/tcp" in published


def test_each_tier_has_its_own_key_from_a_secret(compose: dict[str, Any]) -> None:
    document = parse_text(CONFIG.read_text())
    assert document.push_key.file == "/run/secrets/push_key"
    assert document.table_key is not None
    assert document.table_key.file == "/run/secrets/table_key"
    assert compose["secrets"] == {
        "push_key": {"file": "./deploy/compose/push_key"},
        "table_key": {"file": "./deploy/compose/table_key"},
    }


def _secrets(compose: dict[str, Any], name: str) -> list[str]:
    """The secrets a service holds, with the x-urn anchor's default merged in."""
    service = compose["services"][name]
    held: list[str] = service.get("secrets", compose["x-urn"]["secrets"])
    return held


def test_each_role_holds_the_keys_of_its_tiers_only(compose: dict[str, Any]) -> None:
    wanted = {
        "checker": ["push_key"],
        "aggregator": ["push_key", "table_key"],
        "resolver": ["table_key"],
        "targets": [],
    }
    for name, service in compose["services"].items():
        assert _secrets(compose, name) == wanted[service["command"][0]], name


def test_receivers_admit_exactly_the_fleets_senders(compose: dict[str, Any]) -> None:
    document = parse_text(CONFIG.read_text())
    ids: dict[str, list[str]] = {"checker": [], "aggregator": []}
    for service in compose["services"].values():
        command = service["command"]
        if command[0] in ids:
            ids[command[0]].append(command[command.index("--id") + 1])
    assert document.senders.aggregators is not None
    assert document.senders.checkers is not None
    assert sorted(document.senders.aggregators) == sorted(ids["aggregator"])
    assert sorted(document.senders.checkers) == sorted(ids["checker"])


def test_config_names_reachable_services(compose: dict[str, Any]) -> None:
    document = parse_text(CONFIG.read_text())
    services = compose["services"]
    for url in (*document.aggregators, *document.resolvers):
        host = url.split("//")[1].split(":")[0]
        assert host in services, url
        assert "core" in services[host]["networks"]
    checker_networks = set(services["checker-a1"]["networks"])
    for check in document.checks:
        assert check.host in services, check.host
        assert set(services[check.host]["networks"]) <= checker_networks


def test_committed_config_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_config", CONFIG.parent / "make_config.py")
    assert spec is not None
    assert spec.loader is not None
    make_config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_config)
    assert CONFIG.read_text() == make_config.render()


def test_every_role_reports_healthy_only_when_its_readyz_says_so(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        command = service["command"]
        if command[0] == "targets":
            continue
        listen = command[command.index("--listen") + 1]
        port = listen.rsplit(":", 1)[1]
        probe = service["healthcheck"]["test"]
        assert probe[-1] == f"http://127.0.0.1:{port}/readyz", name
