"""Starting evaluations is limited (review 2026-12, M4): an account that is not staff starts at most
``evaluations.user`` of them (a 429 with Retry-After that keeps the form as typed) and asks for
at most ``evaluation_results.user`` results (items x samples) in one, refused by the form before
anything is made; staff are neither counted nor capped; the rows are written in batches."""

from __future__ import annotations

import html
import re
import secrets

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.benchmarks import services
from playground.benchmarks.models import Evaluation, Result
from playground.lib import ratelimits
from playground.programs.models import Dataset, Program
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
START = reverse("benchmarks:start")
FORM = {"dataset": "cruxeval", "method": "direct", "model": "smollm2-135m", "limit": "",
        "samples": "1", "seed": "0", "concurrency": "4", "title": "Kept <title>"}  # fmt: skip


@pytest.fixture
def four_items() -> None:
    Program.objects.bulk_create(
        Program(title=f"CRUXEval sample_{i}", source="def f(x):\n    return x\n", call="f(1)",
                dataset=Dataset.CRUXEVAL, external_id=f"sample_{i}", is_public=True)
        for i in range(4)
    )  # fmt: skip


def _client(*, staff: bool = False) -> Client:
    # A pk no earlier run of the suite used: the counters live in Redis for the whole window.
    user = UserFactory(pk=10**9 + secrets.randbelow(10**9), is_staff=staff)
    client = Client()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client


def _errors(page: str) -> list[str]:
    box = re.search(r'<div class="error-box" role="alert">(.*?)</div>', page, re.S)
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", box.group(1))] if box else []


def _value(page: str, field: str) -> str:
    tag = re.search(rf'<[^>]*name="{field}"[^>]*>', page)
    assert tag, field
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def test_the_rate_of_new_evaluations_is_a_429_that_keeps_the_form(
    settings: Settings, four_items: None
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"evaluations.user": "2/h"})
    client = _client()
    for _ in range(2):
        assert client.post(START, FORM).status_code == 302
    refused = client.post(START, {**FORM, "samples": "1", "seed": "77"})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    page = refused.content.decode()
    (error,) = _errors(page)
    assert error.startswith("Too many evaluations started: at most 2 an hour. Try again in ")
    assert (_value(page, "title"), _value(page, "seed")) == ("Kept <title>", "77")
    assert Evaluation.objects.filter(owner=client.user).count() == 2  # type: ignore[attr-defined]
    # Counted per account: another account is not refused.
    assert _client().post(START, FORM).status_code == 302
    # A form with a mistake is not counted: it is said, with a 200, even when over the rate.
    wrong = client.post(START, {**FORM, "samples": "0"})
    assert wrong.status_code == 200
    assert "Samples per item: a whole number" in wrong.content.decode()


def test_staff_are_not_counted(settings: Settings, four_items: None) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table(
        "public", {"evaluations.user": "1/h", "evaluation_results.user": 1}
    )
    staff = _client(staff=True)
    for _ in range(3):
        assert staff.post(START, FORM).status_code == 302
    assert Result.objects.filter(evaluation__owner=staff.user).count() == 12  # type: ignore[attr-defined]
    assert 'id="evaluation-limits"' not in staff.get(START).content.decode()


def test_too_many_results_are_refused_before_anything_is_made(
    settings: Settings, four_items: None
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"evaluation_results.user": 3})
    client = _client()
    limits = client.get(START).content.decode()
    shown = r'id="evaluation-limits">[^<]*at most 3 results \(items \u00d7 samples\)'
    assert re.search(shown, limits)
    for asked, results in [({"limit": ""}, 4), ({"limit": "2", "samples": "2"}, 4),
                           ({"limit": "9"}, 4)]:  # fmt: skip
        response = client.post(START, {**FORM, **asked})
        assert response.status_code == 200
        page = response.content.decode()
        assert _errors(page) == [
            f"This evaluation would make {results:,} results; at most 3 for your account: "
            "lower the limit or the samples."
        ], asked
        assert _value(page, "title") == "Kept <title>"
    assert not Evaluation.objects.exists()
    assert client.post(START, {**FORM, "limit": "3"}).status_code == 302
    assert Result.objects.count() == 3


def test_the_service_checks_the_cap_too_and_the_command_line_has_none(four_items: None) -> None:
    with pytest.raises(services.EvaluationError, match="would make 8 results; at most 5"):
        services.create_evaluation(dataset="cruxeval", method="direct", model="tiny",
                                   samples=2, max_results=5, start=False)  # fmt: skip
    made = services.create_evaluation(dataset="cruxeval", method="direct", model="tiny",
                                      samples=2, start=False)  # fmt: skip
    assert made.total == Result.objects.filter(evaluation=made).count() == 8


def test_result_rows_are_written_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows of one evaluation are never all built at once in the web process."""
    monkeypatch.setattr(services, "RESULT_BATCH", 3)
    monkeypatch.setattr(
        services, "_items", lambda *a: [(f"k{i}", {"program": i}) for i in range(4)]
    )
    with CaptureQueriesContext(connection) as queries:
        made = services.create_evaluation(dataset="cruxeval", method="direct", model="tiny",
                                          samples=2, start=False)  # fmt: skip
    inserts = [
        q
        for q in queries.captured_queries
        if q["sql"].startswith('INSERT INTO "benchmarks_result"')
    ]
    assert len(inserts) == 3  # 8 rows, 3 at a time
    assert list(Result.objects.filter(evaluation=made).values_list("index", "sample")) == [
        (i, s) for i in range(4) for s in range(2)
    ]


def test_an_owner_whose_model_tokens_are_spent_cannot_start_an_evaluation(
    settings: Settings, four_items: None
) -> None:
    """Its runs would count against the same budget and fail one by one: refused at the door."""
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"model_tokens.user": "1000/h"})
    client = _client()
    ratelimits.spend("model_tokens.user", f"user:{client.user.pk}", 1000)  # type: ignore[attr-defined]
    refused = client.post(START, FORM)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    (error,) = _errors(refused.content.decode())
    assert error.startswith("Too many language-model tokens used")
    assert not Evaluation.objects.exists()
    assert _client().post(START, FORM).status_code == 302  # another account is not refused
