"""Grades back to the LMS: when the classroom says a student's grade on an assignment changed
(``classroom.signals.grade_changed``, after the commit), every LMS link to that assignment
whose platform knows the student gets its score queued (``tasks.send_score``). The score is
read when the task runs, so a retried or repeated task sends the grade as it is then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from playground.classroom import gradebook, visibility
from playground.classroom.models import Assignment, ExamStart
from playground.classroom.signals import grade_changed
from playground.lti.models import LtiUser, ResourceLink, ScoreSend


def connect() -> None:
    grade_changed.connect(on_grade_changed, dispatch_uid="lti-passback")


def on_grade_changed(
    sender: Any, *, assignment_id: int, student_id: int | None, **kwargs: Any
) -> None:
    if student_id is not None:
        queue(assignment_id=assignment_id, student_id=student_id)
        return
    # Results published (or hidden again): every score already sent for it, sent again.
    rows = ScoreSend.objects.filter(link__assignment_id=assignment_id)
    for student in set(rows.values_list("student_id", flat=True)):
        queue(assignment_id=assignment_id, student_id=student)


def queue(*, assignment_id: int, student_id: int, by: str = "") -> list[int]:
    """Queue the student's score for every link of the assignment that can take it."""
    from playground.lti.tasks import send_score

    platforms = set(
        LtiUser.objects.filter(user_id=student_id).values_list("platform_id", flat=True)
    )
    if not platforms:
        return []
    sent = []
    links = ResourceLink.objects.filter(
        assignment_id=assignment_id, context__platform_id__in=platforms
    )
    for link in links:
        if not link.can_send_scores:
            continue
        row, _ = ScoreSend.objects.update_or_create(
            link=link,
            student_id=student_id,
            defaults={
                "status": ScoreSend.Status.QUEUED,
                "queued_at": timezone.now(),
                "error": "",
                "resends": 0,
            },
        )
        send_score.delay(row.pk, by)
        sent.append(row.pk)
    return sent


@dataclass
class Score:
    given: float | None  # None: the student may not see it yet, nor may the LMS show it
    maximum: float
    grading: str  # gradingProgress
    activity: str  # activityProgress


def current(assignment: Assignment, student_id: int) -> Score:
    """The student's grade on the assignment as the gradebook counts it (best attempts,
    overrides, their draw of each pool), from that student's row alone: a regrade of a class
    sends one task per student, and each reads one student's submissions, not the class's."""
    book = gradebook.build(assignment, student_id=student_id)
    row = next((r for r in book.rows if r.student_id == student_id), None)
    if row is None:  # no longer a student of the course: nothing to grade
        return Score(0.0, book.possible or 1.0, "NotReady", "Initialized")
    cells = [c for c in row.cells if c.drawn]
    pending = any(c.pending for c in cells)
    answered = [c for c in cells if c.attempts]
    handed_in = ExamStart.objects.filter(
        assignment=assignment, student_id=student_id, finished_at__isnull=False
    ).exists()
    if handed_in or (cells and len(answered) == len(cells)):
        activity = "Completed"
    else:
        activity = "InProgress" if answered else "Initialized"
    student = get_user_model().objects.filter(pk=student_id).first()
    items = [i for i, c in zip(book.items, row.cells, strict=True) if c.drawn]
    now = timezone.now()
    if any(not visibility.results_shown(i, student, now) for i in items):
        # The classroom hides these results from the student (an exam before its results are
        # published, an item whose results wait for the due time): the LMS gets no score.
        return Score(None, round(row.possible, 4) or 1.0, "Pending", activity)
    return Score(
        given=round(row.total, 4),
        maximum=round(row.possible, 4) or 1.0,
        grading="Pending" if pending else "FullyGraded",
        activity=activity,
    )
