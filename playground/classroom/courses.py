"""Writes of a course as a whole: creating and deleting it, deleting one of its assignments, and
a student's extension of an assignment's deadlines (each deletion logged in the audit log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from playground.classroom import audit
from playground.classroom.models import Assignment, Course, Extension, Membership, Role, Submission


def create_course(
    *, title: str, instructor: Any, description: str = "", time_zone: str = ""
) -> Course:
    with transaction.atomic():
        course = Course.objects.create(
            title=title, description=description, created_by=instructor, time_zone=time_zone
        )
        Membership.objects.create(course=course, user=instructor, role=Role.INSTRUCTOR)
        audit.record(audit.Action.COURSE_CREATED, course=course, actor=instructor)
    return course


def delete_course(course: Course, *, by: Any) -> None:
    """Delete the course with everything in it; its audit log stays (no foreign key)."""
    with transaction.atomic():
        counts = {
            "assignments": course.assignments.count(),
            "members": course.memberships.count(),
            "submissions": Submission.objects.filter(item__assignment__course=course).count(),
        }
        audit.record(audit.Action.COURSE_DELETED, course=course, actor=by, **counts)
        course.delete()


def delete_assignment(assignment: Assignment, *, by: Any) -> None:
    with transaction.atomic():
        submissions = Submission.objects.filter(item__assignment=assignment).count()
        audit.record(
            audit.Action.ASSIGNMENT_DELETED,
            course=assignment.course,
            actor=by,
            assignment=assignment.title,
            assignment_id=assignment.pk,
            items=assignment.items.count(),
            submissions=submissions,
        )
        assignment.delete()


def set_extension(
    *,
    assignment: Assignment,
    student: Any,
    due_at: datetime,
    late_until: datetime | None,
    extra_minutes: int = 0,
    by: Any = None,
) -> Extension:
    """Give (or change) one student's extension: a later due time and late period and, in a
    timed exam, extra minutes; recorded in the audit log."""
    with transaction.atomic():
        extension, _ = Extension.objects.update_or_create(
            assignment=assignment,
            student=student,
            defaults={"due_at": due_at, "late_until": late_until, "extra_minutes": extra_minutes},
        )
        audit.record(
            audit.Action.EXTENSION_GRANTED,
            course=assignment.course,
            actor=by,
            subject=student,
            assignment=assignment.title,
            due=due_at.isoformat(),
            late_until=late_until.isoformat() if late_until else "",
            extra_minutes=extra_minutes,
        )
    return extension


def remove_extension(extension: Extension, *, by: Any) -> None:
    with transaction.atomic():
        assignment = extension.assignment
        audit.record(
            audit.Action.EXTENSION_REMOVED,
            course=assignment.course,
            actor=by,
            subject=extension.student,
            assignment=assignment.title,
        )
        extension.delete()
