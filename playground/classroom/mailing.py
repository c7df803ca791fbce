"""Sending invitation e-mails from a request: the daily cap per sender, handing the mails to the
mail task once the transaction commits, and sending a person a new link. Its own file, above
both ``invitations`` and ``tasks``: the task's body (composing and sending the mails) is in
``invitations``, so the module that queues the task cannot be that one without a circle."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import KombuError

from playground.classroom import audit
from playground.classroom.errors import ClassroomError
from playground.classroom.invitations import answered_message, locked
from playground.classroom.models import AuditEvent, Invitation, new_nonce
from playground.classroom.tasks import send_invitation_mails

log = logging.getLogger(__name__)


MAIL_QUEUE = "llm"


def resend(invitation: Invitation, *, by: Any, base_url: str) -> None:
    """A new link by e-mail; the old one stops working."""
    if not invitation.by_mail:
        raise ClassroomError("This invitation waits on the person's own page: nothing to send.")
    if mails_left_today(by) <= 0:
        raise ClassroomError(limit_message())
    with transaction.atomic():
        current = locked(invitation)
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
        queue_mails([current.pk], base_url)


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


def limit_message() -> str:
    return (
        f"not sent: the limit of {settings.PLAYGROUND_INVITATION_MAILS_PER_DAY:,} invitation "
        "e-mails a day is reached (upload the rest tomorrow)."
    )


def queue_mails(ids: list[int], base_url: str) -> None:
    if ids:
        transaction.on_commit(lambda: _enqueue(ids, base_url))


def _enqueue(ids: list[int], base_url: str) -> None:
    """Hand the mails to a worker; without a broker they are marked unsent (staff see it and
    can send them again) rather than turning the upload into an error page."""
    try:
        # The "llm" queue's worker runs threads for work that waits on the network: sending
        # mail is such work, and needs no worker of its own.
        send_invitation_mails.apply_async((ids, base_url), queue=MAIL_QUEUE)
    except (KombuError, OSError):
        log.exception("invitation mails %s could not be queued", ids)
        Invitation.objects.filter(pk__in=ids).update(mail_failed=True)
