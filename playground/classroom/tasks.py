"""Celery tasks of the classroom: grading a puzzle answer runs sat(answer) in the sandbox."""

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
