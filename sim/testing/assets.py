"""What the shipped observability assets read: the Grafana dashboard's queries and the
Prometheus rules' expressions, and the urn metrics they name (for tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DASHBOARD", "RULES", "alert_names", "dashboard_exprs", "metrics_named", "rule_exprs"]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "urn-rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "urn.json"
_METRIC = re.compile(r"\burn_[a-z_]+\b")


def dashboard_exprs() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [str(t["expr"]) for panel in dashboard["panels"] for t in panel["targets"]]


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_exprs() -> list[str]:
    return [str(rule["expr"]) for rule in _rules()]


def alert_names() -> list[str]:
    return [str(rule["alert"]) for rule in _rules() if "alert" in rule]


def metrics_named() -> set[str]:
    """Every urn_ sample name the dashboard and the rules read."""
    return {m for expr in [*dashboard_exprs(), *rule_exprs()] for m in _METRIC.findall(expr)}
