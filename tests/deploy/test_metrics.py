"""``/metrics`` (playground/metrics.py): what Prometheus reads, and who may read it. The figures
come from the shared state (PostgreSQL, the broker's lists, the replicas' marks in Redis), so
they are checked against what the test put there; anyone not allowed gets a plain 404."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from playground import metrics
from playground.lib import broker as queues
from playground.lib import redis_roles
from playground.llm.registry import load_models
from playground.llm.replicas import Balancer
from playground.runs.models import Run
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    cache.delete(metrics._CACHE_KEY)
    yield
    cache.delete(metrics._CACHE_KEY)


def _value(text: str, name: str, **labels: str) -> float:
    """The sample of ``name`` with exactly these labels."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    raise AssertionError(f"no {name}{labels} in:\n{text}")


def _run(status: str, method: str = "real", **fields: object) -> Run:
    program = ProgramFactory()
    return Run.objects.create(
        program=program, source=program.source, call=program.call, status=status,
        method=method, **fields,
    )  # fmt: skip


def test_the_site_figures_are_what_the_database_and_the_broker_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _run(Run.Status.QUEUED)
    _run(Run.Status.QUEUED)
    old = _run(Run.Status.RUNNING)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    done = _run(Run.Status.DONE, method="direct", completion_tokens=40)
    Run.objects.filter(pk=done.pk).update(
        created_at=timezone.now() - timedelta(seconds=3), finished_at=timezone.now()
    )
    _run(Run.Status.FAILED, method="direct", finished_at=timezone.now())
    models = [{"name": "coder", "base_urls": ["http://gpu1:8000/v1", "http://gpu2:8000/v1"],
               "model": "coder"}]  # fmt: skip
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps(models))
    model = load_models()[0]
    balancer = Balancer(model)
    balancer.mark_down("http://gpu2:8000/v1", retry_after=30)
    broker = redis_roles.client(settings.REDIS_ROLES["broker"])
    # Other tests may have left messages in the suite's broker: the figures are read against
    # what was there before.
    before = queues.lengths(["batch", "sandbox"])
    broker.lpush("batch", b"one", b"two", b"three")
    try:
        response = Client().get("/metrics")  # the test client's address: 127.0.0.1
        text = response.content.decode()
    finally:
        broker.lrem("batch", 0, b"one")
        broker.lrem("batch", 0, b"two")
        broker.lrem("batch", 0, b"three")
        balancer.mark_up("http://gpu2:8000/v1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert _value(text, "playground_queue_length", queue="batch") == before["batch"] + 3
    assert _value(text, "playground_queue_length", queue="sandbox") == before["sandbox"]
    assert _value(text, "playground_runs_in_progress", status="queued") == 2
    assert _value(text, "playground_runs_in_progress", status="running") == 1
    assert 89 <= _value(text, "playground_runs_oldest_in_progress_seconds") < 120
    assert _value(text, "playground_runs_finished_recently", status="done", method="direct") == 1
    assert _value(text, "playground_runs_finished_recently", status="failed", method="direct") == 1
    assert 2.5 < _value(text, "playground_run_seconds_recent", quantile="0.5") < 10
    assert _value(text, "playground_model_tokens_recently") == 40
    assert _value(text, "playground_model_replica_up", model="coder", replica="0") == 1
    assert _value(text, "playground_model_replica_up", model="coder", replica="1") == 0
    assert "gpu1" not in text  # a replica is named by its place, never by its address


def test_only_allowed_addresses_or_the_token_may_read(settings: Any) -> None:
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics").status_code == 404
    settings.PLAYGROUND_METRICS_TOKEN = "s3cret-token"
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    settings.PLAYGROUND_METRICS_ALLOW = [ipaddress.ip_network("10.0.0.0/8")]
    assert Client().get("/metrics").status_code == 404  # loopback no longer listed
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").post("/metrics").status_code == 405
    # A scraper asks by the pod's address, which is no host name of the site: still answered.
    scraper = Client(REMOTE_ADDR="10.1.2.3", HTTP_HOST="10.4.5.6:8000")
    assert scraper.get("/metrics").status_code == 200
    assert Client(HTTP_HOST="10.4.5.6:8000").get("/").status_code == 400  # elsewhere: refused


def test_a_burst_of_scrapes_costs_one_collection(django_assert_max_num_queries: object) -> None:
    client = Client()
    first = client.get("/metrics").content
    _run(Run.Status.QUEUED)
    with django_assert_max_num_queries(0):  # type: ignore[operator]
        again = [client.get("/metrics").content for _ in range(20)]
    assert set(again) == {first}  # served from the cache for CACHE_S seconds
    cache.delete(metrics._CACHE_KEY)
    assert _value(client.get("/metrics").content.decode(), "playground_runs_in_progress",
                  status="queued") == 1  # fmt: skip
