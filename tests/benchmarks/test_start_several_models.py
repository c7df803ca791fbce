"""One start, several models: one evaluation per model with the same settings, made all or none
and run side by side; the account's caps count them all (the results of every model together,
one evaluation each against the rate)."""

from __future__ import annotations

import html
import json
import re
import secrets

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.benchmarks import services
from playground.benchmarks.models import Evaluation
from playground.lib import ratelimits
from playground.programs.models import Dataset, Program
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
START = reverse("benchmarks:start")
FORM = {"dataset": "cruxeval", "method": "direct", "model": "coder", "limit": "2",
        "samples": "1", "seed": "3", "concurrency": "4", "title": "side by side"}  # fmt: skip


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Client:
    models = [{"name": n, "base_url": f"http://127.0.0.1:9/{n}", "model": n} for n in
              ("coder", "chat", "tiny")]  # fmt: skip
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps(models))
    Program.objects.bulk_create(
        Program(title=f"CRUXEval sample_{i}", source="def f(x):\n    return x\n", call="f(1)",
                dataset=Dataset.CRUXEVAL, external_id=f"sample_{i}", is_public=True)
        for i in range(4)
    )  # fmt: skip
    client = Client()
    client.force_login(UserFactory(pk=10**9 + secrets.randbelow(10**9)))
    return client


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr(services, "send", lambda pk, origin: ids.append(pk))
    return ids


def _errors(page: str) -> list[str]:
    box = re.search(r'<div class="error-box" role="alert">(.*?)</div>', page, re.S)
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", box.group(1))] if box else []


def test_one_evaluation_per_model_all_queued(
    client: Client, sent: list[int], django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = client.post(START, {**FORM, "also": ["chat", "coder", "tiny"]})
    assert response.status_code == 302
    assert response["Location"] == reverse("benchmarks:leaderboard") + "#mine"
    made = list(Evaluation.objects.order_by("pk"))
    assert [e.model for e in made] == ["coder", "chat", "tiny"]  # the main one once, first
    for evaluation in made:
        assert (evaluation.dataset, evaluation.method, evaluation.limit, evaluation.seed,
                evaluation.total, evaluation.title) == ("cruxeval", "direct", 2, 3, 2,
                                                        "side by side")  # fmt: skip
    assert sent == [e.pk for e in made]  # every one queued: they run side by side
    page = client.get(response["Location"]).content.decode()
    assert "Started 3 evaluations, one per model" in html.unescape(page)
    assert 'id="mine"' in page


def test_the_results_of_every_model_count_against_the_cap(
    client: Client, settings: Settings, sent: list[int]
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"evaluation_results.user": 3})
    response = client.post(START, {**FORM, "also": ["chat"]})
    assert response.status_code == 200
    assert _errors(response.content.decode()) == [
        "These 2 evaluations (one per model) would make 4 results; at most 3 for your "
        "account: lower the limit or the samples."
    ]
    assert not Evaluation.objects.exists()
    assert client.post(START, {**FORM, "limit": "1", "also": ["chat"]}).status_code == 302
    assert Evaluation.objects.count() == 2


def test_each_model_is_one_evaluation_against_the_rate(
    client: Client, settings: Settings, sent: list[int]
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"evaluations.user": "2/h"})
    response = client.post(START, {**FORM, "also": ["chat", "tiny"]})
    assert response.status_code == 429
    assert not Evaluation.objects.exists()
    assert "Retry-After" in response


def test_an_unknown_model_is_refused_by_name(client: Client, sent: list[int]) -> None:
    response = client.post(START, {**FORM, "also": ["gpt-9"]})
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "Choose models this site offers." in page
    assert not Evaluation.objects.exists()
