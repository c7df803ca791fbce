"""The Celery tasks of a run: the real execution (queue ``sandbox``), the model's emulation
(``llm``), thin wrappers over ``pipeline.py``, and code other processes send to the sandbox
queue (``sandboxing.py``). Their names are in ``CELERY_TASK_ROUTES`` and in
queued messages: never rename them."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from playground.lib import broker
from playground.lib.worktimes import EMULATION, LEASE_S, SANDBOX, SANDBOX_JOB, SURPRISE
from playground.runs import pipeline, sandboxing, surprise


def again_if_held(task: Task, outcome: str) -> str:
    """A copy of a task that found its work's lease held (``"held"``) looks again once the
    lease could have lapsed: a copy Celery hands out at once after killing a pool child finds
    the dead child's lease, which lapses ``LEASE_S`` later; then this copy takes the work
    (sooner than the reaper), or finds it done if the holder was alive after all."""
    if outcome == "held" and not task.request.called_directly and task.request.retries < 2:
        raise task.retry(countdown=LEASE_S, max_retries=2)
    return outcome


@shared_task(bind=True, acks_late=True, soft_time_limit=SANDBOX.soft_s, time_limit=SANDBOX.hard_s)
def execute_real_run(self: Task, run_id: int) -> str:
    """Run the program of ``run_id`` in the sandbox and store its trace (idempotent)."""
    return again_if_held(self, pipeline.execute_real(run_id))


@shared_task(
    bind=True, acks_late=True, soft_time_limit=EMULATION.soft_s, time_limit=EMULATION.hard_s
)
def execute_emulation(self: Task, run_id: int) -> str:
    """Have the run's model emulate the run's item with the run's method (idempotent)."""
    return again_if_held(self, pipeline.execute_emulation(run_id))


@shared_task(bind=True, acks_late=True, soft_time_limit=SURPRISE.soft_s, time_limit=SURPRISE.hard_s)
def score_surprise(self: Task, run_id: int) -> str:
    """Score the real trace of ``run_id`` under its model and keep the surprise (idempotent:
    runs/surprise.py)."""
    return again_if_held(self, surprise.score(run_id))


@shared_task(acks_late=True, soft_time_limit=SANDBOX_JOB.soft_s, time_limit=SANDBOX_JOB.hard_s)
def run_sandbox_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run code another process sent (sandboxing.py: a Chain of Code run, a puzzle's check, an
    evaluation's scoring) and return its trace to the process that waits for it."""
    return sandboxing.serve(payload)


def send_part(run_id: int, part: str, attempt: int) -> None:
    """Send the task of a run's part (``real`` or ``emulation``) under the id the reaper looks
    for in the broker when no task has taken it (runs/recovery.py, lib/broker.py)."""
    task = {"real": execute_real_run, "emulation": execute_emulation}[part]
    task.apply_async((run_id,), task_id=broker.task_id("run", run_id, part, attempt))
