"""The evaluation tasks, on the ``batch`` queue: working through the results in chunks, and
scoring a finished evaluation again."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from playground.benchmarks import execution


# Acknowledged on receipt: an evaluation runs for longer than the broker's visibility timeout,
# and a redelivered copy would only compete with it. A worker that dies is covered by
# signals.resume_evaluations, which queues unfinished evaluations when the worker starts again.
@shared_task(acks_late=False, reject_on_worker_lost=False)
def run_evaluation(evaluation_id: int) -> str:
    """Work through the evaluation (resumable: only pending results are taken)."""
    return execution.execute(evaluation_id)


# Acknowledged late: a re-scoring is idempotent (it writes once, at the end, in one
# transaction), so a copy redelivered after a worker died only does the same work again.
@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def rescore_evaluation(evaluation_id: int) -> dict[str, Any]:
    """Score a finished evaluation again under the current rules (rescoring.py)."""
    from playground.benchmarks import rescoring

    return rescoring.rescore(evaluation_id)
