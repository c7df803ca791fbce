"""Writes of the classroom: joining, rosters, answer keys, submissions and their grading."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from playground.classroom import grading
from playground.classroom.models import (
    Assignment,
    Course,
    Item,
    Membership,
    Mode,
    Role,
    RosterEntry,
    Submission,
)
from playground.runs.models import Run
from playground.runs.services import start_run

log = logging.getLogger(__name__)
MAX_ROSTER_ROWS = 5000


class ClassroomError(Exception):
    """Something the user asked cannot be done; the message says why (shown as is)."""


def create_course(*, title: str, instructor: Any, description: str = "") -> Course:
    with transaction.atomic():
        course = Course.objects.create(title=title, description=description, created_by=instructor)
        Membership.objects.create(course=course, user=instructor, role=Role.INSTRUCTOR)
    return course


def join_course(*, user: Any, code: str) -> Membership:
    """Join with a course's code; a roster entry for this person decides the role."""
    course = Course.objects.filter(join_code__iexact=code.strip()).first()
    if course is None or not course.join_enabled:
        raise ClassroomError("No course has this join code, or joining is closed.")
    existing = Membership.objects.filter(course=course, user=user).first()
    if existing is not None:
        return existing
    entry = _roster_entry_for(course, user)
    role = entry.role if entry is not None else Role.STUDENT
    try:
        with transaction.atomic():
            membership = Membership.objects.create(course=course, user=user, role=role)
            if entry is not None:
                RosterEntry.objects.filter(pk=entry.pk).update(claimed_by=user)
    except IntegrityError:  # joined twice at once
        membership = Membership.objects.get(course=course, user=user)
    return membership


def _identifiers(user: Any) -> list[str]:
    names = [user.get_username().lower()]
    if getattr(user, "email", ""):
        names.append(user.email.lower())
    return names


def _roster_entry_for(course: Course, user: Any) -> RosterEntry | None:
    return RosterEntry.objects.filter(course=course, identifier__in=_identifiers(user)).first()


def claim_roster_entries(user: Any) -> list[Membership]:
    """Add a person to every course whose roster names them (at login and sign-up)."""
    added: list[Membership] = []
    entries = RosterEntry.objects.filter(
        identifier__in=_identifiers(user), claimed_by__isnull=True
    ).select_related("course")
    for entry in entries:
        membership, created = Membership.objects.get_or_create(
            course=entry.course, user=user, defaults={"role": entry.role}
        )
        RosterEntry.objects.filter(pk=entry.pk).update(claimed_by=user)
        if created:
            added.append(membership)
    return added


@dataclass
class RosterReport:
    added: int
    already: int
    members_now: int
    errors: list[str]


def import_roster(course: Course, data: bytes) -> RosterReport:
    """A CSV with one email or username per row (a header row is skipped; an optional second
    column gives the role). People who already have an account join at once."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClassroomError(f"The file is not UTF-8 text (byte {exc.start}).") from None
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) > MAX_ROSTER_ROWS:
        raise ClassroomError(f"The roster has more than {MAX_ROSTER_ROWS:,} rows.")
    report = RosterReport(0, 0, 0, [])
    User = get_user_model()
    for number, row in enumerate(rows, start=1):
        if not row or not row[0].strip():
            continue
        identifier = row[0].strip().lower()
        if number == 1 and identifier in ("email", "username", "user", "login"):
            continue
        role = row[1].strip().lower() if len(row) > 1 and row[1].strip() else Role.STUDENT
        if role not in Role.values or role == Role.INSTRUCTOR:
            report.errors.append(f"Row {number}: unknown role {row[1].strip()[:40]!r}.")
            continue
        if len(identifier) > 254 or " " in identifier:
            report.errors.append(f"Row {number}: {identifier[:40]!r} is not an email or username.")
            continue
        entry, created = RosterEntry.objects.get_or_create(
            course=course, identifier=identifier, defaults={"role": role}
        )
        report.added += created
        report.already += not created
        user = User.objects.filter(
            Q(username__iexact=identifier) | Q(email__iexact=identifier)
        ).first()
        if user is not None and entry.claimed_by_id is None:
            _, made = Membership.objects.get_or_create(
                course=course, user=user, defaults={"role": entry.role}
            )
            RosterEntry.objects.filter(pk=entry.pk).update(claimed_by=user)
            report.members_now += made
    return report


KEY_METHOD = {Mode.OUTPUT: "real", Mode.TRACE: "real"}


def prepare_item(item: Item, *, by: Any) -> Run | None:
    """Start the item's answer key: the real run of its program and, for the model modes, the
    model's emulation of it (the run belongs to the instructor who made the item)."""
    if item.mode == Mode.PUZZLE or item.program is None:
        return None
    method = KEY_METHOD.get(Mode(item.mode))
    if method is None:
        method = item.method or ("trace" if item.mode == Mode.DIVERGENCE else "direct")
    run = start_run(
        program=item.program,
        user=by,
        anon_token=None,
        method=method,
        model=item.model if method != "real" else "",
        max_tokens=2048 if method == "trace" else 1024,
    )
    Item.objects.filter(pk=item.pk).update(key_run=run)
    item.key_run = run
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
    used = attempts_used(item, student)
    if assignment.max_attempts is not None and used >= assignment.max_attempts:
        raise ClassroomError(f"No attempts left (the limit is {assignment.max_attempts}).")
    if not item.key_ready:
        raise ClassroomError("This item is still being prepared: try again in a moment.")
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
    real = run.real_trace
    return (real.data if real else {}), run


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
        return grading.grade_divergence(answer, run.comparison)
    if item.mode == Mode.BEAT_MODEL:
        if not isinstance(answer, str):
            return grading.invalid("Write the value of the call.")
        return grading.grade_beat_model(answer, result, run.prediction or None, error.get("type"))
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
