"""Extensions and grade overrides join the course's audit log (issue 24): who gave whom what,
when; a student can do neither."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from playground.classroom.models import AuditEvent, Extension, Item, Membership, Mode, Submission
from tests.classroom.student_world import assignment, client_for, course_world, library_program

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action


def test_an_extension_given_and_removed_is_in_the_audit_log() -> None:
    w = course_world()
    a = assignment(w.course)
    url = reverse("classroom:extensions", args=[w.course.pk, a.pk])
    member = Membership.objects.get(course=w.course, user=w.s1)
    due = (a.due_at + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    # A student may not give one, to themselves or anyone.
    refused = client_for(w.s1).post(url, {"student": member.pk, "due_at": due})
    assert refused.status_code == 403
    assert not Extension.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.EXTENSION_GRANTED).exists()

    teacher = client_for(w.instructor)
    assert teacher.post(url, {"student": member.pk, "due_at": due}).status_code == 302
    event = AuditEvent.objects.get(action=Action.EXTENSION_GRANTED)
    assert (event.actor_name, event.subject_name, event.detail["assignment"]) == (
        "teacher", "student1", "Loops",
    )  # fmt: skip
    assert event.detail["due"].startswith((a.due_at + timedelta(days=2)).strftime("%Y-%m-%dT"))
    extension = Extension.objects.get()
    teacher.post(url, {"action": "remove", "extension": extension.pk})
    assert not Extension.objects.exists()
    removed = AuditEvent.objects.get(action=Action.EXTENSION_REMOVED)
    assert removed.subject_name == "student1"
    log = teacher.get(reverse("classroom:audit_log", args=[w.course.pk])).content.decode()
    assert "Extension given" in log
    assert "Extension removed" in log


def test_a_grade_override_and_its_removal_are_in_the_audit_log() -> None:
    w = course_world()
    a = assignment(w.course)
    item = Item.objects.create(assignment=a, mode=Mode.OUTPUT, program=library_program())
    sub = Submission.objects.create(
        item=item, student=w.s1, attempt=1, answer="'x'", score=0.0, credit=0.0,
        status=Submission.Status.GRADED,
    )  # fmt: skip
    url = reverse("classroom:override", args=[w.course.pk, sub.pk])
    assert client_for(w.s1).post(url, {"credit": "100%"}).status_code == 403
    sub.refresh_from_db()
    assert sub.override_credit is None

    teacher = client_for(w.instructor)
    assert teacher.post(url, {"credit": "75%", "comment": "a fair try"}).status_code == 302
    event = AuditEvent.objects.get(action=Action.GRADE_OVERRIDDEN)
    assert event.subject_name == "student1"
    assert (event.detail["credit_before"], event.detail["credit_after"]) == ("0", "0.75")
    assert event.detail["attempt"] == 1
    teacher.post(url, {"action": "clear"})
    cleared = AuditEvent.objects.get(action=Action.OVERRIDE_CLEARED)
    assert (cleared.detail["credit_before"], cleared.detail["credit_after"]) == ("0.75", "0")
