"""Trace checkpoints that nobody can answer are refused when the item is saved (the program is
run in the sandbox to check them, on the sandbox worker), with line numbers; an item whose key
cannot be answered (a checkpoint saved before this check, a key run that failed) says why in the
assignment's item list, and students cannot spend an attempt on it."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from playground.classroom.keys import key_status
from playground.classroom.models import Item, Mode, Submission
from playground.runs.models import Run
from playground.runs.tasks import execute_real_run
from tests.classroom.staff_factories import (
    AssignmentFactory,
    LibraryProgramFactory,
    logged_in,
    staffed_course,
    student_of,
)
from tests.classroom.student_world import hand_made_key

pytestmark = pytest.mark.django_db

# Five lines (and the newline that ends the last one).
SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
CALL = "f([4, 5, 6])"


def _text(response: Any) -> str:
    page = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(page).split())


def _trace_item(**fields: Any) -> dict[str, Any]:
    return {"mode": "trace", "title": "Sum", "prompt": "", "points": "1", "origin": "library",
            **fields}  # fmt: skip


@pytest.fixture
def world(db: None) -> Any:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    program = LibraryProgramFactory(source=SOURCE, call=CALL)
    url = reverse("classroom:item_new", args=[course.pk, assignment.pk])
    return course, teacher, assignment, program, url


@pytest.fixture
def post(eager: None, django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """POST with the Celery tasks run at once (the checkpoint check, the key's run)."""

    def send(client: Client, url: str, data: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data)

    return send


def test_checkpoints_nobody_can_answer_are_refused_with_line_numbers(
    world: Any, post: Callable[..., Any]
) -> None:
    _, teacher, _, program, url = world
    client = logged_in(teacher)
    data = _trace_item(
        pick=f"program:{program.pk}",
        cp_line=["4", "4", "2", "6"],
        cp_occurrence=["50", "2", "", ""],
        cp_variables=["total", "totl", "total", "total"],
    )
    page = _text(post(client, url, data))
    # The off-by-one: a five-line program has five lines.
    assert "Checkpoint 4: line 6 is not in the program (it has 5 lines)." in page
    assert not Item.objects.exists()

    data.update(cp_line=["4", "4", "2"], cp_occurrence=["50", "2", ""])
    data.update(cp_variables=["total", "totl", "total"])
    page = _text(post(client, url, data))
    assert "Checkpoint 1: line 4 runs only 3 times, so there is no 50th time." in page
    assert (
        "Checkpoint 2: line 4 (2nd time): totl has no value when the line is about to run; "
        "the variables there are total, x, xs." in page
    )
    # Before line 2 runs, total does not exist yet.
    assert (
        "Checkpoint 3: line 2 (1st time): total has no value when the line is about to run; "
        "the variables there are xs." in page
    )
    assert not Item.objects.exists()
    assert 'value="totl"' in html.unescape(post(client, url, data).content.decode())

    data.update(cp_line=["4", "4"], cp_occurrence=["3", "2"], cp_variables=["total", "x, total"])
    assert post(client, url, data).status_code == 302
    item = Item.objects.get()
    assert key_status(item).ready


def test_editing_checkpoints_of_the_same_program_reuses_its_key_run(
    world: Any, post: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    course, teacher, assignment, program, url = world
    client = logged_in(teacher)
    data = _trace_item(pick=f"program:{program.pk}", cp_line=["4"], cp_variables=["total"])
    assert post(client, url, data).status_code == 302
    item = Item.objects.get()
    calls: list[Any] = []
    monkeypatch.setattr(
        "playground.classroom.tasks.check_checkpoints.apply_async",
        lambda *a, **k: calls.append(a),
    )
    edit = reverse("classroom:item_edit", args=[course.pk, assignment.pk, item.pk])
    page = _text(post(client, edit, {**data, "cp_occurrence": ["4"]}))
    assert "Checkpoint 1: line 4 runs only 3 times, so there is no 4th time." in page
    assert calls == []  # checked against the key's own trace: no new run


def test_without_a_sandbox_answer_the_item_is_saved_and_its_key_checks_later(
    world: Any, settings: Any, monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:  # fmt: skip
    course, teacher, assignment, program, url = world
    student = student_of(course, "ada")
    # No sandbox worker takes the task (the broker is real): wait a second only.
    settings.PLAYGROUND_SANDBOX_WALL_S = 0.5
    monkeypatch.setattr("playground.classroom.checkpoints.CHECK_MARGIN_S", 0.5)
    data = _trace_item(
        pick=f"program:{program.pk}", cp_line=["4"], cp_occurrence=["50"], cp_variables=["x"]
    )
    client = logged_in(teacher)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url, data)
    assert response.status_code == 302
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("could not be checked against a real run yet" in n for n in notes), notes
    item = Item.objects.get()
    listing = reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
    assert "being prepared" in _text(client.get(listing))

    # The key's run happens (here, its task's body): the list says what is wrong.
    assert item.key_run is not None
    execute_real_run.run(item.key_run.pk)
    page = _text(client.get(listing))
    assert "cannot be answered Checkpoint 1: line 4 runs only 3 times" in page
    # The student cannot spend an attempt on it.
    item_page = _text(logged_in(student).get(item.get_absolute_url()))
    assert "its answer key has a problem that your instructor must fix" in item_page
    submit = reverse("classroom:submit", args=[course.pk, assignment.pk, item.pk])
    logged_in(student).post(submit, {"0.x": "4"})
    assert not Submission.objects.exists()


def test_an_item_saved_before_the_check_shows_its_problem_in_the_list(world: Any) -> None:
    course, teacher, assignment, program, _ = world
    real = {
        "schema": 1, "status": "ok", "result": "15", "error": None, "stats": {"steps": 2},
        "steps": [
            {"i": 0, "line": 1, "func": "f", "event": "call", "locals": {"xs": "[4, 5, 6]"}},
            {"i": 1, "line": 2, "func": "f"},
        ],
    }  # fmt: skip
    unreachable = Item.objects.create(
        assignment=assignment, mode=Mode.TRACE, program=program, title="Old trace item",
        checkpoints=[{"line": 4, "occurrence": 50, "variables": ["total"]}],
    )  # fmt: skip
    hand_made_key(unreachable, real=real)
    # A model item whose key run failed because the model server was down.
    model_item = Item.objects.create(
        assignment=assignment, mode=Mode.BEAT_MODEL, program=program, title="Beat it",
        model="tiny", method="direct",
    )  # fmt: skip
    model_item.key_run = Run.objects.create(
        program=program, source=program.source, method="direct", model="tiny",
        status=Run.Status.FAILED, error="The model could not answer: the server did not answer.",
    )  # fmt: skip
    model_item.save()
    page = _text(
        logged_in(teacher).get(
            reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
        )
    )
    assert "cannot be answered Checkpoint 1: line 4 never runs, so there is no 50th time." in page
    assert "failed The model could not answer: the server did not answer." in page
    assert " ready " not in page


def test_a_model_item_whose_model_was_never_asked_says_so(world: Any) -> None:
    course, teacher, assignment, program, _ = world
    student = student_of(course, "ada")
    item = Item.objects.create(
        assignment=assignment, mode=Mode.BEAT_MODEL, program=program, title="Beat Python",
        model="tiny", method="coc",
    )  # fmt: skip
    real = {"schema": 1, "status": "ok", "result": "15", "error": None, "steps": [],
            "stats": {"steps": 0}}  # fmt: skip
    run = hand_made_key(item, real=real, prediction="15")
    # Chain of Code ran every line in Python: no model call, Python's value as "prediction".
    Run.objects.filter(pk=run.pk).update(
        method="coc", model_calls=0, verdict={"status": "no_model", "explanation": "..."}
    )
    listing = reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
    page = _text(logged_in(teacher).get(listing))
    assert "ready Chain of Code ran every line of this program in Python and never asked" in page
    submit = reverse("classroom:submit", args=[course.pk, assignment.pk, item.pk])
    answer = _text(
        logged_in(student).post(submit, {"answer": "15"}, headers={"HX-Request": "true"})
    )
    assert "The model was never asked: Python ran this program by itself." in answer
    assert "No model answered" in answer
    assert "both got it" not in answer
    details = Submission.objects.get().feedback["details"]
    assert (details["model_right"], details["beat_model"]) == (False, False)
