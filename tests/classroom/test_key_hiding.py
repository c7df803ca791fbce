"""What the checkpoint check and the key problems say comes from a program's real run, so they
follow the hiding policy: a student of an open assignment with that program, who teaches a
course of their own, learns nothing from them (not how often a line runs, not which variables
exist there), as the answer-key preview already refuses."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.urls import reverse

from playground.classroom.models import Assignment, Course, Item, Membership, Mode, Role
from playground.classroom.visibility import HIDDEN_MESSAGE
from tests.classroom.student_world import (
    assignment,
    client_for,
    course_world,
    hand_made_key,
    library_program,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"


def _text(response: Any) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def own(db: None) -> tuple[Any, Course, Assignment, Any]:
    """Student s1 of an open assignment with the program, and a course s1 teaches."""
    w = course_world()
    program = library_program(source=SOURCE, call="f([4, 5, 6])", expected="15")
    Item.objects.create(assignment=assignment(w.course), mode=Mode.OUTPUT, program=program)
    mine = Course.objects.create(title="My own", created_by=w.s1)
    Membership.objects.create(course=mine, user=w.s1, role=Role.INSTRUCTOR)
    return w, mine, assignment(mine, title="Mine"), program


def test_the_checkpoint_check_says_nothing_of_a_hidden_program(
    own: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, mine, mine_assignment, program = own
    calls: list[Any] = []
    monkeypatch.setattr(
        "playground.classroom.tasks.check_checkpoints.apply_async",
        lambda *a, **k: calls.append(a),
    )
    url = reverse("classroom:item_new", args=[mine.pk, mine_assignment.pk])
    data = {"mode": "trace", "title": "Probe", "prompt": "", "points": "1", "origin": "library",
            "pick": f"program:{program.pk}", "cp_line": ["4"], "cp_occurrence": ["50"],
            "cp_variables": ["totl"]}  # fmt: skip
    page = _text(client_for(w.s1).post(url, data))
    assert HIDDEN_MESSAGE in page
    assert "runs only" not in page
    assert "variables there" not in page
    assert calls == []  # the program was not run for them
    assert not Item.objects.filter(assignment=mine_assignment).exists()


def test_key_problems_of_a_hidden_program_are_not_listed(own: Any) -> None:
    w, mine, mine_assignment, program = own
    # Saved before the other assignment opened, with a checkpoint its program never reaches.
    item = Item.objects.create(
        assignment=mine_assignment, mode=Mode.TRACE, program=program, title="Old",
        checkpoints=[{"line": 4, "occurrence": 50, "variables": ["total"]}],
    )  # fmt: skip
    real = {"schema": 1, "status": "ok", "result": "15", "error": None, "stats": {"steps": 1},
            "steps": [{"i": 0, "line": 1, "func": "f", "event": "call",
                       "locals": {"xs": "[4, 5, 6]"}}]}  # fmt: skip
    hand_made_key(item, real=real, owner=w.s1)
    client = client_for(w.s1)
    listing = _text(
        client.get(reverse("classroom:assignment_edit", args=[mine.pk, item.assignment_id]))
    )
    assert "hidden while an assignment you take is open" in listing
    assert "never runs" not in listing
    edit = _text(
        client.get(reverse("classroom:item_edit", args=[mine.pk, item.assignment_id, item.pk]))
    )
    assert HIDDEN_MESSAGE in edit
    assert "never runs" not in edit
    # Its teacher's colleague who takes no such assignment sees the problem.
    colleague = UserFactory(username="colleague")
    Membership.objects.create(course=mine, user=colleague, role=Role.ASSISTANT)
    listing = _text(
        client_for(colleague).get(
            reverse("classroom:assignment_edit", args=[mine.pk, item.assignment_id])
        )
    )
    assert "Checkpoint 1: line 4 never runs" in listing
