"""Celery tasks of the classroom: grading a puzzle answer runs sat(answer) in the sandbox (a
"predict the input" answer its call), and
checking a trace item's checkpoints runs its program there (both on queue ``sandbox``);
invitation links are e-mailed outside the request (a roster may name hundreds of addresses and
a mail server may be slow)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from playground.classroom import grading, variants
from playground.classroom.invitations import send_mails
from playground.classroom.marking import grade_later
from playground.classroom.models import Submission, Variant
from playground.lib import broker, leases
from playground.lib.worktimes import GRADING, LEASE_S, TaskLimits
from playground.runs.pipeline import work_key
from playground.runs.tasks import again_if_held

log = logging.getLogger(__name__)

# Shown to the student when grading failed for a reason that is ours; the detail is logged.
NOT_GRADED = (
    "This answer could not be checked: the server failed while running it (the error was "
    "logged). Your instructor can grade it by hand."
)


@shared_task(bind=True, acks_late=True, soft_time_limit=GRADING.soft_s, time_limit=GRADING.hard_s)
def grade_puzzle_submission(self: Task, submission_id: int) -> str:
    """Grade an answer that runs in the sandbox: a puzzle's, or a "predict the input" call
    (the name is older than the second; task names are in queued messages, never renamed).
    Holds the submission's lease while it grades (a second copy returns "held"); the reaper
    sends one again whose task died (recovery.py)."""
    key = work_key("submission", submission_id)
    with leases.Held([key], [1], LEASE_S) as lease:
        if lease.taken:
            leases.redis_client().set(f"{key}:taken", "1", ex=86_400)
            return _grade(submission_id)
    return again_if_held(self, "held")


def send_grading(submission_id: int, attempt: int) -> None:
    """Send an answer's grading under the id the reaper looks for in the broker when no task
    has taken it (classroom/recovery.py, lib/broker.py)."""
    task_id = broker.task_id("submission", submission_id, "grade", attempt)
    grade_puzzle_submission.apply_async((submission_id,), task_id=task_id)


def _grade(submission_id: int) -> str:
    submission = (
        Submission.objects.select_related("item__puzzle", "item__program", "item__key_run")
        .filter(pk=submission_id, status=Submission.Status.PENDING)
        .first()
    )
    if submission is None:
        return "skipped"
    if submission.variant_id is not None:  # a varied item: the student's own variant's key
        variant = Variant.objects.select_related("run").filter(pk=submission.variant_id).first()
        submission.item = variants.with_variant(submission.item, variant)
    try:
        grade_later(submission)
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


# Making a varied item's variants: at most variant_candidates.item sandbox runs, one by one.
VARIANTS = TaskLimits(900, 960)


@shared_task(bind=True, acks_late=True, soft_time_limit=VARIANTS.soft_s, time_limit=VARIANTS.hard_s)
def make_variants(self: Task, item_id: int, key: str) -> str:
    """Make a varied item's variants (variants.make) while holding the item's lease: a second
    copy of the task (a redelivery after a killed worker) finds it held and looks again later;
    the work it finds done (each candidate a row with its run) is not done twice."""
    with leases.Held([work_key("variants", item_id)], [1], LEASE_S) as lease:
        if lease.taken:
            return variants.make(item_id, key)
    return again_if_held(self, "held")


@shared_task(soft_time_limit=30, time_limit=40)
def check_checkpoints(
    source: str, call: str, stdin: str, checkpoints: list[dict[str, Any]]
) -> dict[str, Any]:
    """Run a program as its answer key would (queue ``sandbox``: the web process never runs
    the sandbox) and say what its trace holds at each checkpoint. Small on purpose: the item
    form waits for it, and a whole trace can be megabytes."""
    from playground import sandbox
    from playground.runs.limits import limits_for_run

    try:
        trace = sandbox.run(source, call=call or None, stdin=stdin, limits=limits_for_run({}))
    except sandbox.SandboxUnavailable as exc:
        return {"unavailable": str(exc)[:500]}
    return {
        "status": trace["status"],
        "found": grading.checkpoint_values(trace["steps"], checkpoints),
    }


@shared_task(soft_time_limit=600, time_limit=660)
def send_invitation_mails(invitation_ids: list[int], base_url: str) -> int:
    return send_mails(invitation_ids, base_url)
