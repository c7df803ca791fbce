"""The Celery tasks of a run: the real execution (queue ``sandbox``), the model's emulation
(``llm``), thin wrappers over ``pipeline.py``, and code other processes send to the sandbox
queue (``sandboxing.py``). Their names are in ``CELERY_TASK_ROUTES`` and in
queued messages: never rename them."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from playground.lib.worktimes import EMULATION, SANDBOX, SANDBOX_JOB
from playground.runs import pipeline, sandboxing


@shared_task(acks_late=True, soft_time_limit=SANDBOX.soft_s, time_limit=SANDBOX.hard_s)
def execute_real_run(run_id: int) -> str:
    """Run the program of ``run_id`` in the sandbox and store its trace (idempotent)."""
    return pipeline.execute_real(run_id)


@shared_task(acks_late=True, soft_time_limit=EMULATION.soft_s, time_limit=EMULATION.hard_s)
def execute_emulation(run_id: int) -> str:
    """Have the run's model emulate the run's item with the run's method (idempotent)."""
    return pipeline.execute_emulation(run_id)


@shared_task(acks_late=True, soft_time_limit=SANDBOX_JOB.soft_s, time_limit=SANDBOX_JOB.hard_s)
def run_sandbox_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run code another process sent (sandboxing.py: a Chain of Code run, a puzzle's check, an
    evaluation's scoring) and return its trace to the process that waits for it."""
    return sandboxing.serve(payload)
