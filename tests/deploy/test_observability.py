"""The alert rules and the Grafana dashboard in deploy/observability read only metrics the site
exports (/metrics: playground/metrics.py, and each process's own, playground/lib/
process_metrics.py, which a worker's port shows too), and each rule says how bad it is and what
it means."""

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
def exported() -> dict[str, str]:
    """Each name a query may read, and the figure it belongs to: a histogram is read by its
    ``_bucket``, ``_count`` and ``_sum`` series."""
    text = Client().get("/metrics").content.decode()
    names: dict[str, str] = {}
    for name, kind in re.findall(r"^# TYPE (\w+) (\w+)$", text, re.MULTILINE):
        names[name] = name
        if kind == "histogram":
            names |= {f"{name}{suffix}": name for suffix in ("_bucket", "_count", "_sum")}
    return names


def test_every_alert_reads_exported_metrics_and_says_what_it_means(
    exported: dict[str, str],
) -> None:
    rules = yaml.safe_load((HERE / "alerts.yaml").read_text())["groups"][0]["rules"]
    assert len(rules) >= 6
    for rule in rules:
        used = set(NAME.findall(rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported.keys(), (rule["alert"], used - exported.keys())
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_every_dashboard_panel_reads_exported_metrics(exported: dict[str, str]) -> None:
    dashboard = json.loads((HERE / "grafana-dashboard.json").read_text())
    shown: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = set(NAME.findall(target["expr"]))
            assert used <= exported.keys(), (panel["title"], used - exported.keys())
            shown |= {exported[name] for name in used}
    assert shown == set(exported.values())  # every exported figure has a panel


def test_the_rules_and_panels_that_the_issue_asks_for_are_there() -> None:
    """Request latency, refusals, viewers and task failures on the dashboard; the web's 5xx
    rate alerted on."""
    dashboard = json.loads((HERE / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert "histogram_quantile(0.95, sum by (le, route) (rate(playground_http_request_" in exprs
    for name in ("playground_rate_limit_refusals_total", "playground_websocket_viewers"):
        assert name in exprs
    assert 'playground_tasks_finished_total{outcome="failed"}' in exprs
    rules = yaml.safe_load((HERE / "alerts.yaml").read_text())["groups"][0]["rules"]
    errors = [r for r in rules if 'status="5xx"' in r["expr"]]
    assert errors, "no alert on the web's server errors"
    assert "playground_http_request_duration_seconds_count" in errors[0]["expr"]
