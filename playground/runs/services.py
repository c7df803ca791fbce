"""Starting and finishing runs: writes that touch several models, and the hand-off to Celery."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.emulation.judging import judge_program
from playground.emulation.puzzle import PRELUDE as PUZZLE_PRELUDE
from playground.programs.models import Program, Puzzle, TaskExample
from playground.runs.events import EventKind, publish
from playground.runs.models import Run, Trace

log = logging.getLogger(__name__)


def start_run(
    *,
    program: Program | None = None,
    puzzle: Puzzle | None = None,
    task_example: TaskExample | None = None,
    user: Any,
    anon_token: str | None,
    method: str = "real",
    model: str = "",
    limits: dict[str, Any] | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int = 512,
    enqueue: bool = True,
    budget_key: str | None = None,
) -> Run:
    """Queue a run of one item: the real execution on ``sandbox`` (programs only) and, for an
    emulation method, the model on ``llm``; both are sent once the run row is committed.
    ``enqueue=False``: the caller executes the tasks itself (an evaluation's batch worker).
    ``budget_key``: whose token budget the model's calls spend (``ratelimits.whose(request)``
    for a request); by default a signed-in user's who is not staff (their evaluations, the
    answer keys of their items), nobody's for staff and the command line."""
    from playground.runs.tasks import execute_emulation, execute_real_run

    if (program, puzzle, task_example).count(None) != 2:
        raise ValueError("a run is of exactly one program, puzzle or task example")
    if program is None and method == "real":
        raise ValueError("only a program can be run without a model")
    if program is not None:
        source, call, stdin = program.source, program.call, program.stdin
    elif puzzle is not None:
        source, call, stdin = PUZZLE_PRELUDE + puzzle.sat, "", ""  # as the sandbox runs it
    else:
        assert task_example is not None
        source, call, stdin = task_example.input, "", ""
    signed_in = getattr(user, "is_authenticated", False)
    if budget_key is None:
        budget_key = f"user:{user.pk}" if signed_in and not user.is_staff else ""
    with transaction.atomic():
        run = Run.objects.create(
            program=program,
            puzzle=puzzle,
            task_example=task_example,
            method=method,
            model=model if method != "real" else "",
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            source=source,
            call=call,
            stdin=stdin,
            limits=limits or {},
            owner=user if signed_in else None,
            anon_owner="" if signed_in else (anon_token or ""),
            budget_key=budget_key if method != "real" else "",
        )
        if program is not None and enqueue:
            transaction.on_commit(lambda: execute_real_run.delay(run.pk))
        if enqueue and method != "real":
            transaction.on_commit(lambda: execute_emulation.delay(run.pk))
    return run


def finish_if_complete(run_id: int) -> None:
    """Mark the run done once every part has arrived, judging the model against the real run."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return
        real = run.traces.filter(kind=Trace.Kind.REAL).first()
        if (run.has_real_run and real is None) or (run.is_emulated and not run.emulation_done):
            return
        if run.is_emulated and run.has_real_run and real is not None:
            _judge_against_real(run, real.data)
        run.status = Run.Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["verdict", "comparison", "status", "finished_at"])
    announce(
        run.events_key, "done", verdict=run.verdict or None, comparison=_summary(run.comparison)
    )


def _judge_against_real(run: Run, real: dict[str, Any]) -> None:
    """The verdict on the model's value and the comparison with the real run."""
    emulated = run.traces.filter(kind=Trace.Kind.EMULATED).first()
    run.verdict, run.comparison = judge_program(
        run.method,
        real,
        call=run.call,
        prediction=run.prediction or None,
        problem=run.verdict.get("problem"),
        emulated=emulated.data if emulated else None,
        model_calls=run.model_calls,
        text=run.emulated_text,
        hit_limit=hit_token_limit(run),
        max_tokens=run.max_tokens,
    )


def hit_token_limit(run: Run) -> bool:
    """Whether the model's answer ended at its token limit: the engine said so for the last
    answer (``details["endings"]``, how each answer ended, stored since early stopping), or, for
    runs stored before, the one answer of a single-call method used the whole budget."""
    details = run.details if isinstance(run.details, dict) else {}
    endings = details.get("endings")
    if isinstance(endings, list) and endings:
        return endings[-1] == "length"
    return (
        run.model_calls == 1
        and run.completion_tokens is not None
        and run.completion_tokens >= run.max_tokens
    )


def _summary(comparison: dict[str, Any] | None) -> dict[str, Any] | None:
    """The comparison without its per-step list, for live events."""
    if not comparison:
        return None
    return {k: v for k, v in comparison.items() if k not in ("steps", "per_variable")}


def fail_run(run_id: int, message: str) -> None:
    """The run cannot complete: say why (the message is shown to the user)."""
    failed = (
        Run.objects.filter(pk=run_id)
        .exclude(status__in=Run.FINISHED)
        .update(status=Run.Status.FAILED, error=message, finished_at=timezone.now())
    )
    run = Run.objects.only("pk", "created_at").filter(pk=run_id).first() if failed else None
    if run is not None:
        announce(run.events_key, "failed", error=message)


def announce(key: str, kind: EventKind, **data: Any) -> None:
    """Publish a live event of the run whose ``events_key`` is ``key``; viewers are a
    convenience, so a broken broadcast never fails a run (the database stays the record)."""
    try:
        publish(key, kind, **data)
    except Exception:  # Redis away, for instance
        log.warning("could not publish %s for %s", kind, key, exc_info=True)


def cancel_run(run: Run) -> bool:
    """Cancel a run still in progress; the emulation task notices and closes the model's stream."""
    updated = (
        Run.objects.filter(pk=run.pk)
        .exclude(status__in=Run.FINISHED)
        .update(status=Run.Status.CANCELLED, finished_at=timezone.now())
    )
    if updated:
        announce(run.events_key, "cancelled")
    return bool(updated)


def requeue_stale_runs(*, older_than_s: float) -> list[int]:
    """Send unfinished runs again whose tasks a dead worker may have taken with it (both tasks are
    idempotent, so a run that was only slow is not harmed). Returns the run ids."""
    from playground.runs.tasks import execute_emulation, execute_real_run

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stale = list(
        Run.objects.filter(
            status__in=[Run.Status.QUEUED, Run.Status.RUNNING], created_at__lt=cutoff
        ).values_list("pk", "method", "emulation_done", "program_id")
    )
    for pk, method, emulation_done, program_id in stale:
        real_missing = not Trace.objects.filter(run_id=pk, kind=Trace.Kind.REAL).exists()
        if program_id is not None and real_missing:
            execute_real_run.delay(pk)
        if method != "real" and not emulation_done:
            execute_emulation.delay(pk)
        finish_if_complete(pk)
    return [pk for pk, *_ in stale]
