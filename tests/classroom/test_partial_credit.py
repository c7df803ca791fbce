"""Partial credit per item (issue 24) for multi-part answers: a trace's checkpoints and the
probes earn credit in proportion to the parts right (as before), or all or nothing, as the
instructor chooses per item."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse

from playground.classroom import grading, submissions
from playground.classroom.models import Item, Mode, PartialCredit, Submission
from tests.classroom.student_world import assignment, client_for, course_world, library_program
from tests.classroom.test_grading import LOOP, keyed  # noqa: F401 (a fixture)
from tests.classroom.test_probe_items import _answers, probe_item  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def test_the_arithmetic() -> None:
    two_of_three = grading.Grade(2 / 3, "2 of 3 right.", details={"probes": []})
    assert grading.partial_credit(two_of_three, PartialCredit.PROPORTIONAL) is two_of_three
    strict = grading.partial_credit(two_of_three, PartialCredit.ALL_OR_NOTHING)
    assert strict.score == 0.0
    assert strict.details["proportional"] == pytest.approx(2 / 3)
    assert strict.message == "2 of 3 right. All or nothing: the credit needs every part right."
    full = grading.Grade(1.0, "3 of 3 right.")
    assert grading.partial_credit(full, PartialCredit.ALL_OR_NOTHING) is full
    unreadable = grading.invalid("Answer question 2.")
    assert grading.partial_credit(unreadable, PartialCredit.ALL_OR_NOTHING) is unreadable


def test_a_trace_item_all_or_nothing(keyed: Callable[..., Item]) -> None:  # noqa: F811
    w = course_world()
    checkpoints = [
        {"line": 4, "occurrence": 3, "variables": ["i", "total"]},
        {"line": 5, "occurrence": 1, "variables": ["total"]},
    ]
    program = library_program(source=LOOP, call="f(4)", expected="6")
    a = assignment(w.course)
    proportional = keyed(Mode.TRACE, program, a, checkpoints=checkpoints)
    strict = keyed(
        Mode.TRACE, program, a, checkpoints=checkpoints,
        partial_credit=PartialCredit.ALL_OR_NOTHING,
    )  # fmt: skip
    nearly = {"0.i": "2", "0.total": "1", "1.total": "7"}  # the last value wrong
    sub, _ = submissions.submit(item=proportional, student=w.s1, answer=nearly)
    assert sub is not None
    assert sub.score == pytest.approx(0.5)
    sub, grade = submissions.submit(item=strict, student=w.s1, answer=nearly)
    assert sub is not None
    assert grade is not None
    assert sub.score == 0.0
    assert sub.credit == 0.0
    assert "All or nothing" in grade.message
    assert grade.details["checkpoints"][0]["right"] == {"i": True, "total": True}  # marks kept
    right = {"0.i": "2", "0.total": "1", "1.total": "6"}
    sub, _ = submissions.submit(item=strict, student=w.s1, answer=right)
    assert sub is not None
    assert sub.score == 1.0


def test_probes_all_or_nothing_on_the_page(probe_item: SimpleNamespace) -> None:  # noqa: F811
    w = probe_item
    Item.objects.filter(pk=w.item.pk).update(partial_credit=PartialCredit.ALL_OR_NOTHING)
    client = client_for(w.s1)
    page = client.get(w.item.get_absolute_url()).content.decode()
    assert 'id="all-or-nothing"' in page
    response = client.post(w.submit_url, _answers(w.questions, {1}), headers=HTMX)
    text = response.content.decode()
    assert "<strong>Wrong</strong>" in text
    assert "All or nothing" in text
    assert Submission.objects.get(item=w.item).score == 0.0


def test_the_item_form_saves_the_choice(probe_item: SimpleNamespace) -> None:  # noqa: F811
    w = probe_item
    url = reverse("classroom:item_edit", args=[w.course.pk, w.assignment.pk, w.item.pk])
    form: dict[str, Any] = {
        "mode": Mode.PROBES, "origin": "library", "pick": f"program:{w.item.program_id}",
        "points": "1", "partial_credit": PartialCredit.ALL_OR_NOTHING, "action": "save",
        "probe_seed": "0",
    }  # fmt: skip
    response = client_for(w.instructor).post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    w.item.refresh_from_db()
    assert w.item.partial_credit == PartialCredit.ALL_OR_NOTHING
    bad = client_for(w.instructor).post(url, {**form, "partial_credit": "most"})
    assert bad.status_code == 200
    assert "not one of the available choices" in bad.content.decode()
