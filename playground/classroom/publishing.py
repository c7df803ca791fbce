"""Publishing an assignment's results: an instructor's action, recorded in the course's audit
log. What publishing shows is the hiding policy's (``visibility.decide``, ``Surface.SCORE``):
the items whose results wait for publishing, and every item of an exam-mode assignment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.classroom import audit, signals
from playground.classroom.access import membership
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Assignment, Role


def _instructor(assignment: Assignment, user: Any) -> None:
    member = membership(user, assignment.course_id)
    if member is None or member.role != Role.INSTRUCTOR:
        raise ClassroomError("Only the course's instructors publish results.")


def publish(*, assignment: Assignment, by: Any, now: datetime | None = None) -> None:
    """Show the students their results of the items that wait for publishing (and of an exam)."""
    _instructor(assignment, by)
    with transaction.atomic():
        assignment.published_at = now or timezone.now()
        assignment.save(update_fields=["published_at"])
        audit.record(
            audit.Action.RESULTS_PUBLISHED,
            course=assignment.course,
            actor=by,
            assignment=assignment.title,
            assignment_id=assignment.pk,
        )
        signals.announce_assignment(assignment)


def unpublish(*, assignment: Assignment, by: Any) -> None:
    """Hide those results again (what students saw meanwhile, they saw)."""
    _instructor(assignment, by)
    with transaction.atomic():
        assignment.published_at = None
        assignment.save(update_fields=["published_at"])
        audit.record(
            audit.Action.RESULTS_UNPUBLISHED,
            course=assignment.course,
            actor=by,
            assignment=assignment.title,
            assignment_id=assignment.pk,
        )
        signals.announce_assignment(assignment)
