"""The Celery tasks of a run: the real execution (queue ``sandbox``) and the model's emulation
(``llm``), thin wrappers over ``pipeline.py``. Their names are in ``CELERY_TASK_ROUTES`` and in
queued messages: never rename them."""

from __future__ import annotations

from celery import shared_task

from playground.runs import pipeline


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def execute_real_run(run_id: int) -> str:
    """Run the program of ``run_id`` in the sandbox and store its trace (idempotent)."""
    return pipeline.execute_real(run_id)


@shared_task(acks_late=True, soft_time_limit=900, time_limit=960)
def execute_emulation(run_id: int) -> str:
    """Have the run's model emulate the run's item with the run's method (idempotent)."""
    return pipeline.execute_emulation(run_id)
