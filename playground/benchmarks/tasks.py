"""The evaluation tasks: topping an evaluation's window up (``run_evaluation``), one item
(``evaluate_item``), both on ``batch``; scoring a finished evaluation again
(``rescore_evaluation``, on the sandbox queue: its checks run code). Task names are in queued
messages: never rename them."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from playground.benchmarks import execution
from playground.lib import leases
from playground.lib.worktimes import ITEM, LEASE_S, SCORING
from playground.runs import pipeline


# Short and idempotent (it tops the window up under a lock), so acknowledged late. For an
# import it scores the checks in this process, holding the evaluation's lease: a redelivered
# copy finds it held.
@shared_task(acks_late=True, soft_time_limit=SCORING.soft_s, time_limit=SCORING.hard_s)
def run_evaluation(evaluation_id: int) -> str:
    """Start the evaluation, or top its window up (execution.dispatch)."""
    return execution.dispatch(evaluation_id)


# Acknowledged late and holding the result's lease: a worker that dies loses the item to the
# reaper, which puts it back; a redelivered copy finds it held or scored.
@shared_task(acks_late=True, soft_time_limit=ITEM.soft_s, time_limit=ITEM.hard_s)
def evaluate_item(result_id: int) -> str:
    """Run one item of an evaluation and score it (execution.work_on)."""
    return execution.work_on(result_id)


# Acknowledged late: a re-scoring is idempotent (it writes once, at the end, in one
# transaction), so a copy redelivered after a worker died (or, for one that runs past the
# visibility timeout, while it still works) only does the same work again.
@shared_task(acks_late=True, soft_time_limit=SCORING.soft_s, time_limit=SCORING.hard_s)
def rescore_evaluation(evaluation_id: int) -> dict[str, Any]:
    """Score a finished evaluation again under the current rules (rescoring.py), one process
    at a time (a copy that finds the lease held does nothing)."""
    from playground.benchmarks import rescoring

    key = pipeline.work_key("rescore", evaluation_id)
    with leases.Held([key], [1], LEASE_S) as lease:
        if not lease.taken:
            return {"held": True}
        return rescoring.rescore(evaluation_id)
