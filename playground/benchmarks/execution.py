"""Working through an evaluation, on the batch worker: claiming pending results a few at a
time, sending each item through the run pipeline (the model in this worker's threads; the real
run and every check that runs code on the sandbox queue, which this worker waits for), scoring
it as its benchmark defines, and finishing the evaluation with its figures.

Its own module, apart from ``services`` (creating, cancelling and resuming evaluations, which
queue the Celery task): the task imports this and ``services`` imports the task, one way, so
there is no services <-> tasks circle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from playground import sandbox
from playground.benchmarks import imports, scoring
from playground.benchmarks.access import listable_programs
from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.summary import figures_of
from playground.emulation.input_prediction import function_of
from playground.emulation.judging import needed_no_model
from playground.lib import leases, worktimes
from playground.programs.models import Puzzle, TaskExample
from playground.runs import pipeline, sandboxing
from playground.runs.models import Run, Trace
from playground.runs.services import start_run
from playground.runs.tasks import execute_real_run

log = logging.getLogger(__name__)
MAX_FAILURES = 3  # tries of one result before it is scored as an error (never as wrong)


def _claim(evaluation: Evaluation, count: int) -> list[int]:
    """Take up to ``count`` pending results for this worker (others skip locked rows)."""
    with transaction.atomic():
        ids = list(
            Result.objects.select_for_update(skip_locked=True)
            .filter(evaluation=evaluation, status=Result.Status.PENDING)
            .order_by("index", "sample")
            .values_list("pk", flat=True)[:count]
        )
        Result.objects.filter(pk__in=ids).update(
            status=Result.Status.RUNNING, claimed_at=timezone.now()
        )
    return ids


def execute(evaluation_id: int, *, on_progress: Callable[[int, int], None] | None = None) -> str:
    """Work through the evaluation's pending results while holding its lease (one process at a
    time; a second copy of the task returns "held"), ``concurrency`` at a time (the model
    server batches concurrent requests), until none is left, it is cancelled or fails."""
    with leases.Held(
        [pipeline.work_key("evaluation", evaluation_id)], [1], worktimes.LEASE_S
    ) as lease:
        if not lease.taken:
            return "held"
        return _execute(evaluation_id, on_progress)


def _execute(evaluation_id: int, on_progress: Callable[[int, int], None] | None) -> str:
    evaluation = Evaluation.objects.get(pk=evaluation_id)
    if evaluation.is_finished:
        return evaluation.status
    now = timezone.now()
    # Taken: the reaper sends it again if this process dies (the lease lapses).
    Evaluation.objects.filter(pk=evaluation_id).update(claimed_at=now)
    if evaluation.origin == "import":  # uploaded outputs: scored, nothing generated
        return imports.score(evaluation_id, on_progress=on_progress)
    Evaluation.objects.filter(pk=evaluation_id).update(
        status=Evaluation.Status.RUNNING, started_at=evaluation.started_at or now
    )
    chunk = evaluation.concurrency * 2
    with ThreadPoolExecutor(max_workers=evaluation.concurrency) as pool:
        while True:
            status = Evaluation.objects.values_list("status", flat=True).get(pk=evaluation_id)
            if status in Evaluation.FINISHED:
                return str(status)
            ids = _claim(evaluation, chunk)
            if not ids:
                break
            list(pool.map(_process_in_thread, ids))
            if on_progress is not None:
                done = Result.objects.filter(
                    evaluation_id=evaluation_id, status=Result.Status.DONE
                ).count()
                on_progress(done, evaluation.total)
    if (
        not Result.objects.filter(evaluation_id=evaluation_id)
        .exclude(status=Result.Status.DONE)
        .exists()
    ):
        # Every result is scored: the figures are final, kept with the status in one write.
        figures = figures_of([evaluation])[evaluation_id]
        Evaluation.objects.filter(pk=evaluation_id, status=Evaluation.Status.RUNNING).update(
            status=Evaluation.Status.DONE, finished_at=timezone.now(), figures=figures
        )
    return "done"


def _process_in_thread(result_id: int) -> None:
    close_old_connections()
    try:
        process(result_id)
    except Exception as exc:
        log.exception("evaluation result %s failed", result_id)
        # Back to pending for another try; after MAX_FAILURES it is scored as an error (not as
        # wrong: the item was never judged), so one bad item cannot stall the evaluation.
        result = Result.objects.filter(pk=result_id, status=Result.Status.RUNNING)
        if result.filter(failures__gte=MAX_FAILURES - 1).update(
            status=Result.Status.DONE, passed=False, score_status="error",
            reason=f"Could not be run: {type(exc).__name__}: {exc}"[:2000],
            scored_at=timezone.now(), failures=MAX_FAILURES,
        ):  # fmt: skip
            return
        result.update(status=Result.Status.PENDING, failures=F("failures") + 1)
    finally:
        close_old_connections()


def process(result_id: int) -> None:
    """Run one result's item (the real run and the model, in this thread) and score it."""
    result = Result.objects.select_related("evaluation").get(pk=result_id)
    evaluation = result.evaluation
    t0 = time.monotonic()
    run = result.run
    if run is None:
        ref = result.item_ref
        item: dict[str, Any] = {}
        if "program" in ref:
            # Checked again here: a listed program may have been made private since.
            program = listable_programs(evaluation.owner).filter(pk=ref["program"]).first()
            if program is None:
                Result.objects.filter(pk=result_id, status=Result.Status.RUNNING).update(
                    status=Result.Status.DONE, passed=False, score_status="error",
                    reason="Not run: the program is no longer public or yours.",
                    scored_at=timezone.now(),
                )  # fmt: skip
                return
            item["program"] = program
        elif "puzzle" in ref:
            item["puzzle"] = Puzzle.objects.get(pk=ref["puzzle"])
        else:
            item["task_example"] = TaskExample.objects.get(pk=ref["task_example"])
        run = start_run(
            **item, user=evaluation.owner, anon_token=None, method=evaluation.method,
            model=evaluation.model, temperature=evaluation.temperature,
            seed=evaluation.seed + result.sample, max_tokens=evaluation.max_tokens,
            enqueue=False,
        )  # fmt: skip
        Result.objects.filter(pk=result_id).update(run=run)
    if run.program_id is not None:
        _real_run(run.pk)
    m0 = time.monotonic()
    pipeline.execute_emulation(run.pk)
    model_seconds = time.monotonic() - m0
    run.refresh_from_db()
    score = _score(run)
    real = run.real_trace if run.program_id is not None else None
    divergence = (run.comparison or {}).get("first_divergence") or {}
    updated = Result.objects.filter(pk=result_id, status=Result.Status.RUNNING).update(
        status=Result.Status.DONE,
        passed=score.passed,
        leakage=score.leakage,
        score_status=score.status,
        reason=score.reason[:2000],
        prediction=(run.prediction or "")[:5000],
        lines=len(run.source.splitlines()) if run.program_id else None,
        steps=real.step_count if real else None,
        divergence_step=divergence.get("real_step"),
        model_seconds=round(model_seconds, 3),
        wall_seconds=round(time.monotonic() - t0, 3),
        scored_at=timezone.now(),
    )
    if not updated:
        log.warning("result %s was scored elsewhere; this score is dropped", result_id)


def _real_run(run_id: int) -> None:
    """The item's real run: here where this process may start a sandbox (the command line),
    else sent to the sandbox queue and waited for, by its trace in the database (so a copy the
    reaper sends again after a sandbox worker died finishes it as well)."""
    if sandbox.forbidden() is None:
        pipeline.execute_real(run_id)
        return
    execute_real_run.apply_async(args=(run_id,), queue=settings.PLAYGROUND_SANDBOX_QUEUE)
    deadline = time.monotonic() + sandboxing.WAIT_FOR_WORKER_S + worktimes.SANDBOX.hard_s
    while not (
        Trace.objects.filter(run_id=run_id, kind=Trace.Kind.REAL).exists()
        or Run.objects.filter(pk=run_id, status__in=Run.FINISHED).exists()
    ):
        if time.monotonic() > deadline:
            raise sandbox.SandboxUnavailable("No sandbox worker ran the program in time.")
        time.sleep(0.5)


def _score(run: Run) -> scoring.Score:
    if run.status == Run.Status.FAILED:
        return scoring.Score(False, False, run.error or "The run failed.", "error")
    if run.program_id is not None and needed_no_model(run.method, run.model_calls):
        return scoring.no_model()
    if run.task_example_id is not None:
        assert run.task_example is not None
        return scoring.score_bbh(run.prediction or None, run.task_example.target)
    if run.puzzle_id is not None:
        # The puzzle method checked its answer as P3 defines it (a literal of the answer type,
        # sat(answer) is exactly True in the sandbox): its verdict is the score.
        verdict = run.verdict or {}
        statuses: dict[str, scoring.Status] = {"correct": "pass", "wrong": "fail"}
        status = statuses.get(verdict.get("status", ""), "unparsable")
        return scoring.Score(status == "pass", False, str(verdict.get("explanation", "")), status)
    spec = run.spec
    if spec is not None and spec.predicts_input:
        return _score_input(run)
    return scoring.score_cruxeval_output(run.source, run.call, run.prediction or None)


def _score_input(run: Run) -> scoring.Score:
    """CRUXEval-I: the model's call against the output, by the official rules. The output is
    the data set's (what the model was shown), else the real run's value."""
    output = run.details.get("output") if isinstance(run.details, dict) else None
    if not output:
        real = run.real_trace
        if real is None or real.data.get("status") != "ok":
            return scoring.Score(
                False, False, "The program's own call has no output to predict an input for.",
                "error",
            )  # fmt: skip
        output = str(real.data.get("result"))
    function = function_of(run.call) or "f"
    return scoring.score_cruxeval_input(
        run.source, str(output), run.prediction or None, function=function
    )
