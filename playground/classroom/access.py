"""Who may see what in a course. Not a member: 404 (the course's existence is not revealed).
A student on a staff page: 403. Staff = instructor or assistant; only an instructor may delete
the course or change roles."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from playground.classroom.models import STAFF_ROLES, Assignment, Course, Item, Membership, Role


def membership(user: Any, course_id: int) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(course_id=course_id, user=user).first()


def get_course(request: HttpRequest, pk: int, *, staff: bool = False,
               instructor: bool = False) -> tuple[Course, Membership]:  # fmt: skip
    """The course and the requester's membership; 404 for non-members, 403 for a student on a
    staff page (or an assistant on an instructor-only one)."""
    member = membership(request.user, pk)
    if member is None:
        raise Http404("No such course, or you are not in it.")
    if instructor and member.role != Role.INSTRUCTOR:
        raise PermissionDenied("Only the course's instructors may do this.")
    if staff and member.role not in STAFF_ROLES:
        raise PermissionDenied("Only the course's staff may see this.")
    return member.course, member


def get_assignment(request: HttpRequest, course_id: int, pk: int, *, staff: bool = False
                   ) -> tuple[Assignment, Membership]:  # fmt: skip
    course, member = get_course(request, course_id, staff=staff)
    assignment = Assignment.objects.filter(course=course, pk=pk).first()
    if assignment is None:
        raise Http404("No such assignment.")
    if not member.is_staff_role and not _visible_to_students(assignment):
        raise Http404("No such assignment.")
    return assignment, member


def get_item(request: HttpRequest, course_id: int, assignment_id: int, pk: int, *,
             staff: bool = False) -> tuple[Item, Membership]:  # fmt: skip
    assignment, member = get_assignment(request, course_id, assignment_id, staff=staff)
    item = (
        Item.objects.filter(assignment=assignment, pk=pk)
        .select_related("program", "puzzle", "key_run", "assignment")
        .first()
    )
    if item is None:
        raise Http404("No such item.")
    return item, member


def _visible_to_students(assignment: Assignment) -> bool:
    from django.utils import timezone

    return assignment.opens_at <= timezone.now()
