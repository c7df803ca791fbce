"""Celery tasks: the real execution (queue ``sandbox``) and the model's emulation (``llm``)."""

from __future__ import annotations

import logging
import threading
import time

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from playground import sandbox
from playground.emulation import output_prediction
from playground.llm.client import LLMError, stream_chat
from playground.llm.registry import RegistryError, get_model
from playground.runs.limits import limits_for_run
from playground.runs.models import Run, Trace
from playground.runs.services import announce, fail_run, finish_if_complete

log = logging.getLogger(__name__)
PERSIST_EVERY_S = 0.5  # streamed text is saved in batches, never per token


def _start(run_id: int) -> Run | None:
    """The run, marked running; None when it is gone or already finished (a retried task)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return None
        if run.status == Run.Status.QUEUED:
            run.status = Run.Status.RUNNING
            run.started_at = timezone.now()
            run.save(update_fields=["status", "started_at"])
        return run


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def execute_real_run(run_id: int) -> str:
    """Run the program of ``run_id`` in the sandbox and store its trace. Idempotent: a retried
    or redelivered task finds the trace stored (or re-runs a run left by a dead worker)."""
    run = _start(run_id)
    if run is None:
        return "skipped"
    if not run.traces.filter(kind=Trace.Kind.REAL).exists():
        try:
            trace = sandbox.run(
                run.source,
                call=run.call or None,
                stdin=run.stdin,
                limits=limits_for_run(run.limits),
            )
        except sandbox.SandboxUnavailable as exc:
            log.error("run %s: sandbox unavailable: %s", run_id, exc)
            fail_run(run_id, f"The sandbox is not available on this server: {exc}")
            return "failed"
        Trace.objects.update_or_create(
            run_id=run_id,
            kind=Trace.Kind.REAL,
            defaults={"status": trace["status"], "step_count": len(trace["steps"]), "data": trace},
        )
        announce(
            run_id,
            "trace",
            status=trace["status"],
            steps=len(trace["steps"]),
            result=trace["result"],
        )
    finish_if_complete(run_id)
    return "ok"


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def execute_emulation(run_id: int) -> str:
    """Ask the run's model to emulate the program with the run's method, streaming its answer
    into the run (saved in batches); a cancelled run closes the stream."""
    run = _start(run_id)
    if run is None:
        return "skipped"
    if run.emulation_done:
        finish_if_complete(run_id)
        return "ok"
    if not run.call:
        fail_run(run_id, "Output prediction needs a call expression, e.g. f([1, 2]).")
        return "failed"
    try:
        model = get_model(run.model)
    except (KeyError, RegistryError):
        fail_run(run_id, f"The model {run.model!r} is not configured on this server.")
        return "failed"
    cancel = threading.Event()
    messages = output_prediction.messages(run.method, run.source, run.call)
    last_save = time.monotonic()
    announce(run_id, "status", text=f"Asking {model.label}…")
    try:
        with stream_chat(
            model,
            messages,
            max_tokens=run.max_tokens,
            temperature=run.temperature,
            seed=run.seed,
            cancel=cancel,
        ) as stream:
            for delta in stream:
                # Viewers get every delta at once (a Redis append and a group send: cheap);
                # the database gets the text in batches.
                announce(run_id, "token", text=delta)
                if time.monotonic() - last_save >= PERSIST_EVERY_S:
                    last_save = time.monotonic()
                    Run.objects.filter(pk=run_id).update(emulated_text=stream.text)
                    if Run.objects.filter(pk=run_id, status=Run.Status.CANCELLED).exists():
                        cancel.set()
    except LLMError as exc:
        if not Run.objects.filter(pk=run_id, status=Run.Status.CANCELLED).exists():
            fail_run(run_id, f"The model could not answer: {exc}")
        return "failed"
    prediction = output_prediction.extract(stream.text, run.call)
    Run.objects.filter(pk=run_id).update(
        emulated_text=stream.text,
        prediction=prediction.text or "",
        # Why nothing could be read, until the verdict replaces it.
        verdict={"problem": prediction.problem} if prediction.problem else {},
        emulation_done=True,
        prompt_tokens=stream.prompt_tokens,
        completion_tokens=stream.completion_tokens,
    )
    finish_if_complete(run_id)
    return "ok"
