"""Celery tasks of the classroom: grading a puzzle answer runs sat(answer) in the sandbox;
invitation links are e-mailed outside the request (a roster may name hundreds of addresses and
a mail server may be slow)."""

from __future__ import annotations

import logging

from celery import shared_task

from playground.classroom.models import Submission
from playground.classroom.services import grade_puzzle

log = logging.getLogger(__name__)

# Shown to the student when grading failed for a reason that is ours; the detail is logged.
NOT_GRADED = (
    "This answer could not be checked: the server failed while running it (the error was "
    "logged). Your instructor can grade it by hand."
)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def grade_puzzle_submission(submission_id: int) -> str:
    submission = (
        Submission.objects.select_related("item__puzzle")
        .filter(pk=submission_id, status=Submission.Status.PENDING)
        .first()
    )
    if submission is None:
        return "skipped"
    try:
        grade_puzzle(submission)
    except Exception:  # last resort (SoftTimeLimitExceeded too): never "being graded" for ever
        log.exception("submission %s: grading failed", submission_id)
        Submission.objects.filter(pk=submission_id, status=Submission.Status.PENDING).update(
            status=Submission.Status.GRADED,
            score=0.0,
            credit=0.0,
            feedback={**submission.feedback, "message": NOT_GRADED, "details": {}},
        )
        return "failed"
    return "ok"


@shared_task(soft_time_limit=600, time_limit=660)
def send_invitation_mails(invitation_ids: list[int], base_url: str) -> int:
    from playground.classroom.invitations import send_mails

    return send_mails(invitation_ids, base_url)
