"""Writes of the classroom: creating, joining and leaving courses, answer keys, submissions and
their grading. Invitations and rosters are in ``invitations``."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from playground.classroom import audit, grading, keys, progress
from playground.classroom.models import (
    Assignment,
    AuditEvent,
    Course,
    Invitation,
    Item,
    Membership,
    Mode,
    Role,
    Submission,
)
from playground.classroom.visibility import site_time
from playground.emulation.judging import NO_MODEL, needed_no_model
from playground.emulation.registry import DEFAULT_METHOD, DEFAULT_STEP_METHOD, max_tokens_for
from playground.runs.models import Run
from playground.runs.services import start_run

log = logging.getLogger(__name__)


class ClassroomError(Exception):
    """Something the user asked cannot be done; the message says why (shown as is)."""


def create_course(*, title: str, instructor: Any, description: str = "") -> Course:
    with transaction.atomic():
        course = Course.objects.create(title=title, description=description, created_by=instructor)
        Membership.objects.create(course=course, user=instructor, role=Role.INSTRUCTOR)
        audit.record(audit.Action.COURSE_CREATED, course=course, actor=instructor)
    return course


def exam_in_progress(course: Course, user: Any, now: datetime | None = None) -> Assignment | None:
    """The course's exam-mode assignment whose window (this person's, extensions included) is
    running now, if any; the one that ends last."""
    now = now or timezone.now()
    running = [
        a
        for a in course.assignments.filter(exam_mode=True, opens_at__lte=now).prefetch_related(
            "extensions"
        )
        if now <= a.window(user)[1]
    ]
    return max(running, key=lambda a: a.window(user)[1], default=None)


def reentry_refusal(course: Course, user: Any, now: datetime | None = None) -> str | None:
    """Why this person may not come back into the course now: they left it during an exam
    whose window has not ended (leaving must not be a way out of exam mode and back in)."""
    now = now or timezone.now()
    left = (
        AuditEvent.objects.filter(
            course_ref=course.pk, subject_ref=user.pk, action=audit.Action.MEMBER_LEFT
        )
        .order_by("-at", "-id")
        .first()
    )
    detail = left.detail if left is not None and isinstance(left.detail, dict) else {}
    exam_id = detail.get("exam_id")
    if type(exam_id) is not int:
        return None
    # The exam as it is now: an instructor may have ended it early or given an extension.
    exam = (
        Assignment.objects.filter(pk=exam_id, course=course, exam_mode=True)
        .prefetch_related("extensions")
        .first()
    )
    if exam is None or exam.opens_at > now:
        return None
    until = exam.window(user)[1]
    if now > until:
        return None
    return (
        f"You left this course during its exam “{exam.title}”: you can come back after it "
        f"ends ({site_time(until)})."
    )


def join_course(*, user: Any, code: str) -> Membership:
    """Join with a course's code, as a student. An invitation of this person to the course is
    accepted with it; a staff role it asks for waits for an instructor's confirmation."""
    course = Course.objects.filter(join_code__iexact=code.strip()).first()
    if course is None or not course.join_enabled:
        raise ClassroomError("No course has this join code, or joining is closed.")
    existing = Membership.objects.filter(course=course, user=user).first()
    if existing is not None:
        return existing
    refusal = reentry_refusal(course, user)
    if refusal is not None:
        raise ClassroomError(refusal)
    try:
        with transaction.atomic():
            invitation = (
                Invitation.objects.select_for_update()
                .filter(course=course, invitee=user, status=Invitation.Status.PENDING)
                .first()
            )
            membership = Membership.objects.create(
                course=course,
                user=user,
                role=Role.STUDENT,
                pending_role=Role.ASSISTANT
                if invitation is not None and invitation.role == Role.ASSISTANT
                else "",
            )
            audit.record(audit.Action.MEMBER_JOINED, course=course, actor=user, subject=user)
            if invitation is not None:
                mark_answered(invitation, Invitation.Status.ACCEPTED, by=user, how="join code")
    except IntegrityError:  # joined twice at once
        membership = Membership.objects.get(course=course, user=user)
    return membership


def mark_answered(invitation: Invitation, status: str, *, by: Any, how: str = "") -> None:
    """Close a pending invitation (accepted, declined or revoked) and log it."""
    invitation.status = status
    invitation.answered_at = timezone.now()
    invitation.answered_by = by if getattr(by, "pk", None) else None
    invitation.save(update_fields=["status", "answered_at", "answered_by"])
    action = {
        Invitation.Status.ACCEPTED: audit.Action.INVITATION_ACCEPTED,
        Invitation.Status.DECLINED: audit.Action.INVITATION_DECLINED,
        Invitation.Status.REVOKED: audit.Action.INVITATION_REVOKED,
    }[Invitation.Status(status)]
    detail: dict[str, Any] = {"role": invitation.role, "by_mail": invitation.by_mail}
    if how:
        detail["how"] = how
    audit.record(
        action,
        course=invitation.course,
        actor=by,
        subject=invitation.invitee,
        subject_name=invitation.email,
        **detail,
    )


def leave_course(*, user: Any, course: Course) -> Membership:
    """Take oneself out of a course (submissions stay, out of the gradebook). Leaving during an
    exam is allowed (nobody is held in a course) but is logged, and the person cannot come
    back until that exam has ended."""
    with transaction.atomic():
        instructors = list(
            Membership.objects.select_for_update()
            .filter(course=course, role=Role.INSTRUCTOR)
            .values_list("pk", flat=True)
        )
        member = Membership.objects.filter(course=course, user=user).first()
        if member is None:
            raise ClassroomError("You are not in this course.")
        if instructors == [member.pk]:
            raise ClassroomError(
                "You are the course's only instructor: make someone else an instructor first, "
                "or delete the course."
            )
        detail: dict[str, Any] = {"role": member.role}
        exam = exam_in_progress(course, user) if member.role == Role.STUDENT else None
        if exam is not None:
            detail.update(
                exam=exam.title, exam_id=exam.pk, exam_until=exam.window(user)[1].isoformat()
            )
        member.delete()
        audit.record(audit.Action.MEMBER_LEFT, course=course, actor=user, subject=user, **detail)
    return member


KEY_METHOD = {Mode.OUTPUT: "real", Mode.TRACE: "real"}
# An answer key's model answer gets at least this many tokens, more where its method's own
# budget is larger: a key that breaks off at the limit is no key.
KEY_MIN_TOKENS = 1024


def prepare_item(item: Item, *, by: Any) -> Run | None:
    """Start the item's answer key: the real run of its program and, for the model modes, the
    model's emulation of it (the run belongs to the instructor who made the item)."""
    if item.mode == Mode.PUZZLE or item.program is None:
        return None
    method = KEY_METHOD.get(Mode(item.mode))
    if method is None:
        method = item.method or (
            DEFAULT_STEP_METHOD if item.mode == Mode.DIVERGENCE else DEFAULT_METHOD
        )
    run = start_run(
        program=item.program,
        user=by,
        anon_token=None,
        method=method,
        model=item.model if method != "real" else "",
        max_tokens=max(max_tokens_for(method), KEY_MIN_TOKENS),
    )
    Item.objects.filter(pk=item.pk).update(key_run=run, key_check=None)
    item.key_run, item.key_check = run, None
    return run


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
    grade = None if item.mode == Mode.PUZZLE else grade_now(item, answer)
    if grade is not None and grade.invalid:
        return None, grade
    if item.mode == Mode.PUZZLE:
        text = answer if isinstance(answer, str) else ""
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
        )
        if grade is not None:
            _record(submission, grade, when.factor)
        else:
            from playground.classroom.tasks import grade_puzzle_submission

            transaction.on_commit(lambda: grade_puzzle_submission.delay(submission.pk))
    return submission, grade


def _record(submission: Submission, grade: grading.Grade, factor: float) -> None:
    submission.score = grade.score
    submission.credit = round(grade.score * factor, 4)
    submission.status = Submission.Status.GRADED
    submission.feedback = {
        "message": grade.message,
        "details": grade.details,
        "late_factor": factor,
    }
    submission.save(update_fields=["score", "credit", "status", "feedback"])


def _key(item: Item) -> tuple[dict[str, Any], Run]:
    run = item.key_run
    assert run is not None
    return keys.trace_data(run.real_trace), run


def grade_now(item: Item, answer: Any) -> grading.Grade:
    """Grade an answer that needs no code run (every mode but puzzles)."""
    real, run = _key(item)
    error = real.get("error") or {}
    result = real.get("result") if real.get("status") == "ok" else None
    if item.mode == Mode.OUTPUT:
        if not isinstance(answer, str):
            return grading.invalid("Write the value of the call.")
        return grading.grade_output(answer, result, error.get("type"))
    if item.mode == Mode.TRACE:
        if not isinstance(answer, dict):
            return grading.invalid("Fill in the variables at each checkpoint.")
        return grading.grade_trace(answer, real.get("steps", []), item.checkpoints)
    if item.mode == Mode.DIVERGENCE:
        if not isinstance(answer, str):
            return grading.invalid("Mark a step number.")
        mistake, steps = keys.divergence_key(run)
        return grading.grade_divergence(answer, mistake, len(steps))
    if item.mode == Mode.BEAT_MODEL:
        if not isinstance(answer, str):
            return grading.invalid("Write the value of the call.")
        asked = (run.verdict or {}).get("status") != NO_MODEL and not needed_no_model(
            run.method, run.model_calls
        )
        return grading.grade_beat_model(
            answer, result, run.prediction or None, error.get("type"), model_asked=asked
        )
    raise ValueError(item.mode)


def grade_puzzle(submission: Submission) -> None:
    """Run ``sat(answer)`` in the sandbox and record the grade (the Celery task's body)."""
    from playground import sandbox
    from playground.emulation.puzzle import PRELUDE
    from playground.emulation.values import literal_source
    from playground.runs.limits import limits_for_run

    item = submission.item
    assert item.puzzle is not None
    value, problem = grading.read_literal(str(submission.answer))
    factor = float(submission.feedback.get("late_factor", 1.0))
    if problem is not None:
        _record(submission, grading.Grade(0.0, problem.message), factor)
        return
    limits = dataclasses.replace(limits_for_run({}), keep_running=True)
    trace = sandbox.run(
        PRELUDE + item.puzzle.sat, call=f"sat({literal_source(value)})", limits=limits
    )
    if trace["status"] == "ok" and trace["result"] == "True":
        grade = grading.Grade(1.0, "Right: sat(answer) returns True.")
    elif trace["status"] == "ok":
        grade = grading.Grade(0.0, f"Wrong: sat(answer) returns {trace['result']}.")
    else:
        err = trace.get("error") or {}
        grade = grading.Grade(
            0.0, f"Wrong: sat(answer) raised {err.get('type')}: {err.get('message', '')[:200]}"
        )
    _record(submission, grade, factor)


def override(submission: Submission, *, credit: float, comment: str, by: Any) -> None:
    """A grader sets the credit by hand (0 to 1), with a comment the student sees."""
    if not 0.0 <= credit <= 1.0:
        raise ClassroomError("The credit is a number from 0 to 1.")
    submission.override_credit = credit
    submission.override_comment = comment[:2000]
    submission.overridden_by = by
    submission.overridden_at = timezone.now()
    submission.save(
        update_fields=["override_credit", "override_comment", "overridden_by", "overridden_at"]
    )
