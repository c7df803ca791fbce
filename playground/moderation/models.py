"""Moderation of a public site: reports of public programs, programs that staff unpublished,
and the sessions of each account (so that disabling an account ends them at once)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class Reason(models.TextChoices):
    SPAM = "spam", "Spam"
    ABUSE = "abuse", "Abuse or harassment"
    MALICIOUS = "malicious", "Malicious code"
    PRIVATE_DATA = "private_data", "Leaks someone's data"
    OTHER = "other", "Something else"


# A report's note and staff's message to an owner: enough for a sentence or two, not an essay.
NOTE_MAX_CHARS = 500


class ReportQuerySet(models.QuerySet["Report"]):
    def open(self) -> ReportQuerySet:
        return self.filter(resolved_at__isnull=True)


class Report(models.Model):
    """Someone (an account, or an anonymous visitor by their address) says a public program
    should not be on the site. One per reporter and program."""

    class Resolution(models.TextChoices):
        DISMISSED = "dismissed", "Dismissed"
        UNPUBLISHED = "unpublished", "Program unpublished"

    program = models.ForeignKey(
        "programs.Program", on_delete=models.CASCADE, related_name="reports"
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # "user:<id>", or "ip:<keyed digest of the address>": who may not report this program again.
    # The address itself is not kept.
    reporter_key = models.CharField(max_length=80)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.TextField(blank=True, max_length=NOTE_MAX_CHARS)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "reporter_key"], name="moderation_one_report_per_reporter"
            )
        ]
        indexes = [
            models.Index(
                fields=["program", "-created_at"],
                condition=models.Q(resolved_at__isnull=True),
                name="moderation_open_reports",
            )
        ]

    def __str__(self) -> str:
        return f"Report of program #{self.program_id}: {self.reason}"


class ProgramLock(models.Model):
    """Staff unpublished this program: it stays private, its owner sees why, it cannot be made
    public again and its runs' share links answer 404 until staff lift the lock (the row is
    deleted then; the audit log keeps the history)."""

    program = models.OneToOneField(
        "programs.Program", on_delete=models.CASCADE, related_name="moderation_lock"
    )
    reason = models.CharField(max_length=16, choices=Reason.choices)
    message = models.TextField(blank=True, max_length=NOTE_MAX_CHARS)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    locked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Program #{self.program_id} unpublished by staff"


class AccountSession(AbstractBaseSession):
    """Django's database session with the account it belongs to, so that an account's sessions
    can be found and ended without decoding every session (Django's documented way of
    extending the database session store; playground/moderation/sessions.py)."""

    account_id = models.BigIntegerField(null=True, db_index=True)

    @classmethod
    def get_session_store_class(cls) -> Any:
        from playground.moderation.sessions import SessionStore

        return SessionStore
