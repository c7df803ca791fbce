"""The score passback task: one student's grade on one LMS link, read when it runs and POSTed
to the line item. Idempotent (the same grade sent twice is the same score), retried with
backoff when the LMS fails or cannot be reached, acknowledged late so that a killed worker's
message is handed out again; every try is a ScoreLog line."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

import httpx
from celery import Task, shared_task
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from playground.lib import worktimes
from playground.lti import ags, passback, protocol
from playground.lti.models import ResourceLink, ScoreLog, ScoreSend

log = logging.getLogger(__name__)

MAX_RETRIES = 6
# The first retry's wait (doubling after); the fault tests shorten it.
_RETRY_RAW = os.environ.get("PLAYGROUND_LTI_RETRY_S", "")
RETRY_S = int(_RETRY_RAW) if _RETRY_RAW.isdigit() and 0 < int(_RETRY_RAW) <= 10 else 10
# A send still queued (or failed) this long after its task was last sent to the broker is sent
# again by the sweep (resend_stale_scores): longer than a retry's longest wait plus a try, and
# than the broker's visibility timeout, so that a message a dead worker held has come back by
# itself first. What a sweep sends again at once at most.
STALE_AFTER_S = worktimes.UNCLAIMED_AFTER_S
SWEEP_BATCH = 500
SWEEP_BY = "sweep: sent again"


def _backoff(retries: int) -> int:
    return min(600, RETRY_S * 2**retries)


@shared_task(bind=True, acks_late=True, soft_time_limit=60, time_limit=90, max_retries=MAX_RETRIES)
def send_score(self: Task, send_id: int, by: str = "") -> str:
    row = (
        ScoreSend.objects.select_related("link__context__platform", "link__assignment")
        .filter(pk=send_id)
        .first()
    )
    if row is None or row.link.assignment is None:
        return "gone"
    platform = row.link.context.platform
    identity = platform.users.filter(user_id=row.student_id).first()
    if identity is None:
        return "gone"
    assignment = row.link.assignment
    score = passback.current(assignment, row.student_id)
    payload: dict[str, object] = {
        "userId": identity.sub,
        "activityProgress": score.activity,
        "gradingProgress": score.grading,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    if score.given is not None:
        payload.update(scoreGiven=score.given, scoreMaximum=score.maximum)
    status: int | None = None
    try:
        with httpx.Client(timeout=protocol.HTTP_TIMEOUT_S) as client:
            try:
                status = _send(client, row, score, payload)
            except ags.PlatformError as exc:
                if exc.status != 401:
                    raise
                # An expired or revoked token: a new one, once.
                ags.forget_token(platform)
                status = _send(client, row, score, payload)
    except (ags.PlatformError, httpx.HTTPError, ValueError) as exc:
        retry = exc.retry if isinstance(exc, ags.PlatformError) else True
        status = exc.status if isinstance(exc, ags.PlatformError) else None
        message = str(exc)[:200] or type(exc).__name__
        last = self.request.retries >= MAX_RETRIES or not retry
        _record(row, score, status, message, by, failed=last)
        log.warning(
            "LTI score %s for send %s: %s", "failed" if last else "retried", send_id, message
        )
        if last:
            return "failed"
        raise self.retry(countdown=_backoff(self.request.retries)) from None
    _record(row, score, status, "sent", by, failed=False)
    return "sent"


def _send(
    client: httpx.Client, row: ScoreSend, score: passback.Score, payload: dict[str, object]
) -> int:
    link, platform, assignment = row.link, row.link.context.platform, row.link.assignment
    assert assignment is not None
    token = ags.access_token(client, platform)
    url = link.lineitem_url
    if not url:
        with transaction.atomic():
            # Two tasks must not make two line items for one link.
            locked = ResourceLink.objects.select_for_update().get(pk=link.pk)
            url = ags.line_item(
                client,
                token,
                locked,
                label=assignment.title,
                maximum=score.maximum,
                resource_id=f"assignment-{assignment.pk}",
            )
            link.lineitem_url = url
    return ags.post_score(client, token, url, payload)


def _record(
    row: ScoreSend,
    score: passback.Score,
    status: int | None,
    outcome: str,
    by: str,
    *,
    failed: bool,
) -> None:
    now = timezone.now()
    fields: dict[str, object] = {"tries": F("tries") + 1}
    if outcome == "sent":
        fields.update(
            status=ScoreSend.Status.SENT,
            score_given=score.given,
            score_maximum=score.maximum,
            grading_progress=score.grading,
            activity_progress=score.activity,
            sent_at=now,
            error="",
        )
    else:
        fields.update(
            status=ScoreSend.Status.FAILED if failed else ScoreSend.Status.QUEUED, error=outcome
        )
        if not failed:  # a retry is queued now: the sweep leaves it alone for STALE_AFTER_S
            fields.update(queued_at=now)
    ScoreSend.objects.filter(pk=row.pk).update(**fields)
    ScoreLog.objects.create(
        send=row,
        at=now,
        score_given=score.given,
        score_maximum=score.maximum,
        http_status=status,
        outcome=outcome,
        by=by[:150],
    )


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def send_revealed_scores() -> int:
    """Hourly (Celery beat): a score held back while the classroom hid it from the student
    (``gradingProgress`` Pending, no score) is sent again when its assignment's last window
    closed after that send, since results that wait for the due time show then with no event
    of their own. The task sent decides afresh (an exam still unpublished: held back again;
    publishing sends it)."""
    now = timezone.now()
    held = (
        ScoreSend.objects.filter(status=ScoreSend.Status.SENT, score_given__isnull=True)
        .select_related("link__assignment")
        .order_by("-pk")[:5000]
    )
    queued = 0
    for row in held:
        assignment = row.link.assignment
        if assignment is None or row.sent_at is None:
            continue
        if row.sent_at < assignment.closes_at() <= now:
            passback.queue(assignment_id=assignment.pk, student_id=row.student_id)
            queued += 1
    return queued


def resend_stale_scores(now: datetime | None = None) -> list[int]:
    """Send again every score whose task was lost: still queued (or failed) ``STALE_AFTER_S``
    after its task was last sent to the broker (a message the broker lost, a worker killed
    mid-send whose message has not come back, an LMS down longer than the retries). Run by the
    reaper's sweep (playground/reaper.py). Each row is claimed under ``FOR UPDATE SKIP LOCKED``
    and its ``queued_at`` moved to now in the same transaction, so two sweeps at once send each
    row once; the task is sent after the commit. A row sent again ``worktimes.MAX_RESENDS``
    times since the last grade change or "Send again" is left failed, with a message that says
    so (the staff's page shows it, with its "Send again"). The ids sent again."""
    now = now or timezone.now()
    before = now - timedelta(seconds=STALE_AFTER_S)
    stale = Q(status=ScoreSend.Status.QUEUED) | Q(status=ScoreSend.Status.FAILED)
    with transaction.atomic():
        rows = list(
            ScoreSend.objects.select_for_update(skip_locked=True)
            .filter(stale, queued_at__lt=before)
            .exclude(status=ScoreSend.Status.FAILED, resends__gte=worktimes.MAX_RESENDS)
            .order_by("queued_at", "pk")
            .values_list("pk", "resends")[:SWEEP_BATCH]
        )
        again = [pk for pk, resends in rows if resends < worktimes.MAX_RESENDS]
        given_up = [pk for pk, resends in rows if resends >= worktimes.MAX_RESENDS]
        if given_up:
            ScoreSend.objects.filter(pk__in=given_up).update(
                status=ScoreSend.Status.FAILED,
                error=f"Sent again {worktimes.MAX_RESENDS} times with no answer: use Send again.",
            )
        if again:
            ScoreSend.objects.filter(pk__in=again).update(
                status=ScoreSend.Status.QUEUED, queued_at=now, resends=F("resends") + 1
            )
            transaction.on_commit(lambda: [send_score.delay(pk, SWEEP_BY) for pk in again])
    if again or given_up:
        log.warning("LTI scores sent again: %s; given up: %s", again, given_up)
    return again
