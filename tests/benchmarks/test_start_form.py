"""Starting an evaluation is a real form (review 2026-12, bugs 2 and 14): every number bounded,
in the HTML and on the server; an error is said next to its field, in words that name the real
problem, and the form comes back with what was typed; GET shows the form (it was a blank 405)."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from playground.benchmarks.models import Evaluation
from playground.programs.models import Dataset, Program, Task, TaskExample
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
START = reverse("benchmarks:start")
GOOD = {"dataset": "cruxeval", "method": "direct", "model": "smollm2-135m", "limit": "5",
        "samples": "1", "seed": "0", "concurrency": "4", "title": "mine"}  # fmt: skip


@pytest.fixture
def client() -> Client:
    Program.objects.create(title="CRUXEval sample_0", source="def f(x):\n    return x\n",
                           call="f(1)", dataset=Dataset.CRUXEVAL, external_id="sample_0",
                           is_public=True)  # fmt: skip
    task = Task.objects.create(name="navigate")
    TaskExample.objects.create(task=task, index=0, input="Go left.", target="No")
    client = Client()
    client.force_login(UserFactory())
    return client


def _field_error(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" role="alert" id="id_{field}-error">(.*?)</p>', page)
    assert found, page[-4000:]
    return html.unescape(found.group(1))


def _value(page: str, field: str) -> str:
    found = re.search(rf'<[^>]*name="{field}"[^>]*>', page)
    assert found, field
    value = re.search(r'value="([^"]*)"', found.group(0))
    return html.unescape(value.group(1)) if value else ""


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("limit", "99999999999999999999", "Items at most: a whole number from 1 to 10,000"),
        ("limit", "-1", "Items at most: a whole number from 1 to 10,000"),
        ("limit", "0", "Items at most: a whole number from 1 to 10,000, or empty for every"),
        ("limit", "1.5", "Items at most: a whole number"),
        ("limit", "²", "Items at most: a whole number"),
        ("limit", "9" * 5000, "Items at most: a whole number"),
        ("samples", "0", "Samples per item: a whole number from 1 to 100"),
        ("samples", "1000", "Samples per item: a whole number from 1 to 100"),
        ("concurrency", "0", "Requests at once: a whole number from 1 to 64"),
        ("concurrency", "100000", "Requests at once: a whole number from 1 to 64"),
        ("seed", "-5", "Seed: a whole number from 0 to 2,000,000,000"),
        ("seed", "99999999999", "Seed: a whole number from 0 to 2,000,000,000"),
        ("model", "nope", "Choose a model this site offers."),
        ("title", "x" * 300, "at most 200 characters"),
    ],
)
def test_a_bad_value_is_said_next_to_its_field_and_the_form_keeps_the_rest(
    client: Client, field: str, value: str, message: str
) -> None:
    response = client.post(START, {**GOOD, field: value})
    assert response.status_code == 200
    page = response.content.decode()
    assert message in _field_error(page, field)
    assert not Evaluation.objects.exists()
    # What was typed is still there (the others, and the bad value itself to correct it).
    assert _value(page, "title") == (GOOD["title"] if field != "title" else value)
    if field != "limit":
        assert _value(page, "limit") == "5"


def test_an_unknown_bbh_task_is_named_not_blamed_on_the_library(client: Client) -> None:
    data = {**GOOD, "dataset": "bbh", "method": "coc", "tasks": "navigate, nonexistent_task"}
    page = client.post(START, data).content.decode()
    error = _field_error(page, "tasks")
    assert "No BIG-Bench Hard task is called 'nonexistent_task'" in error
    assert "imported" not in page
    assert _value(page, "tasks") == "navigate, nonexistent_task"


def test_a_method_that_does_not_apply_says_which_do(client: Client) -> None:
    page = client.post(START, {**GOOD, "dataset": "p3", "method": "trace"}).content.decode()
    assert "does not apply to P3 programming puzzles: choose" in _field_error(page, "method")


def test_an_empty_data_set_says_the_library_is_not_imported(client: Client) -> None:
    Program.objects.all().delete()
    page = client.post(START, GOOD).content.decode()
    assert "its library has not been imported" in _field_error(page, "dataset")


def test_a_good_form_starts_the_evaluation_with_its_values(client: Client) -> None:
    response = client.post(START, {**GOOD, "dataset": "bbh", "method": "coc", "tasks": "navigate",
                                   "concurrency": "2", "samples": "3", "seed": "7"})  # fmt: skip
    evaluation = Evaluation.objects.get()
    assert response["Location"] == evaluation.get_absolute_url()
    assert (evaluation.subset, evaluation.concurrency, evaluation.samples, evaluation.seed) == (
        ["navigate"], 2, 3, 7,
    )  # fmt: skip
    assert evaluation.total == 3


def test_get_shows_the_form_with_its_bounds_in_the_html(client: Client) -> None:
    response = client.get(START)
    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(r'name="limit"[^>]*min="1"|min="1"[^>]*name="limit"', page)
    for field, low, high in (("limit", 1, 10000), ("samples", 1, 100), ("concurrency", 1, 64)):
        tag = re.search(rf'<input[^>]*name="{field}"[^>]*>', page)
        assert tag, field
        assert f'min="{low}"' in tag.group(0)
        assert f'max="{high}"' in tag.group(0)
    assert Client().get(START).status_code == 302  # to the login page


def test_the_leaderboard_carries_the_same_form(client: Client) -> None:
    page = client.get(reverse("benchmarks:leaderboard")).content.decode()
    assert f'action="{START}"' in page
    assert 'max="10000"' in page
