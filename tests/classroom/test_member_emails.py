"""Members' e-mail addresses (part of H2 in the 2026-12 security review) are for the course's
instructors and assistants, on the roster (manage page) and the gradebook (and its CSV) only:
not on the override page, not in the extension form's list of students, never to students."""

from __future__ import annotations

import pytest
from django.urls import reverse

from playground.classroom.models import Course
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    SubmissionFactory,
    logged_in,
    student_of,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_members_emails_stay_on_the_roster_and_gradebook(db: None) -> None:
    teacher = UserFactory(username="teacher")
    client = logged_in(teacher)
    client.post(reverse("classroom:course_new"), {"title": "Execution 101"})
    course = Course.objects.get()
    ada = student_of(course, "ada", email="ada@private.example")
    assignment = AssignmentFactory(course=course)
    submission = SubmissionFactory(item=ItemFactory(assignment=assignment), student=ada)
    shown = {
        "manage": reverse("classroom:course_manage", args=[course.pk]),
        "gradebook": reverse("classroom:gradebook", args=[course.pk, assignment.pk]),
        "gradebook.csv": reverse("classroom:gradebook_csv", args=[course.pk, assignment.pk]),
    }
    hidden = {
        "override": reverse("classroom:override", args=[course.pk, submission.pk]),
        "extensions": reverse("classroom:extensions", args=[course.pk, assignment.pk]),
        "submissions": reverse("classroom:submissions", args=[course.pk, assignment.pk]),
        "course": reverse("classroom:course", args=[course.pk]),
    }
    for name, url in shown.items():
        assert "ada@private.example" in client.get(url).content.decode(), name
    for name, url in hidden.items():
        page = client.get(url)
        assert page.status_code == 200, name
        assert "ada@private.example" not in page.content.decode(), name
    # A student sees nobody's address, their own course page included.
    student = logged_in(ada)
    assert "ada@private.example" not in student.get(hidden["course"]).content.decode()
