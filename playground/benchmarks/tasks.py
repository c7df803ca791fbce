"""The evaluation tasks, on the ``batch`` queue: working through the results in chunks, and
scoring a finished evaluation again."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from playground.benchmarks import execution
from playground.lib.worktimes import RESCORE


# Acknowledged on receipt: an evaluation runs for longer than the broker's visibility timeout,
# and a redelivered copy would only compete with it. A worker that dies is covered by the
# reaper (playground.reaper), which sends the evaluation again once its lease lapses.
@shared_task(acks_late=False, reject_on_worker_lost=False)
def run_evaluation(evaluation_id: int) -> str:
    """Work through the evaluation (resumable: only pending results are taken)."""
    return execution.execute(evaluation_id)


# Acknowledged late: a re-scoring is idempotent (it writes once, at the end, in one
# transaction), so a copy redelivered after a worker died (or, for one that runs past the
# visibility timeout, while it still works) only does the same work again.
@shared_task(acks_late=True, soft_time_limit=RESCORE.soft_s, time_limit=RESCORE.hard_s)
def rescore_evaluation(evaluation_id: int) -> dict[str, Any]:
    """Score a finished evaluation again under the current rules (rescoring.py)."""
    from playground.benchmarks import rescoring

    return rescoring.rescore(evaluation_id)
