"""Starting and finishing runs: writes that touch several models, and the hand-off to Celery."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.emulation.output_prediction import Prediction, judge
from playground.programs.models import Program
from playground.runs.models import Run, Trace

log = logging.getLogger(__name__)


def start_run(
    *,
    program: Program,
    user: Any,
    anon_token: str | None,
    method: str = "real",
    model: str = "",
    limits: dict[str, Any] | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int = 512,
) -> Run:
    """Queue a run: the real execution on ``sandbox`` and, for an emulation method, the model on
    ``llm``; both are sent only once the run row is committed."""
    from playground.runs.tasks import execute_emulation, execute_real_run

    signed_in = getattr(user, "is_authenticated", False)
    with transaction.atomic():
        run = Run.objects.create(
            program=program,
            method=method,
            model=model if method != "real" else "",
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            source=program.source,
            call=program.call,
            stdin=program.stdin,
            limits=limits or {},
            owner=user if signed_in else None,
            anon_owner="" if signed_in else (anon_token or ""),
        )
        transaction.on_commit(lambda: execute_real_run.delay(run.pk))
        if method != "real":
            transaction.on_commit(lambda: execute_emulation.delay(run.pk))
    return run


def finish_if_complete(run_id: int) -> None:
    """Mark the run done once every part has arrived, judging the model against the real run."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return
        real = run.traces.filter(kind=Trace.Kind.REAL).first()
        if real is None or (run.is_emulated and not run.emulation_done):
            return
        if run.is_emulated:
            problem = run.verdict.get("problem") or "The model gave no readable answer."
            prediction = Prediction(run.prediction or None, problem)
            result = real.data.get("result") if real.data.get("status") == "ok" else None
            run.verdict = judge(prediction, result, run.call).as_dict()
            if real.data.get("status") != "ok" and result is None:
                run.verdict["explanation"] = (
                    f"The real run ended with {real.data.get('status')}, so there is no value to "
                    "compare the prediction with."
                )
        run.status = Run.Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["verdict", "status", "finished_at"])
    announce(run_id, "done", verdict=run.verdict or None)


def fail_run(run_id: int, message: str) -> None:
    """The run cannot complete: say why (the message is shown to the user)."""
    failed = (
        Run.objects.filter(pk=run_id)
        .exclude(status__in=Run.FINISHED)
        .update(status=Run.Status.FAILED, error=message, finished_at=timezone.now())
    )
    if failed:
        announce(run_id, "failed", error=message)


def announce(run_id: int, kind: str, **data: Any) -> None:
    """Publish a live event; viewers are a convenience, so a broken broadcast never fails a run
    (the database stays the record)."""
    from playground.streaming.events import publish

    try:
        publish(run_id, kind, **data)
    except Exception:  # Redis away, for instance
        log.warning("could not publish %s for run %s", kind, run_id, exc_info=True)


def cancel_run(run: Run) -> bool:
    """Cancel a run still in progress; the emulation task notices and closes the model's stream."""
    updated = (
        Run.objects.filter(pk=run.pk)
        .exclude(status__in=Run.FINISHED)
        .update(status=Run.Status.CANCELLED, finished_at=timezone.now())
    )
    if updated:
        announce(run.pk, "cancelled")
    return bool(updated)


def requeue_stale_runs(*, older_than_s: float) -> list[int]:
    """Send unfinished runs again whose tasks a dead worker may have taken with it (both tasks are
    idempotent, so a run that was only slow is not harmed). Returns the run ids."""
    from playground.runs.tasks import execute_emulation, execute_real_run

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stale = list(
        Run.objects.filter(
            status__in=[Run.Status.QUEUED, Run.Status.RUNNING], created_at__lt=cutoff
        ).values_list("pk", "method", "emulation_done")
    )
    for pk, method, emulation_done in stale:
        if not Trace.objects.filter(run_id=pk, kind=Trace.Kind.REAL).exists():
            execute_real_run.delay(pk)
        if method != "real" and not emulation_done:
            execute_emulation.delay(pk)
        finish_if_complete(pk)
    return [pk for pk, _, _ in stale]
