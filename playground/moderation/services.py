"""What moderators and reporters change, each step with its audit event (site-level events of
``classroom.AuditEvent``: no course), under one transaction."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from playground.classroom.models import AuditEvent
from playground.lib import ratelimits
from playground.moderation.models import AccountSession, ProgramLock, Report
from playground.moderation.sessions import end_sessions_of
from playground.programs.models import Dataset, Program

Action = AuditEvent.Action
SITE_ACTIONS = [
    Action.PROGRAM_REPORTED,
    Action.REPORTS_DISMISSED,
    Action.PROGRAM_UNPUBLISHED,
    Action.PUBLISHING_ALLOWED,
    Action.ACCOUNT_DISABLED,
    Action.ACCOUNT_ENABLED,
]


class AlreadyReported(Exception):
    """This reporter has reported this program before."""


class NotAllowed(Exception):
    """A moderator may not do this (to this account); the message says why."""


def _name(user: Any) -> str:
    return user.get_username() if user is not None and getattr(user, "pk", None) else ""


def record(action: str, *, actor: Any = None, subject: Any = None, **detail: Any) -> AuditEvent:
    """One site-level event (no course) in the append-only audit log."""
    entry = AuditEvent(
        course_ref=None,
        actor_ref=getattr(actor, "pk", None),
        actor_name=_name(actor)[:150],
        subject_ref=getattr(subject, "pk", None),
        subject_name=_name(subject)[:254],
        action=action,
        detail=detail,
    )
    entry.save()
    return entry


def site_events() -> QuerySet[AuditEvent]:
    """The moderation log, newest first."""
    return AuditEvent.objects.filter(course_ref__isnull=True, action__in=SITE_ACTIONS).order_by(
        "-at", "-id"
    )


def reportable(program: Program) -> bool:
    """Only programs that users made public can be reported (not the built-in library)."""
    return program.is_public and program.dataset == Dataset.USER


def reporter_key(request: HttpRequest) -> str:
    """Who reports: their account, or their address (as the rate limits count it) through a
    keyed digest, so that the address itself is never stored."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    address = ratelimits.client_address(request).encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), b"report:" + address, hashlib.sha256)
    return f"ip:{digest.hexdigest()[:64]}"


def already_reported(request: HttpRequest, program: Program) -> bool:
    return Report.objects.filter(program=program, reporter_key=reporter_key(request)).exists()


def report(request: HttpRequest, program: Program, *, reason: str, note: str) -> Report:
    """File a report (the caller checked visibility, ownership and the rate limit)."""
    user = request.user if request.user.is_authenticated else None
    try:
        with transaction.atomic():
            entry = Report.objects.create(
                program=program,
                reporter=user,
                reporter_key=reporter_key(request),
                reason=reason,
                note=note,
            )
            record(
                Action.PROGRAM_REPORTED,
                actor=user,
                subject=program.owner,
                program=program.pk,
                title=program.display_title,
                reason=reason,
            )
    except IntegrityError:  # the same reporter, twice at once
        raise AlreadyReported from None
    return entry


def _resolve_open(program: Program, moderator: Any, resolution: str) -> int:
    return (
        Report.objects.open()
        .filter(program=program)
        .update(resolved_at=timezone.now(), resolved_by=moderator, resolution=resolution)
    )


@transaction.atomic
def dismiss(*, program: Program, moderator: Any) -> int:
    """Close the program's open reports without acting on the program."""
    count = _resolve_open(program, moderator, Report.Resolution.DISMISSED)
    if count:
        record(
            Action.REPORTS_DISMISSED,
            actor=moderator,
            subject=program.owner,
            program=program.pk,
            title=program.display_title,
            reports=count,
        )
    return count


@transaction.atomic
def unpublish(*, program: Program, moderator: Any, reason: str, message: str) -> ProgramLock:
    """Make the program private and keep it so until staff allow publishing again; its open
    reports are resolved. Again on a locked program: the reason and message are replaced."""
    program = Program.objects.select_for_update().get(pk=program.pk)
    was_public = program.is_public
    if was_public:
        program.is_public = False
        program.save(update_fields=["is_public", "updated_at"])
    lock, _ = ProgramLock.objects.update_or_create(
        program=program, defaults={"reason": reason, "message": message, "locked_by": moderator}
    )
    count = _resolve_open(program, moderator, Report.Resolution.UNPUBLISHED)
    record(
        Action.PROGRAM_UNPUBLISHED,
        actor=moderator,
        subject=program.owner,
        program=program.pk,
        title=program.display_title,
        reason=reason,
        was_public=was_public,
        reports=count,
    )
    return lock


@transaction.atomic
def allow_publishing(*, program: Program, moderator: Any) -> bool:
    """Lift the lock: the program stays private, and its owner may make it public again."""
    deleted, _ = ProgramLock.objects.filter(program=program).delete()
    if deleted:
        record(
            Action.PUBLISHING_ALLOWED,
            actor=moderator,
            subject=program.owner,
            program=program.pk,
            title=program.display_title,
        )
    return bool(deleted)


def may_change_account(moderator: Any, account: Any) -> str:
    """Why this moderator may not disable or enable this account ("" when they may)."""
    if account.pk == moderator.pk:
        return "You cannot disable or enable your own account."
    if (account.is_superuser or account.is_staff) and not moderator.is_superuser:
        return "Only a superuser may disable or enable a staff or superuser account."
    return ""


@transaction.atomic
def disable(*, account: Any, moderator: Any, note: str, unpublish_programs: bool) -> int:
    """Disable the account: it cannot log in, every session of it ends now, its API tokens
    are revoked (signals.py; their check also refuses inactive accounts) and its live views
    close at their next check. With ``unpublish_programs`` its public programs are unpublished too.
    Returns how many sessions were ended."""
    why = may_change_account(moderator, account)
    if why:
        raise NotAllowed(why)
    account = get_user_model().objects.select_for_update().get(pk=account.pk)
    sessions = AccountSession.objects.filter(account_id=account.pk).count()
    account.is_active = False
    account.save(update_fields=["is_active"])  # signals.py ends the sessions
    end_sessions_of(account.pk)  # and so does this, should the signal ever be disconnected
    unpublished = 0
    if unpublish_programs:
        for program in Program.objects.filter(owner=account, is_public=True):
            unpublish(program=program, moderator=moderator, reason="other", message=note)
            unpublished += 1
    record(
        Action.ACCOUNT_DISABLED,
        actor=moderator,
        subject=account,
        note=note,
        sessions_ended=sessions,
        programs_unpublished=unpublished,
    )
    return sessions


@transaction.atomic
def enable(*, account: Any, moderator: Any) -> None:
    why = may_change_account(moderator, account)
    if why:
        raise NotAllowed(why)
    type(account).objects.filter(pk=account.pk).update(is_active=True)
    account.is_active = True
    record(Action.ACCOUNT_ENABLED, actor=moderator, subject=account)
