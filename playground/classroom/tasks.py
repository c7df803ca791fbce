"""Celery tasks of the classroom: grading a puzzle answer runs sat(answer) in the sandbox;
invitation links are e-mailed outside the request (a roster may name hundreds of addresses and
a mail server may be slow)."""

from __future__ import annotations

from celery import shared_task

from playground.classroom.models import Submission
from playground.classroom.services import grade_puzzle


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def grade_puzzle_submission(submission_id: int) -> str:
    submission = (
        Submission.objects.select_related("item__puzzle")
        .filter(pk=submission_id, status=Submission.Status.PENDING)
        .first()
    )
    if submission is None:
        return "skipped"
    grade_puzzle(submission)
    return "ok"


@shared_task(soft_time_limit=600, time_limit=660)
def send_invitation_mails(invitation_ids: list[int], base_url: str) -> int:
    from playground.classroom.invitations import send_mails

    return send_mails(invitation_ids, base_url)
