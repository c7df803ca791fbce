"""The classroom's work and rows are limited from the one table: answers (the student sees the
refusal in the answer box, the answer kept, no attempt used), saving an item and preparing its
key again, new courses, new assignments and items, and join codes tried (a wrong one too)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.classroom.models import Assignment, Course, Item, Membership, Mode, Submission
from playground.runs.models import Run
from tests.classroom.staff_factories import (
    AssignmentFactory,
    LibraryProgramFactory,
    staffed_course,
)
from tests.classroom.student_world import (
    SECRET,
    assignment,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.factories import UserFactory
from tests.limits import assert_refused, fresh_address, public, text

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def _client(user: Any) -> Client:
    client = Client(REMOTE_ADDR=fresh_address())
    client.force_login(user)
    return client


# -- Answers ------------------------------------------------------------------------------------


def test_answers_are_limited_and_the_refused_one_stays_in_the_answer_box(
    settings: Settings,
) -> None:
    settings.PLAYGROUND_LIMITS = public({"puzzle_submissions.user": "2/m"})
    w = course_world()
    work = assignment(w.course)
    item = Item.objects.create(
        assignment=work, mode=Mode.OUTPUT, program=library_program(), title="Reverse"
    )
    hand_made_key(item, real=real_trace(f"'{SECRET}'"))
    url = reverse("classroom:submit", args=[w.course.pk, work.pk, item.pk])
    client = _client(w.s1)
    for _ in range(2):
        assert client.post(url, {"answer": "'abc'"}, headers=HTMX).status_code == 200
    refused = client.post(url, {"answer": "'my third try'"}, headers=HTMX)
    shown = assert_refused(refused, "Too many answers submitted: at most 2 a minute.")
    body = refused.content.decode()
    assert body.lstrip().startswith('<section id="answer"')  # swapped into the answer box
    assert "&#x27;my third try&#x27;</textarea>" in body
    assert "Attempts used: 2" in shown
    assert Submission.objects.filter(student=w.s1).count() == 2
    # Without htmx: the whole page, the answer in its box, nothing recorded.
    page = client.post(url, {"answer": "'plain'"})
    assert_refused(page, "Too many answers submitted")
    assert "&#x27;plain&#x27;</textarea>" in page.content.decode()
    assert Submission.objects.filter(student=w.s1).count() == 2
    # Another student has their own count; an unreadable answer is not counted.
    other = _client(w.s2)
    assert other.post(url, {"answer": ""}, headers=HTMX).status_code == 200
    assert other.post(url, {"answer": "'x'"}, headers=HTMX).status_code == 200


# -- Items and their answer keys -----------------------------------------------------------------


def _item_data(program: Any, **fields: Any) -> dict[str, Any]:
    return {
        "mode": "output",
        "title": "Sum",
        "prompt": "",
        "points": "1",
        "origin": "library",
        "pick": f"program:{program.pk}",
        **fields,
    }


def test_saving_items_and_preparing_keys_are_limited_and_the_form_keeps_its_input(
    settings: Settings, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PLAYGROUND_LIMITS = public({"item_prepares.user": "2/m"})
    course, teacher = staffed_course()
    work = AssignmentFactory(course=course)
    program = LibraryProgramFactory()
    client = _client(teacher)
    new = reverse("classroom:item_new", args=[course.pk, work.pk])
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(new, _item_data(program)).status_code == 302
    item = Item.objects.get()
    edit = reverse("classroom:item_edit", args=[course.pk, work.pk, item.pk])
    runs = Run.objects.count()
    # "Prepare the key again" is the second: allowed; the third is a 429 page, no run.
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(edit, {"prepare": "1"}).status_code == 302
    assert Run.objects.count() == runs + 1
    assert_refused(client.post(edit, {"prepare": "1"}), "Too many answer keys prepared")
    assert Run.objects.count() == runs + 1
    # Saving is refused too: the form comes back unsaved with what was typed.
    refused = client.post(edit, _item_data(program, title="Kept title", prompt="Kept prompt"))
    shown = assert_refused(refused, "Too many answer keys prepared: at most 2 a minute.")
    assert "The item was not saved" in shown
    assert 'value="Kept title"' in refused.content.decode()
    assert "Kept prompt" in shown
    item.refresh_from_db()
    assert (item.title, Run.objects.count()) == ("Sum", runs + 1)
    # "More rows" in the checkpoint editor saves nothing and is not counted.
    more = client.post(edit, _item_data(program, more_rows="1"))
    assert more.status_code == 200


def test_new_assignments_and_items_share_one_daily_count(
    settings: Settings, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PLAYGROUND_LIMITS = public({"items.user": "2/d"})
    course, teacher = staffed_course()
    client = _client(teacher)
    data = {"title": "Week 1", "opens_at": "2030-01-01T10:00", "due_at": "2030-01-08T10:00",
            "late_credit": "50", "feedback": "attempt", "action": "save"}  # fmt: skip
    response = client.post(reverse("classroom:assignment_new", args=[course.pk]), data)
    assert response.status_code == 302, text(response)
    work = Assignment.objects.get(course=course)
    program = LibraryProgramFactory()
    new_item = reverse("classroom:item_new", args=[course.pk, work.pk])
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(new_item, _item_data(program)).status_code == 302
    refused = client.post(new_item, _item_data(program, title="Third row"))
    assert_refused(refused, "Too many items and assignments made: at most 2 a day.")
    assert 'value="Third row"' in refused.content.decode()
    assert Item.objects.filter(assignment=work).count() == 1
    refused = client.post(
        reverse("classroom:assignment_new", args=[course.pk]), {**data, "title": "Week 2"}
    )
    assert_refused(refused, "Too many items and assignments made")
    assert 'value="Week 2"' in refused.content.decode()
    assert Assignment.objects.filter(course=course).count() == 1
    # Editing what exists makes no row and is not counted.
    item = Item.objects.get()
    edit = reverse("classroom:item_edit", args=[course.pk, work.pk, item.pk])
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(edit, _item_data(program, title="Renamed")).status_code == 302


# -- Courses and joining -------------------------------------------------------------------------


def test_new_courses_are_limited_per_account(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"courses.user": "1/d"})
    user = UserFactory()
    client = _client(user)
    url = reverse("classroom:course_new")
    assert client.post(url, {"title": "First", "description": ""}).status_code == 302
    refused = client.post(url, {"title": "Second course", "description": "Kept words"})
    shown = assert_refused(refused, "Too many courses made: at most 1 a day.")
    assert 'value="Second course"' in refused.content.decode()
    assert "Kept words" in shown
    assert Course.objects.filter(created_by=user).count() == 1
    assert _client(UserFactory()).post(url, {"title": "Theirs"}).status_code == 302


def test_roster_uploads_are_limited_per_account(settings: Settings) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from playground.classroom.models import Invitation

    settings.PLAYGROUND_LIMITS = public({"rosters.user": "1/d"})
    w = course_world()
    client = _client(w.instructor)
    url = reverse("classroom:course_roster", args=[w.course.pk])

    def upload(name: str) -> Any:
        roster = SimpleUploadedFile("roster.csv", f"{name}@school.example\n".encode())
        return client.post(url, {"file": roster})

    assert upload("ada").status_code == 302
    refused = upload("bob")
    assert_refused(refused, "Too many rosters uploaded: at most 1 a day.")
    assert list(Invitation.objects.values_list("email", flat=True)) == ["ada@school.example"]


def test_join_codes_tried_are_limited_right_or_wrong(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"course_joins.user": "3/h"})
    w = course_world()
    guesser = UserFactory()
    client = _client(guesser)
    url = reverse("classroom:join")
    for code in ("AAAA2222", "BBBB3333", "CCCC4444"):
        response = client.post(url, {"code": code}, headers=HTMX)
        assert "No course has this join code" in text(response)
    # The right code, once over the limit, is refused like a wrong one: guessing stops here.
    refused = client.post(url, {"code": w.course.join_code}, headers=HTMX)
    assert_refused(refused, "Too many join codes tried: at most 3 an hour.")
    assert f'value="{w.course.join_code}"' in refused.content.decode()  # kept in the field
    assert refused.content.decode().lstrip().startswith('<form method="post"')
    assert not Membership.objects.filter(user=guesser).exists()
    # Someone else joins with it.
    newcomer = UserFactory()
    assert _client(newcomer).post(url, {"code": w.course.join_code}).status_code == 302
    assert Membership.objects.filter(user=newcomer, course=w.course).exists()
