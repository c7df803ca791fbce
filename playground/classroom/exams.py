"""Timed exams: within the assignment's window each student starts when they choose and has the
assignment's ``time_limit`` minutes (plus their extension's extra minutes), never past their due
time. The server's clock decides: ``ExamStart`` holds when they started, ``Assignment.window``
turns it into their end, and ``submissions.submit`` refuses an answer after it with
``refusal``'s sentence. Starts and hand-ins are lines in the course's audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from playground.classroom import audit
from playground.classroom.access import membership
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Assignment, ExamStart, Role
from playground.classroom.visibility import site_time


def _student(assignment: Assignment, user: Any) -> None:
    member = membership(user, assignment.course_id)
    if member is None or member.role != Role.STUDENT:
        raise ClassroomError("Only the course's students take the exam.")


def started(assignment: Assignment, student: Any) -> ExamStart | None:
    return assignment.exam_starts.filter(student_id=getattr(student, "pk", None)).first()


def start(*, assignment: Assignment, student: Any, now: datetime | None = None) -> ExamStart:
    """Start this student's clock (their own: there is no way to start someone else's). Starting
    again returns the first start: the clock never restarts."""
    now = now or timezone.now()
    if assignment.time_limit is None:
        raise ClassroomError("This assignment is not a timed exam.")
    _student(assignment, student)
    existing = started(assignment, student)
    if existing is not None:
        return existing
    if now < assignment.opens_at:
        raise ClassroomError("The exam is not open yet.")
    last = assignment.window(student)[0]  # not started: the last moment to start
    if now > last:
        raise ClassroomError(f"The exam could be started until {site_time(last)}.")
    try:
        with transaction.atomic():
            begun = ExamStart.objects.create(assignment=assignment, student=student, started_at=now)
            end = assignment.window(student)[1]
            audit.record(
                audit.Action.EXAM_STARTED,
                course=assignment.course,
                actor=student,
                subject=student,
                assignment=assignment.title,
                started=now.isoformat(),
                ends=end.isoformat(),
            )
    except IntegrityError:  # a second click at the same moment: the first start stands
        first = started(assignment, student)
        assert first is not None
        return first
    return begun


def finish(*, assignment: Assignment, student: Any, now: datetime | None = None) -> None:
    """Hand the exam in before the time is up: no more answers from then on."""
    now = now or timezone.now()
    _student(assignment, student)
    begun = started(assignment, student)
    if begun is None:
        raise ClassroomError("You have not started this exam.")
    end = assignment.window(student)[1]
    if begun.finished_at is not None or now > end:
        return
    with transaction.atomic():
        begun.finished_at = now
        begun.save(update_fields=["finished_at"])
        audit.record(
            audit.Action.EXAM_FINISHED,
            course=assignment.course,
            actor=student,
            subject=student,
            assignment=assignment.title,
            finished=now.isoformat(),
            time_left_seconds=int((end - now).total_seconds()),
        )


def refusal(assignment: Assignment, student: Any, now: datetime) -> str:
    """Why this student's answer to a timed exam is refused now, or ""."""
    if assignment.time_limit is None:
        return ""
    begun = started(assignment, student)
    if begun is None:
        return "Start the exam first (on the assignment's page): your time runs from then."
    end = assignment.window(student)[1]
    if begun.finished_at is not None and begun.finished_at <= now:  # from that very second
        return f"You handed this exam in at {site_time(end, seconds=True)}: no more answers."
    if now > end:
        return (
            f"Your time for this exam ended at {site_time(end, seconds=True)}: this answer was "
            "not recorded."
        )
    return ""


@dataclass
class Clock:
    """A student's timed exam as their pages show it."""

    minutes: int
    started: ExamStart | None
    end: datetime  # once started: their end; before: the last moment to start
    now: datetime

    @property
    def handed_in(self) -> bool:
        done = self.started.finished_at if self.started is not None else None
        return done is not None and done <= self.now

    @property
    def running(self) -> bool:
        return self.started is not None and self.now <= self.end and not self.handed_in

    @property
    def over(self) -> bool:
        return self.now > self.end or self.handed_in

    @property
    def can_start(self) -> bool:
        return self.started is None and not self.over

    @property
    def seconds_left(self) -> int:
        """Whole seconds until the end, from the server's clock (the page counts down from it)."""
        return max(0, int((self.end - self.now).total_seconds()))


def clock(assignment: Assignment, student: Any, now: datetime | None = None) -> Clock | None:
    """The student's clock of a timed exam (None: not timed)."""
    if assignment.time_limit is None:
        return None
    now = now or timezone.now()
    return Clock(
        minutes=assignment.time_limit,
        started=started(assignment, student),
        end=assignment.window(student)[1],
        now=now,
    )
