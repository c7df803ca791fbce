"""The classroom's part of the JSON API (a django-ninja ``Router``, mounted by
``playground/api.py``): an assignment's gradebook for its staff, and its submissions (all for
staff, a student's own for a student). A file of its own, beside ``classroom/views/``, because
it answers JSON errors (404, 403) where the pages raise Django's, by the same access rules."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Router
from ninja.errors import HttpError

from playground.classroom.access import get_assignment
from playground.classroom.gradebook import build
from playground.classroom.models import Assignment, Membership, Submission
from playground.classroom.progress import answer_revealed, feedback_allowed, guarded_message
from playground.runs.api import ErrorOut

router = Router()


def _classroom_assignment(
    request: HttpRequest, course_id: int, assignment_id: int, *, staff: bool
) -> tuple[Assignment, Membership]:
    """The assignment and the requester's membership, with the pages' rules (404 for
    non-members, 403 for a student on staff data)."""
    try:
        return get_assignment(request, course_id, assignment_id, staff=staff)
    except Http404:
        raise HttpError(404, "No such assignment, or you are not in its course.") from None
    except PermissionDenied as exc:
        raise HttpError(403, str(exc) or "Only the course's staff may see this.") from None


@router.get(
    "/courses/{course_id}/assignments/{assignment_id}/gradebook",
    response={200: dict[str, Any], 403: ErrorOut, 404: ErrorOut},
    summary="The gradebook of an assignment (staff)",
)
def classroom_gradebook(request: HttpRequest, course_id: int, assignment_id: int) -> dict[str, Any]:
    assignment, _ = _classroom_assignment(request, course_id, assignment_id, staff=True)
    return build(assignment).as_dict()


@router.get(
    "/courses/{course_id}/assignments/{assignment_id}/submissions",
    response={200: list[dict[str, Any]], 403: ErrorOut, 404: ErrorOut},
    summary="Submissions of an assignment: all of them for staff, a student's own for a student",
)
def classroom_submissions(
    request: HttpRequest, course_id: int, assignment_id: int
) -> list[dict[str, Any]]:
    assignment, member = _classroom_assignment(request, course_id, assignment_id, staff=False)
    submissions = Submission.objects.filter(item__assignment=assignment).select_related(
        "student", "item", "variant"
    )
    staff = member.is_staff_role
    if not staff:
        submissions = submissions.filter(student_id=request.user.pk)
    rows = list(submissions.order_by("submitted_at", "id"))
    revealed: dict[int, bool] = {}
    # Each item's results rule and exam mode decide (the hiding policy's Surface.SCORE).
    shown: dict[int, bool] = {}
    if not staff:
        now = timezone.now()
        for item_id in {s.item_id for s in rows}:
            mine = [s for s in rows if s.item_id == item_id]
            item = mine[0].item
            item.assignment = assignment
            shown[item_id] = feedback_allowed(item, request.user, now)
            scores = [s.score for s in mine if s.score is not None]
            revealed[item_id] = answer_revealed(
                item,
                request.user,
                attempts=len(mine),
                best_score=max(scores) if scores else None,
            )
    out: list[dict[str, Any]] = []
    for sub in rows:
        record: dict[str, Any] = {
            "id": sub.pk,
            "item": sub.item_id,
            "attempt": sub.attempt,
            "answer": sub.answer,
            "submitted_at": sub.submitted_at.isoformat(),
            "late": sub.late,
            "status": sub.status,
            # A varied item: the call this answer was asked (the student's own question).
            "variant": sub.variant.call if sub.variant is not None else None,
        }
        if staff:
            record["student"] = sub.student.get_username()
        if staff or shown[sub.item_id]:
            record.update(
                score=sub.score,
                credit=sub.final_credit,
                message=guarded_message(sub, staff or revealed[sub.item_id]),
                override_comment=sub.override_comment or None,
            )
        out.append(record)
    return out
