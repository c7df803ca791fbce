"""Who is in a course and in which role: changing a member's role, confirming the staff role an
invitation asked for, removing a member (each logged), and the CSV roster that invites many
people at once (nobody joins from it: each invitation is accepted or declined in ``joining``)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from playground.classroom import audit
from playground.classroom.errors import ClassroomError
from playground.classroom.mailing import limit_message, mails_left_today, queue_mails
from playground.classroom.models import Course, Invitation, Membership, Role, Submission


def change_role(*, member: Membership, role: str, by: Any) -> None:
    """Give a member another role (an instructor's decision, which also settles a staff role
    waiting for confirmation); the course always keeps at least one instructor."""
    if role not in Role.values:
        raise ClassroomError("Choose instructor, assistant or student.")
    with transaction.atomic():
        # Lock the instructors so that two instructors demoting each other at once cannot
        # leave the course with none.
        instructors = list(
            Membership.objects.select_for_update()
            .filter(course_id=member.course_id, role=Role.INSTRUCTOR)
            .values_list("pk", flat=True)
        )
        if role != Role.INSTRUCTOR and instructors == [member.pk]:
            raise ClassroomError(
                "A course needs an instructor: make someone else an instructor first."
            )
        before = member.role
        Membership.objects.filter(pk=member.pk).update(role=role, pending_role="")
        audit.record(
            audit.Action.ROLE_CHANGED,
            course=member.course,
            actor=by,
            subject=member.user,
            before=before,
            after=role,
        )
    member.role = role
    member.pending_role = ""


def settle_pending_role(member: Membership, *, confirm: bool, by: Any) -> None:
    """An instructor confirms (or refuses) the staff role an accepted invitation asked for."""
    with transaction.atomic():
        current = Membership.objects.select_for_update().get(pk=member.pk)
        if not current.pending_role:
            raise ClassroomError("No role is waiting for confirmation: nothing changed.")
        asked = current.pending_role
        if confirm:
            current.role = asked
        current.pending_role = ""
        current.save(update_fields=["role", "pending_role"])
        audit.record(
            audit.Action.ROLE_CONFIRMED if confirm else audit.Action.ROLE_REFUSED,
            course=member.course,
            actor=by,
            subject=member.user,
            role=asked,
        )
    member.role, member.pending_role = current.role, ""


def remove_member(member: Membership, *, by: Any) -> None:
    """Take a person out of the course. They lose its pages, its API and its runs' streams at
    once (every check reads the membership). Their submissions stay, out of the gradebook, for
    the grade record (docs/PRIVACY.md): they count again if the person is invited back, and go
    with the course, with the retention period of submissions, or never with the account
    (deleting it moves them to a pseudonym); the audit event says how many stayed."""
    with transaction.atomic():
        instructors = list(
            Membership.objects.select_for_update()
            .filter(course_id=member.course_id, role=Role.INSTRUCTOR)
            .values_list("pk", flat=True)
        )
        if instructors == [member.pk]:
            raise ClassroomError("The course's only instructor cannot be removed.")
        kept = Submission.objects.filter(
            student_id=member.user_id, item__assignment__course_id=member.course_id
        ).count()
        member.delete()
        audit.record(
            audit.Action.MEMBER_REMOVED,
            course=member.course,
            actor=by,
            subject=member.user,
            role=member.role,
            submissions_kept=kept,
        )


# -- The CSV roster -------------------------------------------------------------------------------

MAX_ROSTER_ROWS = 5000


_HEADER_WORDS = frozenset({"email", "e-mail", "username", "user", "login"})


@dataclass
class RosterReport:
    mailed: int = 0  # e-mail rows: a link is on its way
    on_site: int = 0  # username rows: waiting on the person's "My courses" page
    already_invited: int = 0
    already_members: int = 0
    declined: int = 0  # said no to this course before: not asked again
    errors: list[str] = field(default_factory=list)


def read_roster(data: bytes) -> list[list[str]]:
    """The CSV's rows; a file that is not UTF-8 CSV text is refused with a clear reason."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClassroomError(f"The file is not UTF-8 text (byte {exc.start}).") from None
    if "\x00" in text:
        raise ClassroomError("The file contains NUL bytes: it is not a CSV text file.")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ClassroomError(f"The file is not a readable CSV file ({exc}).") from None
    if len(rows) > MAX_ROSTER_ROWS:
        raise ClassroomError(f"The roster has more than {MAX_ROSTER_ROWS:,} rows.")
    return rows


@dataclass
class _Row:
    number: int
    identifier: str
    role: str
    email: str = ""


def _parse(rows: list[list[str]], *, instructor: bool, report: RosterReport) -> list[_Row]:
    parsed: list[_Row] = []
    for number, row in enumerate(rows, start=1):
        if not row or not row[0].strip():
            continue
        identifier = row[0].strip()
        if number == 1 and identifier.lower() in _HEADER_WORDS:
            continue
        shown = repr(identifier[:40])
        role = row[1].strip().lower() if len(row) > 1 and row[1].strip() else Role.STUDENT
        if role not in (Role.STUDENT, Role.ASSISTANT):
            report.errors.append(f"Row {number}: unknown role {row[1].strip()[:40]!r}.")
            continue
        if role == Role.ASSISTANT and not instructor:
            report.errors.append(f"Row {number}: only an instructor may invite assistants.")
            continue
        if "@" in identifier:
            email = identifier.lower()
            try:
                validate_email(email)
            except ValidationError:
                report.errors.append(f"Row {number}: {shown} is not an e-mail address.")
                continue
            parsed.append(_Row(number, identifier, role, email=email))
        elif len(identifier) > 150 or any(c.isspace() for c in identifier):
            report.errors.append(f"Row {number}: {shown} is not an e-mail address or a username.")
        else:
            parsed.append(_Row(number, identifier, role))
    return parsed


def import_roster(
    *, course: Course, data: bytes, member: Membership, base_url: str
) -> RosterReport:
    """Invite everyone a roster names (one e-mail address or username per row, an optional
    second column with the role). Nobody joins: each person accepts or declines."""
    rows = read_roster(data)
    report = RosterReport()
    by = member.user
    parsed = _parse(rows, instructor=member.role == Role.INSTRUCTOR, report=report)
    names = {r.identifier for r in parsed if not r.email}
    users = {u.get_username(): u for u in get_user_model().objects.filter(username__in=names)}
    members = set(Membership.objects.filter(course=course).values_list("user_id", flat=True))
    pending = Invitation.objects.filter(course=course, status=Invitation.Status.PENDING)
    invited_emails = set(pending.exclude(email="").values_list("email", flat=True))
    invited_users = set(pending.filter(invitee__isnull=False).values_list("invitee_id", flat=True))
    # Whoever declined is not asked again by a roster (an invitation must not become a way to
    # pester someone); they can still join with the code.
    declined = Invitation.objects.filter(course=course, status=Invitation.Status.DECLINED)
    declined_emails = set(declined.exclude(email="").values_list("email", flat=True))
    declined_users = set(
        declined.filter(invitee__isnull=False).values_list("invitee_id", flat=True)
    )
    budget = mails_left_today(by)
    new: list[Invitation] = []
    for row in parsed:
        if row.email:
            if row.email in invited_emails:
                report.already_invited += 1
                continue
            if row.email in declined_emails:
                report.declined += 1
                continue
            if budget <= 0:
                report.errors.append(f"Row {row.number}: {limit_message()}")
                continue
            budget -= 1
            invited_emails.add(row.email)
            new.append(Invitation(course=course, email=row.email, role=row.role, invited_by=by))
            report.mailed += 1
            continue
        user = users.get(row.identifier)
        if user is None:
            report.errors.append(
                f"Row {row.number}: no account is named {row.identifier[:40]!r} (usernames must "
                "match exactly; invite people without an account by e-mail)."
            )
        elif user.pk in members:
            report.already_members += 1
        elif user.pk in invited_users:
            report.already_invited += 1
        elif user.pk in declined_users:
            report.declined += 1
        else:
            invited_users.add(user.pk)
            new.append(Invitation(course=course, invitee=user, role=row.role, invited_by=by))
            report.on_site += 1
    try:
        with transaction.atomic():
            made = Invitation.objects.bulk_create(new, batch_size=500)
            audit.record_all(
                audit.event(
                    audit.Action.INVITATION_SENT,
                    course=course,
                    actor=by,
                    subject=invitation.invitee,
                    subject_name=invitation.email,
                    role=invitation.role,
                    by_mail=invitation.by_mail,
                )
                for invitation in made
            )
            audit.record(
                audit.Action.ROSTER_IMPORTED,
                course=course,
                actor=by,
                rows=len(parsed) + len(report.errors),
                mailed=report.mailed,
                on_site=report.on_site,
                already_invited=report.already_invited,
                already_members=report.already_members,
                declined=report.declined,
                skipped=len(report.errors),
            )
            queue_mails([i.pk for i in made if i.by_mail], base_url)
    except IntegrityError:  # the same people invited by another upload at the same moment
        raise ClassroomError(
            "Another upload invited some of the same people at the same moment: upload again "
            "(those already invited are skipped)."
        ) from None
    return report
