"""Invitations: how a course's staff ask someone to join. Nobody becomes a member without
accepting (H2 of the 2026-12 security review).

- A roster row naming an e-mail address sends that address a signed, expiring, single-use link
  (``django.core.signing``). Whoever opens it while signed in accepts or declines for their own
  account. Nothing about the address is matched against accounts (sign-up does not verify
  e-mail addresses), and the upload report never says whether an account has that address.
- A row naming an existing username (matched exactly) waits on that person's "My courses" page.
  A username without an account is reported to the uploader: usernames are public on this site.
- An accepted invitation makes a student; the assistant role it may ask for waits for an
  instructor's confirmation (``Membership.pending_role``).
"""

from __future__ import annotations

import csv
import io
import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from kombu.exceptions import KombuError

from playground.classroom import audit
from playground.classroom.models import (
    AuditEvent,
    Course,
    Invitation,
    Membership,
    Role,
    new_nonce,
)
from playground.classroom.services import ClassroomError, mark_answered, reentry_refusal

log = logging.getLogger(__name__)
MAX_ROSTER_ROWS = 5000
MAX_TOKEN_CHARS = 300
MAIL_QUEUE = "llm"
_SALT = "playground.classroom.invitation"
_HEADER_WORDS = frozenset({"email", "e-mail", "username", "user", "login"})


# -- Signed links ------------------------------------------------------------------------------


def link_lifetime() -> timedelta:
    return timedelta(days=settings.PLAYGROUND_INVITATION_DAYS)


def make_token(invitation: Invitation) -> str:
    """The signed part of the link: the invitation and its current nonce, with the time of
    signing (the link expires ``PLAYGROUND_INVITATION_DAYS`` after it)."""
    return signing.dumps([invitation.pk, invitation.nonce], salt=_SALT)


@dataclass
class LinkProblem:
    message: str
    status: int


def resolve(token: str) -> tuple[Invitation | None, LinkProblem | None]:
    """The invitation a link names, or why the link does not work (never an exception)."""
    invalid = LinkProblem(
        "This invitation link is not valid: it may have been cut short or changed. Open the "
        "link from the e-mail again, or ask the course's staff to send a new one.",
        400,
    )
    if len(token) > MAX_TOKEN_CHARS:
        return None, invalid
    try:
        payload = signing.loads(token, salt=_SALT, max_age=link_lifetime())
    except signing.SignatureExpired:
        days = settings.PLAYGROUND_INVITATION_DAYS
        return None, LinkProblem(
            f"This invitation link has expired (links work for {days} day{'s' * (days != 1)}). "
            "Ask the course's staff to send the invitation again.",
            410,
        )
    except signing.BadSignature:
        return None, invalid
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or type(payload[0]) is not int
        or not isinstance(payload[1], str)
    ):
        return None, invalid
    pk, nonce = payload
    invitation = (
        Invitation.objects.select_related("course", "invited_by", "invitee").filter(pk=pk).first()
    )
    if invitation is None or not constant_time_compare(invitation.nonce, nonce):
        return None, LinkProblem(
            "This invitation link no longer works: the invitation was sent again with a new "
            "link, or withdrawn. Use the newest e-mail, or ask the course's staff.",
            410,
        )
    if invitation.status != Invitation.Status.PENDING:
        return invitation, LinkProblem(answered_message(invitation), 410)
    return invitation, None


def answered_message(invitation: Invitation) -> str:
    if invitation.status == Invitation.Status.ACCEPTED:
        return "This invitation was already accepted: a link works once."
    if invitation.status == Invitation.Status.DECLINED:
        return "This invitation was declined: a link works once."
    return "This invitation was withdrawn by the course's staff."


def link(invitation: Invitation, base_url: str) -> str:
    return base_url.rstrip("/") + reverse("classroom:invitation", args=[make_token(invitation)])


# -- Answering -----------------------------------------------------------------------------------


def _locked(invitation: Invitation) -> Invitation:
    """The invitation as it is now, locked until the transaction ends (two answers at once:
    the second finds it answered)."""
    return Invitation.objects.select_for_update().select_related("course").get(pk=invitation.pk)


def accept(invitation: Invitation, user: Any) -> tuple[Membership, bool]:
    """Accept for this account: (membership, whether it is new). The person joins as a
    student; an assistant role waits for an instructor's confirmation."""
    with transaction.atomic():
        current = _locked(invitation)
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


def decline(invitation: Invitation, user: Any) -> None:
    """Say no (a signed-in invitee, or whoever holds the e-mailed link)."""
    with transaction.atomic():
        current = _locked(invitation)
        if current.status != Invitation.Status.PENDING:
            raise ClassroomError(answered_message(current))
        how = "e-mailed link" if current.by_mail else "my courses"
        mark_answered(current, Invitation.Status.DECLINED, by=user, how=how)


def pending_for(user: Any) -> Any:
    """Invitations of this account waiting on its "My courses" page."""
    return (
        Invitation.objects.filter(invitee=user, status=Invitation.Status.PENDING)
        .select_related("course", "invited_by")
        .order_by("-created_at", "-id")
    )


# -- Staff: revoke, send again -------------------------------------------------------------------


def revoke(invitation: Invitation, *, by: Any) -> None:
    with transaction.atomic():
        current = _locked(invitation)
        if current.status != Invitation.Status.PENDING:
            raise ClassroomError(answered_message(current))
        mark_answered(current, Invitation.Status.REVOKED, by=by)


def resend(invitation: Invitation, *, by: Any, base_url: str) -> None:
    """A new link by e-mail; the old one stops working."""
    if not invitation.by_mail:
        raise ClassroomError("This invitation waits on the person's own page: nothing to send.")
    if mails_left_today(by) <= 0:
        raise ClassroomError(_limit_message())
    with transaction.atomic():
        current = _locked(invitation)
        if current.status != Invitation.Status.PENDING:
            raise ClassroomError(answered_message(current))
        current.nonce = new_nonce()
        current.sent_at = None
        current.mail_failed = False
        current.save(update_fields=["nonce", "sent_at", "mail_failed"])
        audit.record(
            audit.Action.INVITATION_RESENT,
            course=current.course,
            actor=by,
            subject_name=current.email,
            role=current.role,
            by_mail=True,
        )
        _queue_mails([current.pk], base_url)


# -- E-mail ----------------------------------------------------------------------------------------


def mails_left_today(user: Any) -> int:
    """How many more invitation e-mails this person may send in the last 24 hours (counted in
    the audit log, which nothing can rewrite): a roster is not a way to send mail in bulk."""
    since = timezone.now() - timedelta(days=1)
    sent = AuditEvent.objects.filter(
        actor_ref=user.pk,
        action__in=[audit.Action.INVITATION_SENT, audit.Action.INVITATION_RESENT],
        detail__by_mail=True,
        at__gte=since,
    ).count()
    return max(0, settings.PLAYGROUND_INVITATION_MAILS_PER_DAY - sent)


def _limit_message() -> str:
    return (
        f"not sent: the limit of {settings.PLAYGROUND_INVITATION_MAILS_PER_DAY:,} invitation "
        "e-mails a day is reached (upload the rest tomorrow)."
    )


def _queue_mails(ids: list[int], base_url: str) -> None:
    if ids:
        transaction.on_commit(lambda: _enqueue(ids, base_url))


def _enqueue(ids: list[int], base_url: str) -> None:
    """Hand the mails to a worker; without a broker they are marked unsent (staff see it and
    can send them again) rather than turning the upload into an error page."""
    from playground.classroom.tasks import send_invitation_mails

    try:
        # The "llm" queue's worker runs threads for work that waits on the network: sending
        # mail is such work, and needs no worker of its own.
        send_invitation_mails.apply_async((ids, base_url), queue=MAIL_QUEUE)
    except (KombuError, OSError):
        log.exception("invitation mails %s could not be queued", ids)
        Invitation.objects.filter(pk__in=ids).update(mail_failed=True)


def _one_line(text: str, limit: int = 120) -> str:
    """A course title in a mail header: no line breaks (header injection), not too long."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def message(invitation: Invitation, base_url: str, *, connection: Any = None) -> EmailMessage:
    """The invitation mail: plain text, so nothing in a course title can become markup."""
    expires = timezone.localtime(timezone.now() + link_lifetime())
    context = {
        "invitation": invitation,
        "course_title": _one_line(invitation.course.title, 200),
        "inviter": invitation.invited_by.get_username() if invitation.invited_by else "",
        "role": Role(invitation.role).label.lower(),
        "link": link(invitation, base_url),
        "site": base_url.rstrip("/"),
        "expires": expires,
    }
    return EmailMessage(
        subject=f"Invitation to the course “{_one_line(invitation.course.title, 100)}”",
        body=render_to_string("classroom/mail/invitation.txt", context),
        to=[invitation.email],
        connection=connection,
    )


def send_mails(ids: Iterable[int], base_url: str) -> int:
    """Send the links of these e-mail invitations (those still pending); the Celery task's
    body. A failure is logged and marked on the invitation (staff can send it again).
    Returns how many were sent."""
    invitations = (
        Invitation.objects.filter(pk__in=list(ids), status=Invitation.Status.PENDING)
        .exclude(email="")
        .select_related("course", "invited_by")
        .order_by("pk")
    )
    connection = get_connection()
    sent = 0
    try:
        for invitation in invitations:
            try:
                connection.send_messages([message(invitation, base_url, connection=connection)])
            except (smtplib.SMTPException, OSError):
                log.exception("invitation %s: the e-mail could not be sent", invitation.pk)
                Invitation.objects.filter(pk=invitation.pk).update(mail_failed=True)
            else:
                sent += 1
                Invitation.objects.filter(pk=invitation.pk, nonce=invitation.nonce).update(
                    sent_at=timezone.now(), mail_failed=False
                )
    finally:
        try:
            connection.close()
        except (smtplib.SMTPException, OSError):
            log.warning("closing the mail connection failed", exc_info=True)
    return sent


# -- Rosters ---------------------------------------------------------------------------------------


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
    course: Course, data: bytes, *, member: Membership, base_url: str
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
                report.errors.append(f"Row {row.number}: {_limit_message()}")
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
            _queue_mails([i.pk for i in made if i.by_mail], base_url)
    except IntegrityError:  # the same people invited by another upload at the same moment
        raise ClassroomError(
            "Another upload invited some of the same people at the same moment: upload again "
            "(those already invited are skipped)."
        ) from None
    return report


def expires_at(invitation: Invitation) -> datetime | None:
    """When the e-mailed link stops working (None: not mailed yet, or no link)."""
    return invitation.sent_at + link_lifetime() if invitation.sent_at else None
