"""Celery tasks of the ``sandbox`` queue."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from playground import sandbox
from playground.runs.limits import limits_for_run
from playground.runs.models import Run, Trace

log = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def execute_real_run(run_id: int) -> str:
    """Run the program of ``run_id`` in the sandbox and store its trace. Idempotent: a retried
    or redelivered task finds the run finished (or re-runs one left running by a dead worker)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return "skipped"
        run.status = Run.Status.RUNNING
        run.started_at = timezone.now()
        run.save(update_fields=["status", "started_at"])
    try:
        trace = sandbox.run(
            run.source, call=run.call or None, stdin=run.stdin, limits=limits_for_run(run.limits)
        )
    except sandbox.SandboxUnavailable as exc:
        log.error("run %s: sandbox unavailable: %s", run_id, exc)
        Run.objects.filter(pk=run_id).update(
            status=Run.Status.FAILED,
            error=f"The sandbox is not available on this server: {exc}",
            finished_at=timezone.now(),
        )
        return "failed"
    with transaction.atomic():
        Trace.objects.update_or_create(
            run_id=run_id,
            kind=Trace.Kind.REAL,
            defaults={"status": trace["status"], "step_count": len(trace["steps"]), "data": trace},
        )
        Run.objects.filter(pk=run_id).update(status=Run.Status.DONE, finished_at=timezone.now())
    return trace["status"]
