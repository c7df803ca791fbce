"""The audit log of a course: roster, invitation, role and delete events, appended and never
changed (``models.AuditEvent``; a database trigger refuses UPDATE and DELETE)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from playground.classroom.models import AuditEvent, Course

Action = AuditEvent.Action


def _name(user: Any) -> str:
    return user.get_username() if user is not None and getattr(user, "pk", None) else ""


def event(
    action: str,
    *,
    course: Course,
    actor: Any = None,
    subject: Any = None,
    subject_name: str = "",
    **detail: Any,
) -> AuditEvent:
    """The event, not saved (``record`` saves one, ``record_all`` many at once). ``subject``
    is the person the event is about; ``subject_name`` names one without an account (an
    invited e-mail address)."""
    return AuditEvent(
        course_ref=course.pk,
        course_title=course.title[:200],
        actor_ref=getattr(actor, "pk", None),
        actor_name=_name(actor)[:150],
        subject_ref=getattr(subject, "pk", None),
        subject_name=(subject_name or _name(subject))[:254],
        action=action,
        detail=detail,
    )


def record(action: str, *, course: Course, **kwargs: Any) -> AuditEvent:
    entry = event(action, course=course, **kwargs)
    entry.save()
    return entry


def record_all(events: Iterable[AuditEvent]) -> None:
    AuditEvent.objects.bulk_create(list(events), batch_size=500)


def for_course(course: Course) -> Any:
    """The course's events, newest first."""
    return AuditEvent.objects.filter(course_ref=course.pk).order_by("-at", "-id")
