"""The alert rules and the Grafana dashboard in deploy/observability read only metrics the site
exports (/metrics, playground/metrics.py), and each rule says how bad it is and what it means."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from django.test import Client

from playground.lib import paths

pytestmark = pytest.mark.django_db
HERE = paths.REPO_DIR / "deploy" / "observability"
NAME = re.compile(r"\bplayground_[a-z_]+\b")


@pytest.fixture
def exported() -> set[str]:
    text = Client().get("/metrics").content.decode()
    return set(re.findall(r"^# TYPE (\w+) ", text, re.MULTILINE))


def test_every_alert_reads_exported_metrics_and_says_what_it_means(exported: set[str]) -> None:
    rules = yaml.safe_load((HERE / "alerts.yaml").read_text())["groups"][0]["rules"]
    assert len(rules) >= 6
    for rule in rules:
        used = set(NAME.findall(rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_every_dashboard_panel_reads_exported_metrics(exported: set[str]) -> None:
    dashboard = json.loads((HERE / "grafana-dashboard.json").read_text())
    shown: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = set(NAME.findall(target["expr"]))
            assert used <= exported, (panel["title"], used - exported)
            shown |= used
    assert shown == exported  # every exported figure has a panel
