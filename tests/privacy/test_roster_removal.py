"""An instructor removes a student from a course: the student loses the course's pages and API
at once, their submissions stay out of the gradebook (kept for the grade record, as
docs/PRIVACY.md says), and the audit log records who did it and how many answers stayed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from playground.classroom.models import AuditEvent, Membership, Submission
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    SubmissionFactory,
    logged_in,
    staffed_course,
    student_of,
    text,
)

pytestmark = pytest.mark.django_db


def test_a_removed_student_loses_the_course_at_once_and_the_audit_says_so() -> None:
    course, teacher = staffed_course(title="Execution 101")
    student = student_of(course, "zq-removed")
    assignment = AssignmentFactory(course=course)
    submission = SubmissionFactory(item=ItemFactory(assignment=assignment), student=student)
    as_student = logged_in(student)
    course_page = reverse("classroom:course", args=[course.pk])
    api = f"/api/courses/{course.pk}/assignments/{assignment.pk}/submissions"
    assert as_student.get(course_page).status_code == 200
    assert as_student.get(api).status_code == 200
    member = Membership.objects.get(course=course, user=student)

    response = logged_in(teacher).post(
        reverse("classroom:member_role", args=[course.pk, member.pk]),
        {"role": "remove"},
        follow=True,
    )
    assert "zq-removed was removed from the course" in text(response)

    assert as_student.get(course_page).status_code == 404
    assert as_student.get(api).status_code == 404
    assert course.pk not in [m.course_id for m in Membership.objects.filter(user=student)]
    # Kept for the grade record, out of the gradebook.
    assert Submission.objects.filter(pk=submission.pk).exists()
    gradebook = logged_in(teacher).get(reverse("classroom:course_gradebook", args=[course.pk]))
    assert "zq-removed" not in text(gradebook)
    event = AuditEvent.objects.get(course_ref=course.pk, action="member.removed")
    assert (event.actor_name, event.subject_name) == (teacher.username, "zq-removed")
    assert event.detail == {"role": "student", "submissions_kept": 1}
    # The course's audit log page shows it too.
    log = logged_in(teacher).get(reverse("classroom:audit_log", args=[course.pk]))
    assert "Removed from the course" in text(log)


def test_a_student_cannot_remove_anyone() -> None:
    course, teacher = staffed_course()
    student = student_of(course, "zq-plain")
    target = Membership.objects.get(course=course, user=teacher)
    response = logged_in(student).post(
        reverse("classroom:member_role", args=[course.pk, target.pk]), {"role": "remove"}
    )
    assert response.status_code == 403
    assert Membership.objects.filter(pk=target.pk).exists()
