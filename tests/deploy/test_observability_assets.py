"""The Prometheus alert rules and the Grafana dashboard: they parse, and the rules do
what they say (promtool's own unit tests, deploy/prometheus/urn-rules.test.yaml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sim.testing.assets import RULES, alert_names, dashboard_exprs, metrics_named

ROOT = Path(__file__).parents[2]
RULE_TESTS = ROOT / "deploy" / "prometheus" / "urn-rules.test.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make test installs it)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_rules_pass_promtool_check() -> None:
    result = _run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_a_sick_series_and_stays_quiet_on_a_healthy_one() -> None:
    tested = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tested
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tested
        for case in test["alert_rule_test"]
        if not case.get("exp_alerts")
    }
    assert fired == quiet == set(alert_names())
    result = _run("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    """promtool parses PromQL in rule files: each panel query goes in as a recording rule."""
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"urn:panel_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard-exprs.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = _run("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_expression_is_caught_by_the_same_check(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "x",
                        "rules": [{"record": "urn:bad", "expr": "sum by (az (urn_az_slots)"}],
                    }
                ]
            }
        )
    )
    assert _run("check", "rules", str(path)).returncode != 0


def test_the_dashboard_covers_what_operators_look_at() -> None:
    named = metrics_named()
    for metric in (
        "urn_az_slots",  # fleet health by AZ
        "urn_fresh_checkers",
        "urn_probes_total",
        "urn_probe_lateness_seconds_bucket",
        "urn_pushes_total",
        "urn_table_age_seconds",
        "urn_queries_total",
        "urn_query_duration_seconds_bucket",
        "urn_fail_open_answers_total",
        "urn_config_loads_total",
    ):
        assert metric in named, metric


def test_every_alert_has_a_runbook_entry() -> None:
    text = OPERATIONS.read_text().lower()
    for name in alert_names():
        assert f"### {name.lower()}" in text, name
