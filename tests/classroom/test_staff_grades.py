"""Grading on the staff pages: extensions that give one student more time, the live submissions
list (refreshing itself, filtered), and a grader's override of the credit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.classroom.models import Extension, Membership, Role, Submission
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    MembershipFactory,
    SubmissionFactory,
    logged_in,
    markup,
    staffed_course,
    student_of,
    text,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_extensions_give_one_student_more_time(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    sam = student_of(course, "sam")
    student_of(course, "kim")
    client = logged_in(teacher)
    url = reverse("classroom:extensions", args=[course.pk, assignment.pk])
    member = Membership.objects.get(user=sam)
    local = timezone.localtime(assignment.due_at)
    early = (local - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    page = text(client.post(url, {"student": member.pk, "due_at": early}))
    assert "this is before the assignment's due time" in page

    later = (local + timedelta(days=3)).replace(second=0, microsecond=0)
    data = {
        "student": member.pk,
        "due_at": later.strftime("%Y-%m-%dT%H:%M"),
        "late_until": (later + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    }
    page = text(client.post(url, data, follow=True))
    extension = Extension.objects.get()
    assert (extension.student, extension.due_at) == (sam, later)
    assert assignment.window(sam) == (later, later + timedelta(days=1))
    assert "Extension for sam saved." in page
    assert "kim" in page  # the others are in the choice of students

    client.post(url, {"action": "remove", "extension": extension.pk})
    assert not Extension.objects.exists()
    teacher_member = Membership.objects.get(user=teacher)
    page = text(client.post(url, {"student": teacher_member.pk, "due_at": data["due_at"]}))
    assert "Select a valid choice." in page  # only students get extensions


def test_the_submissions_list_refreshes_itself_and_filters(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    item = ItemFactory(assignment=assignment, title="Sum")
    sam, kim = student_of(course, "sam"), student_of(course, "kim")
    SubmissionFactory(item=item, student=sam, answer="5", score=0.0, late=True)
    SubmissionFactory(item=item, student=kim, status=Submission.Status.PENDING, score=None)
    client = logged_in(teacher)
    url = reverse("classroom:submissions", args=[course.pk, assignment.pk])
    page = markup(client.get(url))
    assert 'hx-trigger="every 2s"' in page
    assert page.index("kim") < page.index("late")  # newest first
    assert "being graded" in page
    assert "wrong" in page

    htmx = {"HX-Request": "true", "HX-Target": "submission-rows"}
    fragment = client.get(url, {"student": sam.pk}, headers=htmx)
    body = markup(fragment)
    assert "<html" not in body
    assert 'hx-trigger="every 2s"' in body
    assert "1 submission;" in body
    assert "sam" in body
    assert "being graded" not in body


def test_override_sets_the_credit_with_a_comment(db: None) -> None:
    course, _teacher = staffed_course()
    assistant = UserFactory(username="ta")
    MembershipFactory(course=course, user=assistant, role=Role.ASSISTANT)
    item = ItemFactory(assignment=AssignmentFactory(course=course))
    submission = SubmissionFactory(item=item, student=student_of(course, "sam"), score=0.0)
    client = logged_in(assistant)
    url = reverse("classroom:override", args=[course.pk, submission.pk])
    assert "Grade by hand" in text(client.get(url))

    for bad in ("1.5", "50", "half", "-0.1"):
        page = text(client.post(url, {"credit": bad, "comment": ""}))
        assert "0 to 1" in page, bad
    submission.refresh_from_db()
    assert submission.override_credit is None

    page = text(client.post(url, {"credit": "75%", "comment": "Right idea."}, follow=True))
    submission.refresh_from_db()
    assert (submission.override_credit, submission.override_comment) == (0.75, "Right idea.")
    assert submission.overridden_by == assistant
    assert submission.final_credit == 0.75
    assert "set to 75%" in page

    client.post(url, {"action": "clear"})
    submission.refresh_from_db()
    assert submission.override_credit is None
    assert submission.final_credit == 0.0


def test_override_of_another_course_is_not_found(db: None) -> None:
    course, teacher = staffed_course()
    other_course, _ = staffed_course(instructor="other")
    elsewhere = SubmissionFactory(
        item=ItemFactory(assignment=AssignmentFactory(course=other_course))
    )
    url = reverse("classroom:override", args=[course.pk, elsewhere.pk])
    assert logged_in(teacher).post(url, {"credit": "1"}).status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.override_credit is None
