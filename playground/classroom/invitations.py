"""Invitations: how a course's staff ask someone to join. Nobody becomes a member without
accepting (H2 of the 2026-12 security review).

- An invitation by e-mail address sends that address a signed, expiring, single-use link
  (``django.core.signing``). Whoever opens it while signed in accepts or declines for their own
  account. Nothing about the address is matched against accounts (sign-up does not verify
  e-mail addresses), and the upload report never says whether an account has that address.
- An invitation of an existing username (matched exactly) waits on that person's "My courses"
  page. A username without an account is reported to the uploader: usernames are public here.
- An accepted invitation makes a student; the assistant role it may ask for waits for an
  instructor's confirmation (``Membership.pending_role``).

Here: the signed links, the answered state, revoking, and composing and sending the mails (the
mail task's body). Queueing them, the daily cap and sending again are in ``mailing``; the
person's own answer (accept, decline) is in ``joining``; the CSV roster is in ``roster``.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from playground.classroom import audit
from playground.classroom.errors import ClassroomError
from playground.classroom.models import (
    Invitation,
    Role,
)

log = logging.getLogger(__name__)
MAX_TOKEN_CHARS = 300
_SALT = "playground.classroom.invitation"


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


# -- Answered --------------------------------------------------------------------------------------


def locked(invitation: Invitation) -> Invitation:
    """The invitation as it is now, locked until the transaction ends (two answers at once:
    the second finds it answered)."""
    return Invitation.objects.select_for_update().select_related("course").get(pk=invitation.pk)


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


def pending_for(user: Any) -> Any:
    """Invitations of this account waiting on its "My courses" page."""
    return (
        Invitation.objects.filter(invitee=user, status=Invitation.Status.PENDING)
        .select_related("course", "invited_by")
        .order_by("-created_at", "-id")
    )


# -- Staff: revoke ----------------------------------------------------------------------------


def revoke(invitation: Invitation, *, by: Any) -> None:
    with transaction.atomic():
        current = locked(invitation)
        if current.status != Invitation.Status.PENDING:
            raise ClassroomError(answered_message(current))
        mark_answered(current, Invitation.Status.REVOKED, by=by)


# -- E-mail: the mail task's body (``mailing`` queues it) -----------------------------------------


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


def expires_at(invitation: Invitation) -> datetime | None:
    """When the e-mailed link stops working (None: not mailed yet, or no link)."""
    return invitation.sent_at + link_lifetime() if invitation.sent_at else None
