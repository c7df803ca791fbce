"""A student's answers: submitting one (who may, in which window, with how many attempts left),
and a grader's override of its credit. Grading itself is ``marking``: at once for every mode
but puzzles, whose ``sat(answer)`` runs in the sandbox on a Celery task queued from here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.classroom import audit, exams, grading, marking, pools, progress, signals
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Assignment, Item, Membership, Mode, Role, Submission


def attempts_used(item: Item, student: Any) -> int:
    return Submission.objects.filter(item=item, student=student).count()


def submit(
    *, item: Item, student: Any, answer: Any, now: datetime | None = None
) -> tuple[Submission | None, grading.Grade | None]:
    """Record and grade a student's answer. Returns (submission, grade); a malformed answer
    returns (None, grade) and does not use an attempt. Raises ClassroomError when the student
    may not submit (not a student of the course, closed, no attempts left)."""
    now = now or timezone.now()
    assignment: Assignment = item.assignment
    if not Membership.objects.filter(
        course_id=assignment.course_id, user=student, role=Role.STUDENT
    ).exists():
        raise ClassroomError("Only the course's students submit answers.")
    if not pools.gets(item, student):
        raise ClassroomError("This item is not one of yours: your pool gave you another.")
    # A timed exam: the student's own clock, on the server's time (their end, inclusive).
    timed = exams.refusal(assignment, student, now)
    if timed:
        raise ClassroomError(timed)
    due, late_until = assignment.window(student)
    when = grading.timing(
        now,
        opens_at=assignment.opens_at,
        due=due,
        late_until=late_until,
        late_credit=assignment.late_credit,
    )
    if not when.accepted:
        raise ClassroomError(when.message)
    refusal = progress.submit_refusal(
        item, attempts=attempts_used(item, student), end=late_until, now=now
    )
    if refusal:
        raise ClassroomError(refusal)
    later = item.mode in marking.RUNS_THE_ANSWER
    grade = None if later else marking.grade_now(item, answer)
    if grade is not None and grade.invalid:
        return None, grade
    if later:  # checked now: an answer that cannot be read uses no attempt
        text = answer if isinstance(answer, str) else ""
        if item.mode == Mode.INPUT:
            _, problem = grading.read_call(text, marking.input_function(item))
        else:
            _, problem = grading.read_literal(text)
        if problem is not None:
            return None, problem
    with transaction.atomic():
        Submission.objects.select_for_update().filter(item=item, student=student).exists()
        attempt = attempts_used(item, student) + 1
        if assignment.max_attempts is not None and attempt > assignment.max_attempts:
            raise ClassroomError(f"No attempts left (the limit is {assignment.max_attempts}).")
        submission = Submission.objects.create(
            item=item,
            student=student,
            attempt=attempt,
            answer=answer,
            submitted_at=now,
            late=when.late,
            status=Submission.Status.PENDING,
            feedback={"late_factor": when.factor},
            # A varied item: the student's own variant (``variants.for_student``'s item).
            variant=getattr(item, "variant", None),
        )
        if grade is not None:
            marking.record_grade(submission, grade, when.factor)
        else:
            from playground.classroom.tasks import send_grading

            transaction.on_commit(lambda: send_grading(submission.pk, 0))
    return submission, grade


def override(submission: Submission, *, credit: float, comment: str, by: Any) -> None:
    """A grader sets the credit by hand (0 to 1), with a comment the student sees; recorded in
    the course's audit log."""
    if not 0.0 <= credit <= 1.0:
        raise ClassroomError("The credit is a number from 0 to 1.")
    with transaction.atomic():
        before = submission.final_credit
        submission.override_credit = credit
        submission.override_comment = comment[:2000]
        submission.overridden_by = by
        submission.overridden_at = timezone.now()
        submission.save(
            update_fields=["override_credit", "override_comment", "overridden_by", "overridden_at"]
        )
        _audit_override(submission, audit.Action.GRADE_OVERRIDDEN, by, before=before, after=credit)


def clear_override(submission: Submission, *, by: Any = None) -> None:
    """Undo a grader's override: the graded credit counts again."""
    with transaction.atomic():
        before = submission.override_credit
        submission.override_credit = None
        submission.override_comment = ""
        submission.overridden_by = None
        submission.overridden_at = None
        submission.save(
            update_fields=["override_credit", "override_comment", "overridden_by", "overridden_at"]
        )
        _audit_override(
            submission, audit.Action.OVERRIDE_CLEARED, by, before=before, after=submission.credit
        )


def _audit_override(
    submission: Submission, action: str, by: Any, *, before: float | None, after: float | None
) -> None:
    item = submission.item
    signals.announce_grade(submission)
    audit.record(
        action,
        course=item.assignment.course,
        actor=by,
        subject=submission.student,
        assignment=item.assignment.title,
        item=str(item),
        attempt=submission.attempt,
        credit_before="" if before is None else f"{before:.4g}",
        credit_after="" if after is None else f"{after:.4g}",
    )
