"""The student's pages: my courses and joining with a code (invitations: test_invitations.py), a
course with each assignment's status, an assignment, and an item in each mode with its answer
form, htmx submissions and the feedback rules."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from playground.classroom import authoring, marking
from playground.classroom.models import (
    Assignment,
    Extension,
    Feedback,
    Item,
    Membership,
    Mode,
    Role,
    Submission,
)
from tests.classroom.student_world import (
    SECRET,
    assignment,
    client_for,
    close,
    course_world,
    hand_made_key,
    library_program,
    puzzle,
    real_trace,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def _text(response: Any) -> str:
    """The page's text, tags removed and entities decoded, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


# -- My courses, joining ------------------------------------------------------------------------


def test_my_courses_lists_my_courses_with_my_role() -> None:
    w = course_world()
    response = client_for(w.s1).get(reverse("classroom:courses"))
    text = _text(response)
    assert "Execution 101 Student" in text
    assert reverse("classroom:course_new") in response.content.decode()
    assert "Execution 101 Instructor" in _text(
        client_for(w.instructor).get(response.request["PATH_INFO"])
    )
    assert "in no course yet" in _text(client_for(w.outsider).get(reverse("classroom:courses")))


def test_joining_with_a_code() -> None:
    w = course_world()
    client = client_for(w.outsider)
    response = client.post(reverse("classroom:join"), {"code": f" {w.course.join_code.lower()} "})
    assert response.status_code == 302
    assert response["Location"] == w.course.get_absolute_url()
    member = Membership.objects.get(course=w.course, user=w.outsider)
    assert member.role == Role.STUDENT
    assert "You joined “Execution 101” as student." in _text(client.get(response["Location"]))
    # Joining again says so, and changes nothing.
    response = client.post(reverse("classroom:join"), {"code": w.course.join_code}, follow=True)
    assert "already in" in _text(response)
    assert Membership.objects.filter(user=w.outsider).count() == 1


def test_a_wrong_code_says_so_and_keeps_what_was_typed() -> None:
    client = client_for(UserFactory())
    response = client.post(reverse("classroom:join"), {"code": "NOPE<b>"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "No course has this join code" in body
    assert 'value="NOPE&lt;b&gt;"' in body
    partial = client.post(reverse("classroom:join"), {"code": "nope"}, headers=HTMX)
    assert partial.content.decode().lstrip().startswith("<form")
    assert "No course has this join code" in partial.content.decode()
    assert "Enter the course" in _text(client.post(reverse("classroom:join"), {"code": " "}))
    assert not Membership.objects.exists()


def test_a_closed_course_cannot_be_joined() -> None:
    w = course_world()
    type(w.course).objects.filter(pk=w.course.pk).update(join_enabled=False)
    response = client_for(w.outsider).post(reverse("classroom:join"), {"code": w.course.join_code})
    assert "joining is closed" in _text(response)


def test_a_join_link_fills_in_the_form() -> None:
    response = client_for(UserFactory()).get(
        reverse("classroom:join") + "?code=ABCD2345", follow=True
    )
    assert 'value="ABCD2345"' in response.content.decode()


# -- A course and an assignment ------------------------------------------------------------------


def _graded(item: Item, student: Any, credit: float, **fields: Any) -> Submission:
    attempt = Submission.objects.filter(item=item, student=student).count() + 1
    values = {"status": Submission.Status.GRADED, "score": credit, "credit": credit, **fields}
    return Submission.objects.create(
        item=item, student=student, attempt=attempt, answer="1", **values
    )


def _statuses(response: Any) -> dict[str, str]:
    body = response.content.decode()
    found = re.findall(
        r"<strong>([^<]+)</strong></a>\s*<span class=\"tag[^\"]*\" data-status=\"(\w+)\"", body
    )
    return dict(found)


def test_the_course_page_gives_each_assignment_its_status(settings: Settings) -> None:
    settings.TIME_ZONE = "America/Los_Angeles"
    w = course_world()
    now = timezone.now()
    program = library_program()

    def with_items(title: str, n: int, **fields: Any) -> list[Item]:
        a = assignment(w.course, title=title, **fields)
        return [
            Item.objects.create(assignment=a, mode=Mode.OUTPUT, program=program) for _ in range(n)
        ]

    with_items("Untouched", 2)
    half = with_items("Half done", 2)
    _graded(half[0], w.s1, 1.0)
    done = with_items("All done", 2, feedback=Feedback.AFTER_DUE)
    for it in done:
        _graded(it, w.s1, 1.0)
    with_items(
        "Running late", 1, due_at=now - timedelta(hours=1), late_until=now + timedelta(hours=1)
    )
    past = with_items(
        "Past", 2, opens_at=now - timedelta(days=3), due_at=now - timedelta(days=2), late_until=None
    )
    _graded(past[0], w.s1, 0.5)
    with_items("Future", 1, opens_at=now + timedelta(days=1), due_at=now + timedelta(days=2))

    response = client_for(w.s1).get(w.course.get_absolute_url())
    assert _statuses(response) == {
        "Untouched": "not_started",
        "Half done": "in_progress",
        "All done": "submitted",
        "Running late": "late",
        "Past": "graded",
    }
    text = _text(response)
    assert "Future" not in text
    assert "Manage the course" not in text
    # Scores where feedback is allowed: after each attempt, or once the window has ended.
    assert "score 1 / 2 (50%)" in text  # half done
    assert "score 0.5 / 2 (25%)" in text  # past
    assert "score 2 / 2" not in text  # all done: feedback after the due time
    # Times in the site's time zone.
    assert re.search(r"Due \d+ \w+ \d{4}, \d\d:\d\d P[SD]T", text)

    staff = client_for(w.instructor).get(w.course.get_absolute_url())
    assert reverse("classroom:course_manage", args=[w.course.pk]) in staff.content.decode()
    assert "Future" in _text(staff)


def test_the_due_time_shown_includes_the_students_extension(settings: Settings) -> None:
    settings.TIME_ZONE = "Europe/Paris"
    w = course_world()
    a = assignment(w.course, due_at=timezone.now() + timedelta(days=1))
    a.due_at = a.due_at.replace(hour=9, minute=0, second=0, microsecond=0)
    a.save()
    Extension.objects.create(
        assignment=a, student=w.s1, due_at=a.due_at + timedelta(days=2, hours=3)
    )
    local = timezone.localtime(a.due_at + timedelta(days=2, hours=3))
    own = _text(client_for(w.s1).get(w.course.get_absolute_url()))
    assert f"Due {local:%-d %b %Y, %H:%M}" in own
    other = _text(client_for(w.s2).get(w.course.get_absolute_url()))
    assert f"Due {timezone.localtime(a.due_at):%-d %b %Y, %H:%M}" in other


def test_the_assignment_page_lists_items_with_attempts_and_best_credit() -> None:
    w = course_world()
    a = assignment(w.course, max_attempts=3)
    program = library_program()
    first = Item.objects.create(
        assignment=a, mode=Mode.OUTPUT, program=program, title="First", position=0
    )
    Item.objects.create(assignment=a, mode=Mode.TRACE, program=program, title="Second", position=1)
    _graded(first, w.s1, 0.0)
    _graded(first, w.s1, 0.5, late=True)
    text = _text(client_for(w.s1).get(a.get_absolute_url()))
    assert text.index("First") < text.index("Second")
    assert "Attempts 2 / 3 · best credit 50%" in text
    assert "Attempts 0 / 3" in text

    Assignment.objects.filter(pk=a.pk).update(feedback=Feedback.AFTER_DUE)
    text = _text(client_for(w.s1).get(a.get_absolute_url()))
    assert "best credit" not in text
    assert "Attempts 2 / 3 · submitted" in text


def test_students_do_not_see_an_assignment_before_it_opens() -> None:
    w = course_world()
    a = assignment(w.course, opens_at=timezone.now() + timedelta(hours=1))
    assert client_for(w.s1).get(a.get_absolute_url()).status_code == 404
    assert client_for(w.instructor).get(a.get_absolute_url()).status_code == 200


# -- An item, its form, submitting ---------------------------------------------------------------


@pytest.fixture
def output_item(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> SimpleNamespace:
    w = course_world()
    w.assignment = assignment(w.course, max_attempts=3)
    w.item = Item.objects.create(
        assignment=w.assignment, mode=Mode.OUTPUT, program=library_program(), title="Reverse"
    )
    with django_capture_on_commit_callbacks(execute=True):
        authoring.prepare_item(w.item, by=w.instructor)
    w.item.refresh_from_db()
    w.submit_url = reverse("classroom:submit", args=[w.course.pk, w.assignment.pk, w.item.pk])
    return w


def test_an_output_item_shows_the_program_and_a_value_field(output_item: SimpleNamespace) -> None:
    w = output_item
    response = client_for(w.s1).get(w.item.get_absolute_url())
    body = response.content.decode()
    assert 'class="highlight"' in body  # the highlighted program
    assert "f(&#x27;1377-qz&#x27;)" in body
    assert 'name="answer"' in body
    assert f'hx-post="{w.submit_url}"' in body
    assert SECRET not in body
    assert "Attempts used: 0 of 3" in _text(response)


def test_an_htmx_answer_gets_its_result_and_the_real_run(output_item: SimpleNamespace) -> None:
    w = output_item
    client = client_for(w.s1)
    response = client.post(w.submit_url, {"answer": "'abc'"}, headers=HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="answer"')
    text = _text(response)
    assert "Wrong · attempt 1" in text
    # Attempts are left: right or wrong only, never the answer (it would be copied into the
    # next attempt), and no real run yet.
    assert SECRET not in text
    assert 'id="trace-steps"' not in body
    assert "Attempts used: 1 of 3" in text
    assert SECRET not in client.get(w.item.get_absolute_url()).content.decode()
    # Right: now the answer can no longer help, so the real run arrives with the result.
    response = client.post(w.submit_url, {"answer": f"'{SECRET}'"}, headers=HTMX)
    body = response.content.decode()
    assert "Right · attempt 2" in _text(response)
    assert 'id="key-trace" hx-swap-oob="true"' in body
    assert 'id="trace-steps"' in body
    # The page now shows the viewer: the next answer does not send it again.
    page = client.get(w.item.get_absolute_url()).content.decode()
    assert 'id="trace-steps"' in page
    assert 'name="has_viewer" value="1"' in page
    response = client.post(w.submit_url, {"answer": f"'{SECRET}'", "has_viewer": "1"}, headers=HTMX)
    assert "Right · attempt 3" in _text(response)
    assert "hx-swap-oob" not in response.content.decode()


def test_the_answer_is_revealed_when_no_attempt_is_left(output_item: SimpleNamespace) -> None:
    w = output_item
    client = client_for(w.s1)
    for attempt in (1, 2):
        text = _text(client.post(w.submit_url, {"answer": f"'no{attempt}'"}, headers=HTMX))
        assert SECRET not in text
    text = _text(client.post(w.submit_url, {"answer": "'no3'"}, headers=HTMX))
    assert "Attempts used: 3 of 3" in text
    assert SECRET in text  # the last attempt is used: the answer and the real run


def test_a_malformed_answer_keeps_its_text_and_uses_no_attempt(
    output_item: SimpleNamespace,
) -> None:
    w = output_item
    client = client_for(w.s1)
    response = client.post(w.submit_url, {"answer": "[1, 2"}, headers=HTMX)
    body = response.content.decode()
    assert "Write the value as a Python literal" in body
    assert ">[1, 2</textarea>" in body
    assert "Attempts used: 0 of 3" in _text(response)
    assert not Submission.objects.exists()
    empty = client.post(w.submit_url, {"answer": "   "}, headers=HTMX)
    assert "Write your answer first." in empty.content.decode()
    # Without htmx: the whole page, the text kept.
    page = client.post(w.submit_url, {"answer": "<b>[1</b>"})
    assert page.status_code == 200
    assert "&lt;b&gt;[1&lt;/b&gt;</textarea>" in page.content.decode()
    assert not Submission.objects.exists()


def test_a_plain_post_redirects_back_with_the_result(output_item: SimpleNamespace) -> None:
    w = output_item
    client = client_for(w.s1)
    response = client.post(w.submit_url, {"answer": f"'{SECRET}'"})
    assert response.status_code == 302
    assert response["Location"] == w.item.get_absolute_url()
    assert "Submitted (attempt 1): Right." in _text(client.get(response["Location"]))


def test_no_attempts_left_and_closed_are_said_plainly(output_item: SimpleNamespace) -> None:
    w = output_item
    client = client_for(w.s1)
    for answer in ("1", "2", "3"):
        client.post(w.submit_url, {"answer": answer}, headers=HTMX)
    response = client.post(w.submit_url, {"answer": "4"}, headers=HTMX)
    assert "No attempts left (the limit is 3)." in _text(response)
    page = client.get(w.item.get_absolute_url())
    assert "No attempts left" in _text(page)
    assert 'name="answer"' not in page.content.decode()
    assert Submission.objects.count() == 3

    other = client_for(w.s2)
    close(w.assignment)
    response = other.post(w.submit_url, {"answer": "4"}, headers=HTMX)
    assert "The assignment is closed." in _text(response)
    assert "This assignment closed on" in _text(other.get(w.item.get_absolute_url()))
    # Without htmx: the page, with why and the answer shown back (nothing typed is lost).
    response = other.post(w.submit_url, {"answer": "'kept-4'"})
    assert response.status_code == 409
    assert "The assignment is closed." in _text(response)
    assert "kept-4" in _text(response)


def test_staff_see_the_key_and_cannot_submit(output_item: SimpleNamespace) -> None:
    w = output_item
    client = client_for(w.instructor)
    page = client.get(w.item.get_absolute_url())
    assert SECRET in page.content.decode()
    assert 'name="answer"' not in page.content.decode()
    response = client.post(w.submit_url, {"answer": "1"})
    assert response.status_code == 409
    assert "Only the course's students" in _text(response)
    assert not Submission.objects.exists()


def test_feedback_after_the_due_time_shows_only_submitted_until_then(
    output_item: SimpleNamespace,
) -> None:
    w = output_item
    Assignment.objects.filter(pk=w.assignment.pk).update(feedback=Feedback.AFTER_DUE)
    client = client_for(w.s1)
    response = client.post(w.submit_url, {"answer": "'abc'"}, headers=HTMX)
    text = _text(response)
    assert "Submitted (attempt 1)" in text
    assert "Results are shown after" in text
    assert "Wrong" not in text
    assert SECRET not in response.content.decode()
    assert SECRET not in client.get(w.item.get_absolute_url()).content.decode()
    response = client.post(w.submit_url, {"answer": "'abc'"})
    assert "Submitted (attempt 2)." in _text(client.get(response["Location"]))

    close(w.assignment)
    page = client.get(w.item.get_absolute_url())
    assert "Wrong · attempt 2" in _text(page)
    assert SECRET in page.content.decode()


def test_a_trace_item_has_a_field_per_variable_per_checkpoint(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    w = course_world()
    source = (
        "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"
    )
    item = Item.objects.create(
        assignment=assignment(w.course),
        mode=Mode.TRACE,
        program=library_program(source=source, call="f(4)", expected="6"),
        checkpoints=[
            {"line": 4, "occurrence": 3, "variables": ["i", "total"]},
            {"line": 5, "occurrence": 1, "variables": ["total"]},
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        authoring.prepare_item(item, by=w.instructor)
    client = client_for(w.s1)
    page = client.get(item.get_absolute_url())
    body = page.content.decode()
    for name in ("0.i", "0.total", "1.total"):
        assert f'name="{name}"' in body
    assert "line 4, 3rd time" in _text(page)
    assert "line 5, 1st time" in _text(page)
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    missing = client.post(url, {"0.i": "2", "0.total": "1"}, headers=HTMX)
    assert "Fill in total at checkpoint 2." in _text(missing)
    assert 'name="0.total" value="1"' in missing.content.decode()
    response = client.post(url, {"0.i": "2", "0.total": "5", "1.total": "6"}, headers=HTMX)
    text = _text(response)
    assert "Partly right" in text
    assert "wrong it was 1" not in text  # attempts are left: which fields, not their values
    assert Submission.objects.get().answer == {"0.i": "2", "0.total": "5", "1.total": "6"}


def test_a_puzzle_answer_is_polled_until_it_is_graded(eager: None) -> None:
    w = course_world()
    p = puzzle()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.PUZZLE, puzzle=p)
    client = client_for(w.s1)
    page = client.get(item.get_absolute_url()).content.decode()
    assert "sat" in page
    assert "ans_type" not in page
    assert "the-reference-solution" not in page
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    response = client.post(url, {"answer": "'ababab'"}, headers=HTMX)  # the task waits on commit
    body = response.content.decode()
    submission = Submission.objects.get()
    assert submission.status == Submission.Status.PENDING
    poll = f'hx-get="{item.get_absolute_url()}?submission={submission.pk}"'
    assert poll in body
    assert 'hx-trigger="every 1s"' in body

    still = client.get(f"{item.get_absolute_url()}?submission={submission.pk}", headers=HTMX)
    assert 'hx-trigger="every 1s"' in still.content.decode()
    marking.grade_puzzle(submission)
    done = client.get(f"{item.get_absolute_url()}?submission={submission.pk}", headers=HTMX)
    assert done.content.decode().lstrip().startswith('<div id="result"')
    assert "hx-trigger" not in done.content.decode()
    assert "Right · attempt 1" in _text(done)
    # Someone else's submission is not theirs to poll.
    other = client_for(w.s2).get(f"{item.get_absolute_url()}?submission={submission.pk}")
    assert other.status_code == 404


def test_predict_the_input_shows_the_output_never_the_call_and_grades_the_call(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """The item asks ``f(??) == <output>`` (the output from the key's real run); the program's
    own call, which is an answer, is not on the page until the answers are revealed. A call is
    graded by running it (the task), and the message names only the output and what the
    student's own call returned."""
    w = course_world()
    source = "def f(text, n):\n    return text[::-1] * n\n"
    own = library_program(source=source, call="f('ab', 2)", expected="", dataset="user",
                          is_public=False, external_id="")  # fmt: skip
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.INPUT, program=own)
    hand_made_key(item, real=real_trace("'baba'"))
    client = client_for(w.s1)
    page = client.get(item.get_absolute_url())
    text = _text(page)
    assert "Predict the input" in text
    assert "Find a call such that assert f(??) == 'baba' holds." in text
    assert "f('ab', 2)" not in text
    assert "Your call" in text
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"answer": "f('ba', 2)"}, headers=HTMX)
    assert response.status_code == 200
    done = client.get(item.get_absolute_url())
    assert "Wrong: f('ba', 2) returns 'abab', not 'baba'." in _text(done)
    assert "f('ab', 2)" not in _text(done)  # attempts are left: the key's call stays hidden
    bad = client.post(url, {"answer": "__import__('os')"}, headers=HTMX)
    assert "Write a call of f with literal arguments" in _text(bad)
    assert Submission.objects.count() == 1


def test_spot_the_divergence_shows_the_models_steps_escaped_and_not_the_real_trace() -> None:
    w = course_world()
    item = Item.objects.create(
        assignment=assignment(w.course), mode=Mode.DIVERGENCE, program=library_program()
    )
    steps = [
        {"i": 0, "event": "call", "line": 1, "func": "f", "locals": {"s": "'1377-qz'"}},
        {
            "i": 1,
            "event": "line",
            "line": 2,
            "func": "f",
            "locals": {"x": "<script>alert(1)</script>"},
        },
        {"i": 2, "event": "return", "line": 2, "func": "f", "locals": {}, "stdout": "<b>hi</b>"},
    ]
    real = real_trace(
        f"'{SECRET}'", [{"i": 0, "event": "call", "line": 1, "locals": {"s": "'real-only-value'"}}]
    )
    hand_made_key(item, real=real, emulated={**real_trace("'nope'"), "steps": steps})
    client = client_for(w.s1)
    page = client.get(item.get_absolute_url())
    body = page.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;b&gt;hi&lt;/b&gt;" in body
    assert "real-only-value" not in body
    assert SECRET not in body
    # Numbered from 1, as the real viewer counts.
    assert re.search(
        r'<li value="1"><label><input type="radio" name="answer" value="1" > '
        r'<span class="muted">step 1</span>',
        body,
    )
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    assert "Mark the model's first wrong step" in _text(
        client.post(url, {"answer": ""}, headers=HTMX)
    )
    # Its first step shows s with another value than the real one.
    response = client.post(url, {"answer": "1"}, headers=HTMX)
    assert "Right · attempt 1" in _text(response)
    assert "real-only-value" not in response.content.decode()


def test_beat_the_model_shows_how_the_model_did_after_grading() -> None:
    w = course_world()
    item = Item.objects.create(
        assignment=assignment(w.course), mode=Mode.BEAT_MODEL, program=library_program()
    )
    hand_made_key(item, real=real_trace(f"'{SECRET}'"), prediction="'<i>guess</i>'")
    client = client_for(w.s1)
    assert "guess" not in client.get(item.get_absolute_url()).content.decode()
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    response = client.post(url, {"answer": f"'{SECRET}'"}, headers=HTMX)
    text = _text(response)
    assert "You beat the model." in text
    assert "The model answered '<i>guess</i>' : wrong." in text
    assert "&lt;i&gt;guess&lt;/i&gt;" in response.content.decode()
