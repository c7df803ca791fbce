"""Answers whose grading task died, graded again: the reaper's sweep of submissions
(playground.reaper; timings in lib/worktimes.py).

An answer graded in the sandbox (a puzzle's, a "predict the input" call) waits as "being graded"
for its task (``tasks.grade_puzzle_submission``), which holds the submission's lease while it
grades and marks it taken. One still waiting is sent again when a task took it and holds no
lease any more (it died), or when no task took it within ``LOST_AFTER_S`` of its sending and
the broker holds its message in none of its places (lost with a Redis primary that failed over,
or never sent; lib/broker.py: each message is sent under an id made of the submission and the
attempt); after ``MAX_RESENDS`` it is marked as not graded, with the message the student reads
when grading fails, so that the instructor grades it by hand.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from playground.classroom.models import Submission
from playground.classroom.tasks import NOT_GRADED, grade_puzzle_submission, send_grading
from playground.lib import broker, leases, worktimes
from playground.runs.pipeline import work_key

log = logging.getLogger(__name__)


def reap_submissions(now: datetime | None = None) -> list[tuple[int, str]]:
    """Send again every answer whose grading task died or whose message was lost; (submission
    id, why) for each one sent again or given up."""
    now = now or timezone.now()
    looked_for_before = now - timedelta(seconds=worktimes.LOST_AFTER_S)
    rows = list(
        Submission.objects.filter(status=Submission.Status.PENDING).values(
            "pk", "submitted_at", "feedback"
        )
    )
    if not rows:
        return []
    client = leases.redis_client()
    keys = [work_key("submission", row["pk"]) for row in rows]
    alive = leases.live_many(keys)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.exists(f"{key}:taken")
        pipe.get(f"{key}:sent")  # when the sweep last sent it (a Unix time)
        pipe.get(f"{key}:resends")
    marks = pipe.execute()
    waiting: list[tuple[dict[str, Any], str, bool, str]] = []
    for row, key, live, was_taken, sent, resent in zip(
        rows, keys, alive, marks[0::3], marks[1::3], marks[2::3], strict=True
    ):
        if live:
            continue
        last_sent = row["submitted_at"]
        if sent is not None:
            last_sent = max(last_sent, datetime.fromtimestamp(float(sent), tz=UTC))
        if was_taken or last_sent < looked_for_before:
            attempt = broker.task_id("submission", row["pk"], "grade", int(resent or 0))
            waiting.append((row, key, bool(was_taken), attempt))
    in_broker = broker.held(
        (attempt for _, _, was_taken, attempt in waiting if not was_taken),
        [broker.queue_of(grade_puzzle_submission.name)],
    )
    found: list[tuple[int, str]] = []
    for row, key, was_taken, attempt in waiting:
        if was_taken:
            why = "its worker stopped"
        elif attempt not in in_broker:
            why = "its message is not in the broker"
        else:
            continue  # waiting its turn in the queue, or held by a worker
        # Claim the resend (one sweep at a time holds the reaper's lock; this keeps it so).
        if not client.delete(f"{key}:taken") and was_taken:
            continue
        resends = int(client.incr(f"{key}:resends"))
        client.expire(f"{key}:resends", 86_400)
        if resends > worktimes.MAX_RESENDS:
            feedback = {**(row["feedback"] or {}), "message": NOT_GRADED, "details": {}}
            Submission.objects.filter(pk=row["pk"], status=Submission.Status.PENDING).update(
                status=Submission.Status.GRADED, score=0.0, credit=0.0, feedback=feedback
            )
            log.error("submission %s lost %d times: not graded", row["pk"], resends)
            found.append((row["pk"], f"given up: {why}"))
            continue
        # Looked for again two sweeps from now, under the new attempt's id.
        client.set(f"{key}:sent", now.timestamp(), ex=86_400)
        log.warning("submission %s: grading sent again (%s)", row["pk"], why)
        send_grading(row["pk"], resends)
        found.append((row["pk"], why))
    return found
