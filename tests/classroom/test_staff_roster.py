"""The roster page: a CSV roster (a bad file gets a clear error), who may invite whom, changing
roles, and the last instructor, who can be neither demoted nor removed."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from playground.classroom.models import Course, Invitation, Membership, Role
from tests.classroom.staff_factories import (
    MembershipFactory,
    logged_in,
    manage_url,
    staffed_course,
    student_of,
    text,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _roster(client: Client, course: Course, content: bytes) -> str:
    upload = SimpleUploadedFile("roster.csv", content, content_type="text/csv")
    url = reverse("classroom:course_roster", args=[course.pk])
    return text(client.post(url, {"file": upload}, follow=True))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("élève@example.edu\n".encode("latin-1"), "The file is not UTF-8 text (byte 0)."),
        (b"ada\x00@example.edu\n", "The file contains NUL bytes"),
        (b'"' + b"a" * 200_000 + b'"\n', "The file is not a readable CSV file"),
        (b"", "The roster file is empty."),
    ],
    ids=["latin-1", "nul", "huge-field", "empty"],
)
def test_a_bad_roster_file_gets_a_clear_error(db: None, content: bytes, message: str) -> None:
    course, teacher = staffed_course()
    page = _roster(logged_in(teacher), course, content)
    assert message in page
    assert not Invitation.objects.exists()


def test_an_assistant_invites_students_but_not_assistants(db: None) -> None:
    course, _ = staffed_course()
    assistant = UserFactory(username="ta")
    MembershipFactory(course=course, user=assistant, role=Role.ASSISTANT)
    UserFactory(username="mallory")
    page = _roster(logged_in(assistant), course, b"mallory,assistant\nbob@example.edu\n")
    assert "Row 1: only an instructor may invite assistants." in page
    assert list(Invitation.objects.values_list("email", "role")) == [
        ("bob@example.edu", Role.STUDENT)
    ]
    assert not Membership.objects.filter(user__username="mallory").exists()


def test_instructors_change_roles_assistants_cannot(db: None) -> None:
    course, teacher = staffed_course()
    student = student_of(course, "sam")
    member = Membership.objects.get(user=student)
    url = reverse("classroom:member_role", args=[course.pk, member.pk])

    page = text(logged_in(teacher).post(url, {"role": "assistant"}, follow=True))
    member.refresh_from_db()
    assert member.role == Role.ASSISTANT
    assert "sam is now assistant." in page

    # Now an assistant: may see the staff page, but neither change roles nor delete the course.
    assistant = logged_in(student)
    assert assistant.get(manage_url(course)).status_code == 200
    teacher_member = Membership.objects.get(user=teacher)
    demote = reverse("classroom:member_role", args=[course.pk, teacher_member.pk])
    assert assistant.post(demote, {"role": "student"}).status_code == 403
    delete = reverse("classroom:course_delete", args=[course.pk])
    assert assistant.post(delete, {"confirm": course.title}).status_code == 403
    assert Membership.objects.get(user=teacher).role == Role.INSTRUCTOR
    assert Course.objects.filter(pk=course.pk).exists()


def test_the_last_instructor_cannot_be_demoted_or_removed(db: None) -> None:
    course, teacher = staffed_course()
    client = logged_in(teacher)
    me = Membership.objects.get(user=teacher)
    url = reverse("classroom:member_role", args=[course.pk, me.pk])
    for role in ("student", "remove"):
        page = text(client.post(url, {"role": role}, follow=True))
        assert "make someone else an instructor first" in page or "cannot be removed" in page
        me.refresh_from_db()
        assert me.role == Role.INSTRUCTOR

    # With a second instructor, stepping down works and leads to the course's own page.
    other = UserFactory(username="co-teacher")
    MembershipFactory(course=course, user=other, role=Role.INSTRUCTOR)
    response = client.post(url, {"role": "student"})
    assert response["Location"] == reverse("classroom:course", args=[course.pk])
    me.refresh_from_db()
    assert me.role == Role.STUDENT
