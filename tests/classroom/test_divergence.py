"""Spot the divergence: the item page states what counts as a mistake before the student
answers, and grading applies exactly that rule (steps numbered from 1, compared with Python's
steps in order; what a step leaves out is not a mistake); a mark that is not a step of the
model's trace is refused with a message and uses no attempt. The real traces come from the
sandbox; the model's traces are written by hand (the model is not what is tested)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.urls import reverse

from playground import sandbox
from playground.classroom import grading, submissions
from playground.classroom.models import Item, Mode, Submission
from playground.compare import compare_traces
from tests.classroom.student_world import (
    assignment,
    client_for,
    course_world,
    hand_made_key,
    library_program,
)

pytestmark = pytest.mark.django_db

SOURCE = "def f(text):\n    n = len(text)\n    print(n)\n    return n * 2\n"
CALL = "f('ab')"
HTMX = {"HX-Request": "true"}


def _real() -> dict[str, Any]:
    trace = sandbox.run(SOURCE, call=CALL)
    assert trace["status"] == "ok"
    return trace


def _model(*steps: dict[str, Any]) -> dict[str, Any]:
    """A model-written trace of the call, as the trace method stores it."""
    out = [{"i": i, "func": "", "by": "lm", **step} for i, step in enumerate(steps)]
    return {"schema": 1, "status": "ok", "steps": out, "result": None, "stdout": ""}


# The newcomer's case: the call step leaves the argument out (no mistake by the rule); the
# first wrong value is shown at step 3.
CALL_STEP = {"line": 1, "event": "call"}
REPORTED = _model(
    CALL_STEP,
    {"line": 2, "locals": {"text": "'ab'"}},  # right: text is 'ab' there
    {"line": 3, "locals": {"n": "3"}},  # wrong: n is 2
    {"line": 4, "stdout": "3\n"},
    {"line": 4, "event": "return", "locals": {"__return__": "6"}},
)


def _key(emulated: dict[str, Any]) -> grading.Mistake:
    return grading.first_mistake(_real()["steps"], emulated, from_call=True)


def test_values_left_out_are_not_mistakes_the_first_wrong_value_is() -> None:
    key = _key(REPORTED)
    assert (key.step, key.early) == (3, False)
    assert key.reason == "n is 2 there."


@pytest.mark.parametrize(
    ("steps", "answer", "reason"),
    [
        # Skips line 2: its second step is at line 3 while Python's is at line 2.
        ([CALL_STEP, {"line": 3}], "2", "Python is at line 2; the model says line 3."),
        # Goes on after Python has returned.
        ([CALL_STEP, {"line": 2}, {"line": 3}, {"line": 4}, {"line": 4, "event": "return"},
          {"line": 4}], "6", "Python has finished; the model goes on."),
        # Prints what the program does not print there.
        ([CALL_STEP, {"line": 2}, {"line": 3}, {"line": 4, "stdout": "ab\n"}], "4",
         "The program does not print that there."),
        # A variable that does not exist at that moment.
        ([CALL_STEP, {"line": 2, "locals": {"n": "2"}}], "2", "n does not exist there."),
        # Every step right, but Python goes on: it stops early.
        ([CALL_STEP, {"line": 2, "locals": {"text": "'ab'"}}], "early",
         "Python goes on after step 2."),
        # Every step right, to the end, with what it leaves out left out.
        ([CALL_STEP, {"line": 2}, {"line": 3, "locals": {"n": "2"}}, {"line": 4},
          {"line": 4, "event": "return", "locals": {"__return__": "4"}}], "none", ""),
    ],
)  # fmt: skip
def test_the_rule(steps: list[dict[str, Any]], answer: str, reason: str) -> None:
    key = _key(_model(*steps))
    assert key.answer == answer
    assert key.reason == reason


def _item(emulated: dict[str, Any], **fields: Any) -> tuple[Any, Item]:
    w = course_world()
    program = library_program(source=SOURCE, call=CALL, expected="4")
    item = Item.objects.create(
        assignment=assignment(w.course, **fields), mode=Mode.DIVERGENCE, program=program
    )
    real = _real()
    # Stored as the run would store it (older code graded from this comparison).
    comparison = compare_traces(real, emulated, from_call=True).as_dict()
    hand_made_key(item, real=real, emulated=emulated, comparison=comparison)
    return w, item


def test_the_page_states_the_rule_before_the_answer_and_grades_by_it() -> None:
    w, item = _item(REPORTED, max_attempts=2)
    client = client_for(w.s1)
    page = html.unescape(client.get(item.get_absolute_url()).content.decode())
    rule = page.index("What counts as a mistake")
    assert rule < page.index('name="answer"')
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "What a step leaves out is not a mistake : a call step without the arguments" in text
    # Steps are numbered from 1, each with its own choice.
    for number in range(1, 6):
        assert f'<input type="radio" name="answer" value="{number}"' in page
    assert 'value="0"' not in page
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    wrong = html.unescape(client.post(url, {"answer": "1"}, headers=HTMX).content.decode())
    assert "Not right: try again." in wrong
    right = html.unescape(client.post(url, {"answer": "3"}, headers=HTMX).content.decode())
    assert "Right · attempt 2" in " ".join(re.sub(r"<[^>]+>", " ", right).split())


@pytest.mark.parametrize(
    ("mark", "says"),
    [
        ("99999999999999999999", "There is no step 99999999999… in the model's trace (it has 5)."),
        ("-1", "Mark a step number from 1 to 5"),
        ("0", "There is no step 0 in the model's trace (steps are numbered from 1)."),
        ("6", "There is no step 6 in the model's trace (it has 5)."),
        ("٣", "Mark a step number from 1 to 5"),  # an Arabic-Indic digit: not a step number
        ("step three", "Mark a step number from 1 to 5"),
        ("", "Mark the model's first wrong step"),
    ],
)
def test_a_mark_that_is_not_a_step_is_refused_without_using_an_attempt(
    mark: str, says: str
) -> None:
    w, item = _item(REPORTED, max_attempts=1)
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    client = client_for(w.s1)
    response = client.post(url, {"answer": mark}, headers=HTMX)
    assert response.status_code == 200
    assert says in html.unescape(response.content.decode())
    assert not Submission.objects.exists()
    # The one attempt is still there for a real answer.
    assert "Right" in client.post(url, {"answer": "3"}, headers=HTMX).content.decode()
    assert Submission.objects.get().score == 1.0


def test_none_and_early_are_answers() -> None:
    w, item = _item(_model(CALL_STEP, {"line": 2}))
    submission, _ = submissions.submit(item=item, student=w.s1, answer="none")
    assert submission is not None
    assert submission.score == 0.0
    assert "stops early" in submission.feedback["message"]
    submission, _ = submissions.submit(item=item, student=w.s1, answer="Stops early")
    assert submission is not None
    assert submission.score == 1.0


def test_the_teacher_sees_the_key_by_the_same_rule() -> None:
    w, item = _item(REPORTED)
    url = reverse("classroom:item_edit", args=[w.course.pk, item.assignment_id, item.pk])
    page = html.unescape(client_for(w.instructor).get(url).content.decode())
    assert "its first mistake is step 3: n is 2 there." in page
