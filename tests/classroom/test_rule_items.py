"""Execute under a changed rule (issue 21): a classroom item whose answer key is its program run
for real under a semantic rule in the sandbox; the student reads the rule in a banner, predicts
the call's value under it, is graded against the rule's run, and once the answer may be
revealed sees both runs (under the rule, and standard Python); the statistics compare the
students with the models under the same rule."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse

from playground.classroom import keys, stats
from playground.classroom.models import Item, Mode, Submission
from playground.runs.models import Run
from playground.sandbox.inside.semantics import RULES
from tests.classroom.student_world import (
    assignment,
    client_for,
    course_world,
    library_program,
)
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
SOURCE = "def f(a, b):\n    s = a + b\n    return s * 2\n"
CALL = "f(5, 3)"  # 16 in Python; under swap-add-sub, (5 - 3) * 2 = 4
RULE = "swap-add-sub"


def _text(response: Any) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


@pytest.fixture
def rule_item(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> SimpleNamespace:
    """An item made through the staff's form, its key prepared in the sandbox."""
    w = course_world()
    w.assignment = assignment(w.course, max_attempts=3)
    w.program = library_program(source=SOURCE, call=CALL, expected="16")
    w.form_url = reverse("classroom:item_new", args=[w.course.pk, w.assignment.pk])
    w.fields = {
        "mode": "rule", "origin": "library", "pick": f"program:{w.program.pk}", "points": "1",
        "title": "Under a rule",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(w.instructor).post(w.form_url, {**w.fields, "rule": RULE})
    assert response.status_code == 302, _text(response)[:2000]
    w.item = Item.objects.get(assignment=w.assignment)
    w.submit_url = reverse("classroom:submit", args=[w.course.pk, w.assignment.pk, w.item.pk])
    return w


def test_only_a_rule_that_changes_the_program_is_accepted(rule_item: SimpleNamespace) -> None:
    w = rule_item
    client = client_for(w.instructor)
    text = _text(client.post(w.form_url, {**w.fields, "rule": "swap-lt-gt"}))
    assert "The rule swap-lt-gt changes nothing in this program. Those that change it: " in text
    assert "swap-add-sub." in text
    text = _text(client.post(w.form_url, w.fields))
    assert "Choose a rule. Those that change this program: swap-add-sub." in text
    response = client.post(w.form_url, {**w.fields, "rule": "<b>no-such-rule</b>"})
    assert response.status_code == 200
    assert "<b>no-such-rule</b>" not in response.content.decode()
    assert Item.objects.filter(assignment=w.assignment).count() == 1
    # The form lists only the rules that change the picked program, with their sentences.
    edit = reverse("classroom:item_edit", args=[w.course.pk, w.assignment.pk, w.item.pk])
    page = _text(client.get(edit))
    assert f"swap-add-sub : {RULES[RULE].text}" in page
    assert "swap-lt-gt :" not in page


def test_the_key_is_the_program_run_for_real_under_the_rule(rule_item: SimpleNamespace) -> None:
    w = rule_item
    run = w.item.key_run
    assert (w.item.mode, w.item.rule, run.rule, run.method) == (Mode.RULE, RULE, RULE, "real")
    assert run.real_trace.data["result"] == "4"
    assert run.standard_trace.data["result"] == "16"
    assert keys.key_status(w.item).ready
    edit = reverse("classroom:item_edit", args=[w.course.pk, w.assignment.pk, w.item.pk])
    text = _text(client_for(w.instructor).get(edit))
    assert "The call returns 4 ." in text
    assert "in standard Python it returns 16 ." in text


def test_the_student_reads_the_rule_and_is_graded_against_its_run(
    rule_item: SimpleNamespace,
) -> None:
    w = rule_item
    client = client_for(w.s1)
    page = client.get(w.item.get_absolute_url())
    body = page.content.decode()
    banner = re.search(r'<div class="banner rule-banner" id="rule-banner"[^>]*>(.*?)</div>', body)
    assert banner is not None
    assert html.escape(RULES[RULE].text, quote=True) in banner.group(1)
    assert 'name="answer"' in body
    # What Python would say is wrong here: the rule's run is the key.
    response = client.post(w.submit_url, {"answer": "16"}, headers=HTMX)
    text = _text(response)
    assert "Wrong · attempt 1" in text
    assert "Not right: try again." in text  # attempts are left: never the value
    assert 'class="result"' not in response.content.decode()
    assert 'id="standard-run"' not in response.content.decode()
    response = client.post(w.submit_url, {"answer": "4"}, headers=HTMX)
    assert "Right · attempt 2" in _text(response)
    # Right: both runs, the rule's stepped through and standard Python's beside it.
    page = client.get(w.item.get_absolute_url())
    text = _text(page)
    assert "The run under the rule" in text
    assert 'id="trace-steps"' in page.content.decode()
    standard = text[text.index("The same program in standard Python") :]
    assert standard.startswith("The same program in standard Python f(5, 3) returns 16 step 1")
    assert [s.score for s in Submission.objects.filter(item=w.item)] == [0.0, 1.0]


def test_models_are_compared_under_the_same_rule(rule_item: SimpleNamespace) -> None:
    w = rule_item

    def model_run(rule: str, verdict: str) -> None:
        RunFactory(program=w.program, method="direct", model="tiny", status=Run.Status.DONE,
                   rule=rule, verdict={"status": verdict})  # fmt: skip

    model_run(RULE, "wrong")  # it answered 16: Python's prior
    model_run(RULE, "correct")
    model_run("", "correct")  # standard Python: another question
    bars = stats.model_bars(w.item)
    assert [(b.right, b.total) for b in bars] == [(1, 2)]
    url = reverse("classroom:item_stats", args=[w.course.pk, w.assignment.pk, w.item.pk])
    text = _text(client_for(w.instructor).get(url))
    assert f"on the same program under the same rule ( {RULE} )" in text


def test_a_program_too_deep_to_rewrite_is_offered_no_rule(db: None) -> None:
    """A sum of 2,993 terms passes the program check but overflows the rewrite's recursion: the
    form says no rule applies (it was a 500 on this page and on the program's own page)."""
    w = course_world()
    a = assignment(w.course)
    deep = library_program(source="x = " + "+".join(["1"] * 2993) + "\n", call="", expected="")
    url = reverse("classroom:item_new", args=[w.course.pk, a.pk])
    fields = {"mode": "rule", "origin": "library", "pick": f"program:{deep.pk}", "points": "1"}
    response = client_for(w.instructor).post(url, {**fields, "rule": RULE})
    assert response.status_code == 200
    assert "No rule changes anything in this program" in _text(response)
    page = client_for(w.instructor).get(reverse("programs:detail", args=[deep.pk]))
    assert page.status_code == 200


def test_the_assignment_lists_the_items_rule(rule_item: SimpleNamespace) -> None:
    w = rule_item
    url = reverse("classroom:assignment_edit", args=[w.course.pk, w.assignment.pk])
    assert f"Execute under a changed rule under {RULE}" in _text(client_for(w.instructor).get(url))
