"""How a person comes into a course and goes out of it: by its join code, by accepting (or
declining) an invitation, and by leaving. Leaving during an exam is logged, and the person
cannot come back before that exam has ended (``reentry_refusal``), whichever way they try.
How the staff invite is in ``invitations``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from playground.classroom import audit
from playground.classroom.errors import ClassroomError
from playground.classroom.invitations import answered_message, locked, mark_answered
from playground.classroom.models import (
    Assignment,
    AuditEvent,
    Course,
    Invitation,
    Membership,
    Role,
)
from playground.classroom.visibility import site_time


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


def accept(*, invitation: Invitation, user: Any) -> tuple[Membership, bool]:
    """Accept for this account: (membership, whether it is new). The person joins as a
    student; an assistant role waits for an instructor's confirmation."""
    with transaction.atomic():
        current = locked(invitation)
        if current.status != Invitation.Status.PENDING:
            raise ClassroomError(answered_message(current))
        if current.invitee_id is not None and current.invitee_id != user.pk:
            raise ClassroomError("This invitation is for someone else.")
        course = current.course
        member = Membership.objects.filter(course=course, user=user).first()
        created = member is None
        if member is None:
            refusal = reentry_refusal(course, user)
            if refusal is not None:
                raise ClassroomError(refusal)
            try:
                with transaction.atomic():
                    member = Membership.objects.create(course=course, user=user, role=Role.STUDENT)
            except IntegrityError:  # joined with the code at the same moment
                member = Membership.objects.get(course=course, user=user)
                created = False
        if current.role == Role.ASSISTANT and member.role == Role.STUDENT:
            member.pending_role = Role.ASSISTANT
            member.save(update_fields=["pending_role"])
        how = "e-mailed link" if current.by_mail else "my courses"
        mark_answered(current, Invitation.Status.ACCEPTED, by=user, how=how)
    return member, created


def decline(*, invitation: Invitation, user: Any) -> None:
    """Say no (a signed-in invitee, or whoever holds the e-mailed link)."""
    with transaction.atomic():
        current = locked(invitation)
        if current.status != Invitation.Status.PENDING:
            raise ClassroomError(answered_message(current))
        how = "e-mailed link" if current.by_mail else "my courses"
        mark_answered(current, Invitation.Status.DECLINED, by=user, how=how)


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
