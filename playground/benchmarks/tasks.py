"""The evaluation task, on the ``batch`` queue: works through the results in chunks."""

from __future__ import annotations

from celery import shared_task

from playground.benchmarks import execution


# Acknowledged on receipt: an evaluation runs for longer than the broker's visibility timeout,
# and a redelivered copy would only compete with it. A worker that dies is covered by
# signals.resume_evaluations, which queues unfinished evaluations when the worker starts again.
@shared_task(acks_late=False, reject_on_worker_lost=False)
def run_evaluation(evaluation_id: int) -> str:
    """Work through the evaluation (resumable: only pending results are taken)."""
    return execution.execute(evaluation_id)
