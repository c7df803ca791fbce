"""Retention periods of signed-in people's data: a periodic task that Celery beat sends
(``CELERY_BEAT_SCHEDULE``: ``apply-retention``, daily), beside runs/retention.py's hourly expiry
of anonymous visitors' runs.

The periods are settings in days (0: kept for ever, the default of each): the table ``RULES``
says which rows each one deletes and from which date it counts. Another app extends the table
with one ``Rule`` here naming its model by label ("lti.ScoreLog") and a function that returns the
rows older than a cutoff; a rule whose app is not installed is skipped. docs/PRIVACY.md lists
the rules for people.

Each rule deletes in batches, each in its own short transaction with the rows locked SKIP
LOCKED: two beats at once, or a message sent again, take other rows or none, and a second run
deletes nothing more. A failing rule is logged and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.apps import apps
from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from playground.classroom.models import (
    Assignment,
    Course,
    ExamStart,
    Extension,
    Invitation,
    Item,
    StepPrediction,
    Submission,
    Variant,
)
from playground.runs.models import Run
from playground.runs.retention import delete_in_batches, remember_links

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class Rule:
    name: str
    # The setting with the period in days (0: for ever).
    setting: str
    # The rows older than the cutoff, to delete.
    rows: Callable[[datetime], QuerySet[Any]]
    # Called with each batch's ids before it is deleted, in its transaction.
    before_delete: Callable[[list[int]], None] | None = None
    # An app label: without it installed, the rule is skipped.
    app: str = ""


def ended_courses(cutoff: datetime) -> QuerySet[Course]:
    """Courses whose last assignment closed (its late time, or due time) before ``cutoff``."""
    closes = Assignment.objects.filter(course=OuterRef("pk")).annotate(
        closes=Greatest(F("due_at"), Coalesce(F("late_until"), F("due_at")))
    )
    return Course.objects.filter(Exists(closes)).exclude(Exists(closes.filter(closes__gte=cutoff)))


def _in_ended_courses(model: Any, path: str, cutoff: datetime) -> QuerySet[Any]:
    return model.objects.filter(**{f"{path}__course__in": ended_courses(cutoff).values("pk")})


def old_submissions(cutoff: datetime) -> QuerySet[Submission]:
    return _in_ended_courses(Submission, "item__assignment", cutoff)


def old_step_predictions(cutoff: datetime) -> QuerySet[StepPrediction]:
    return _in_ended_courses(StepPrediction, "item__assignment", cutoff)


def old_exam_starts(cutoff: datetime) -> QuerySet[ExamStart]:
    return _in_ended_courses(ExamStart, "assignment", cutoff)


def old_extensions(cutoff: datetime) -> QuerySet[Extension]:
    return _in_ended_courses(Extension, "assignment", cutoff)


def old_runs(cutoff: datetime) -> QuerySet[Run]:
    """Signed-in people's runs made before ``cutoff``, except those a course item keeps (its
    answer key, a variant's run): the course's own, not the person's."""
    return (
        Run.objects.filter(owner__isnull=False, created_at__lt=cutoff)
        .exclude(Exists(Item.objects.filter(key_run=OuterRef("pk"))))
        .exclude(Exists(Variant.objects.filter(run=OuterRef("pk"))))
    )


def old_invitations(cutoff: datetime) -> QuerySet[Invitation]:
    """Invitations by e-mail address made before ``cutoff``: answered (the person is on the
    roster now, or said no) or pending past the link's life (it cannot be used any more)."""
    link_life = timedelta(days=settings.PLAYGROUND_INVITATION_DAYS)
    expired = Q(status=Invitation.Status.PENDING, created_at__lt=timezone.now() - link_life)
    return (
        Invitation.objects.filter(created_at__lt=cutoff)
        .exclude(email="")
        .filter(~Q(status=Invitation.Status.PENDING) | expired)
    )


LTI_SCORE_LOG = "lti.ScoreLog"


def _lti_score_log(cutoff: datetime) -> QuerySet[Any]:
    # Each try at sending a grade to the LMS (the passback's trail): the grade itself stays in
    # the submission and in the LMS.
    return apps.get_model(LTI_SCORE_LOG).objects.filter(at__lt=cutoff)


RULES: list[Rule] = [
    Rule("submissions", "PLAYGROUND_RETAIN_SUBMISSIONS_DAYS", old_submissions),
    Rule("step_predictions", "PLAYGROUND_RETAIN_SUBMISSIONS_DAYS", old_step_predictions),
    Rule("exam_starts", "PLAYGROUND_RETAIN_SUBMISSIONS_DAYS", old_exam_starts),
    Rule("extensions", "PLAYGROUND_RETAIN_SUBMISSIONS_DAYS", old_extensions),
    Rule("runs", "PLAYGROUND_RETAIN_RUNS_DAYS", old_runs, before_delete=remember_links),
    Rule("invitations", "PLAYGROUND_RETAIN_INVITATIONS_DAYS", old_invitations),
    Rule("lti_score_log", "PLAYGROUND_RETAIN_LTI_DAYS", _lti_score_log, app="playground.lti"),
]


def _usable(rule: Rule) -> bool:
    if rule.app and not apps.is_installed(rule.app):
        return False
    if not rule.app:
        return True
    try:
        rule.rows(timezone.now())
    except LookupError:  # the app is there, the model not (yet)
        return False
    return True


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def apply_retention(batch_size: int = BATCH) -> dict[str, int]:
    """Delete what each rule's period has passed for; returns how many rows each rule deleted
    (rules kept for ever are left out)."""
    now = timezone.now()
    counts: dict[str, int] = {}
    for rule in RULES:
        days = int(getattr(settings, rule.setting, 0) or 0)
        if days <= 0 or not _usable(rule):
            continue
        cutoff = now - timedelta(days=days)
        try:
            counts[rule.name] = delete_in_batches(rule.rows(cutoff), batch_size, rule.before_delete)
        except Exception:
            log.exception("retention rule %s failed; the next beat tries again", rule.name)
            continue
        if counts[rule.name]:
            log.info("retention: %d %s older than %d day(s) deleted", counts[rule.name],
                     rule.name, days)  # fmt: skip
    return counts
