"""Leaving a course, and why it is no way out of exam mode: a student may always leave (nobody
is held in a course they did not want), but whoever leaves during an exam cannot come back,
by code or by invitation, before that exam ends; they can no longer answer it either. Exam
mode binds the memberships a student accepted, and only those."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.classroom.models import Assignment, AuditEvent, Invitation, Membership, Role
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    MembershipFactory,
    logged_in,
    staffed_course,
    student_of,
)
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db


def text(response: Any) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def exam() -> SimpleNamespace:
    course, teacher = staffed_course(title="Execution 101")
    now = timezone.now()
    assignment = AssignmentFactory(
        course=course,
        title="Midterm",
        exam_mode=True,
        opens_at=now - timedelta(minutes=10),
        due_at=now + timedelta(hours=2),
    )
    item = ItemFactory(assignment=assignment)
    sam = student_of(course, "sam")
    program = ProgramFactory(owner=sam)
    return SimpleNamespace(
        course=course, teacher=teacher, assignment=assignment, item=item, sam=sam, program=program
    )


def _run(client: Any, program: Any) -> Any:
    return client.post(reverse("runs:start", args=[program.pk]), {"method": "real"})


def test_leaving_during_an_exam_is_final_until_it_ends(exam: SimpleNamespace) -> None:
    sam = logged_in(exam.sam)
    refused = _run(sam, exam.program)
    assert refused.status_code == 403
    assert "Exam mode" in text(refused)

    response = sam.post(reverse("classroom:leave", args=[exam.course.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(user=exam.sam).exists()
    left = AuditEvent.objects.get(action="member.left")
    assert (left.actor_name, left.detail["exam"]) == ("sam", "Midterm")

    # Out of the course, out of the exam: no answers any more...
    submit = reverse("classroom:submit", args=[exam.course.pk, exam.assignment.pk, exam.item.pk])
    assert sam.post(submit, {"answer": "6"}).status_code == 404
    # ...and no way back before it ends: not with the code, not with an invitation.
    page = text(sam.post(reverse("classroom:join"), {"code": exam.course.join_code}))
    assert "You left this course during its exam “Midterm”: you can come back after it ends" in page
    invitation = Invitation.objects.create(course=exam.course, invitee=exam.sam)
    answer = reverse("classroom:invitation_answer", args=[invitation.pk])
    page = text(sam.post(answer, {"action": "accept"}, follow=True))
    assert "you can come back after it ends" in page
    assert not Membership.objects.filter(user=exam.sam).exists()
    assert Invitation.objects.get(pk=invitation.pk).status == Invitation.Status.PENDING

    # Once the exam is over, the code works again.
    Assignment.objects.filter(pk=exam.assignment.pk).update(
        due_at=timezone.now() - timedelta(minutes=1)
    )
    sam.post(reverse("classroom:join"), {"code": exam.course.join_code})
    assert Membership.objects.get(user=exam.sam).role == Role.STUDENT


def test_an_extension_keeps_the_door_closed_until_it_ends(exam: SimpleNamespace) -> None:
    Assignment.objects.filter(pk=exam.assignment.pk).update(
        due_at=timezone.now() - timedelta(minutes=1)
    )
    exam.assignment.extensions.create(student=exam.sam, due_at=timezone.now() + timedelta(hours=1))
    sam = logged_in(exam.sam)
    sam.post(reverse("classroom:leave", args=[exam.course.pk]))
    page = text(sam.post(reverse("classroom:join"), {"code": exam.course.join_code}))
    assert "you can come back after it ends" in page


def test_leaving_outside_an_exam_leaves_the_door_open(exam: SimpleNamespace) -> None:
    Assignment.objects.filter(pk=exam.assignment.pk).update(
        opens_at=timezone.now() + timedelta(days=1), due_at=timezone.now() + timedelta(days=2)
    )
    sam = logged_in(exam.sam)
    sam.post(reverse("classroom:leave", args=[exam.course.pk]))
    assert "exam" not in AuditEvent.objects.get(action="member.left").detail
    sam.post(reverse("classroom:join"), {"code": exam.course.join_code})
    assert Membership.objects.filter(user=exam.sam).exists()


def test_exam_mode_binds_an_accepted_invitation(exam: SimpleNamespace) -> None:
    ada = UserFactory(username="ada")
    program = ProgramFactory(owner=ada)
    client = logged_in(ada)
    assert _run(client, program).status_code == 302  # invited is not enrolled
    invitation = Invitation.objects.create(course=exam.course, invitee=ada)
    assert _run(client, program).status_code == 302
    client.post(reverse("classroom:invitation_answer", args=[invitation.pk]), {"action": "accept"})
    refused = _run(client, program)
    assert refused.status_code == 403
    assert "Exam mode" in text(refused)


def test_the_only_instructor_cannot_leave(exam: SimpleNamespace) -> None:
    teacher = logged_in(exam.teacher)
    url = reverse("classroom:leave", args=[exam.course.pk])
    page = text(teacher.post(url, follow=True))
    assert "You are the course's only instructor: make someone else an instructor first" in page
    assert Membership.objects.filter(user=exam.teacher).exists()
    MembershipFactory(course=exam.course, user=UserFactory(), role=Role.INSTRUCTOR)
    assert teacher.post(url).status_code == 302
    assert not Membership.objects.filter(user=exam.teacher).exists()


def test_leaving_is_a_post_by_a_member(exam: SimpleNamespace) -> None:
    url = reverse("classroom:leave", args=[exam.course.pk])
    assert logged_in(exam.sam).get(url).status_code == 405
    assert logged_in(UserFactory()).post(url).status_code == 404
    anonymous = logged_in(exam.sam)
    anonymous.logout()
    assert "/accounts/login" in anonymous.post(url)["Location"]
    assert Membership.objects.filter(user=exam.sam).exists()
