"""Working through an evaluation, fanned out over the batch workers: one task per item (a
result: one sample of one item), at most the evaluation's ``concurrency`` of them in flight,
each sending its item through the run pipeline (the model in the worker's thread; the real run
and every check that runs code on the sandbox queue, which it waits for), scoring it as its
benchmark defines, and topping the evaluation's window up again; whichever finishes last
writes the figures. Any number of batch workers on any number of hosts share one evaluation,
and a worker added midway takes items at once.

``dispatch`` (the ``run_evaluation`` task, the reaper) tops the window up: it claims pending
results under a lock on the evaluation row and sends ``evaluate_item`` for each. ``work_on``
(``evaluate_item``) holds the result's lease while it works (a second copy finds it held), so a
worker that dies loses its items to the reaper (``services.reap_evaluations``), which puts them
back with one more failure; every score is written only while the result is still running, so
nothing is scored twice. The command line (``execute``) works through an evaluation in its own
threads instead, holding the evaluation's lease so that no worker is sent its items meanwhile.

Its own module, apart from ``services`` (creating, cancelling and recovering evaluations, which
queue the Celery tasks): the tasks import this and ``services`` imports the tasks, one way, so
there is no services <-> tasks circle.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
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
from playground.lib import broker, leases, worktimes
from playground.programs.models import Puzzle, TaskExample
from playground.runs import pipeline, sandboxing
from playground.runs.models import Run, Trace
from playground.runs.services import start_run
from playground.runs.tasks import execute_real_run

log = logging.getLogger(__name__)
MAX_FAILURES = 3  # tries of one result before it is scored as an error (never as wrong)
LOST_ITEM = "Could not be run: the worker running it stopped {times} times."


def _claim(evaluation_id: int, count: int) -> list[int]:
    """Take up to ``count`` pending results (others skip locked rows); they are sent or worked
    on now (``claimed_at``), not yet taken by a task (``taken_at``)."""
    if count <= 0:
        return []
    with transaction.atomic():
        ids = list(
            Result.objects.select_for_update(skip_locked=True)
            .filter(evaluation_id=evaluation_id, status=Result.Status.PENDING)
            .order_by("index", "sample")
            .values_list("pk", flat=True)[:count]
        )
        Result.objects.filter(pk__in=ids).update(
            status=Result.Status.RUNNING, claimed_at=timezone.now(), taken_at=None
        )
    return ids


def dispatch(evaluation_id: int) -> str:
    """Top the evaluation's window up to ``concurrency`` results in flight, sending
    ``evaluate_item`` for each one claimed, or write its figures when every result is scored.
    Idempotent and short: the ``run_evaluation`` task, every item that ends and the reaper call
    it. An imported evaluation is scored in this process instead (``imports.score``), holding
    its lease."""
    from playground.benchmarks.tasks import evaluate_item

    evaluation = Evaluation.objects.get(pk=evaluation_id)
    if evaluation.is_finished:
        return str(evaluation.status)
    if evaluation.origin == "import":
        return execute(evaluation_id)
    with transaction.atomic():
        # One top-up at a time per evaluation: the window is exact however many items end at once.
        locked = Evaluation.objects.select_for_update().get(pk=evaluation_id)
        if locked.is_finished:
            return str(locked.status)
        if locked.status == Evaluation.Status.QUEUED:
            Evaluation.objects.filter(pk=evaluation_id).update(
                status=Evaluation.Status.RUNNING, started_at=locked.started_at or timezone.now()
            )
        in_flight = Result.objects.filter(
            evaluation_id=evaluation_id, status=Result.Status.RUNNING
        ).count()
        ids = _claim(evaluation_id, locked.concurrency - in_flight)
        queue = settings.PLAYGROUND_BATCH_QUEUE
        failures = dict(Result.objects.filter(pk__in=ids).values_list("pk", "failures"))
        for result_id in ids:
            # Under the id the reaper looks for when no task has taken it (release_lost).
            task_id = broker.task_id("result", result_id, "item", failures[result_id])
            send = functools.partial(
                evaluate_item.apply_async, args=(result_id,), queue=queue, task_id=task_id
            )
            transaction.on_commit(send)
    if not ids and not in_flight:
        finish(evaluation_id)
    return f"sent {len(ids)}"


def finish(evaluation_id: int) -> bool:
    """Every result scored: the figures are final, kept with the status in one conditional
    write (whoever comes first; the others find it done)."""
    if (
        Result.objects.filter(evaluation_id=evaluation_id)
        .exclude(status=Result.Status.DONE)
        .exists()
    ):
        return False
    evaluation = Evaluation.objects.get(pk=evaluation_id)
    figures = figures_of([evaluation])[evaluation_id]
    return bool(
        Evaluation.objects.filter(pk=evaluation_id, status=Evaluation.Status.RUNNING).update(
            status=Evaluation.Status.DONE, finished_at=timezone.now(), figures=figures
        )
    )


def work_on(result_id: int) -> str:
    """One result, on a batch worker (``evaluate_item``): held by its lease while it works (a
    second copy of the task returns "held"), then the evaluation's window topped up."""
    if not _taken(result_id):
        return "skipped"  # scored already, or put back by the reaper and claimed anew
    with leases.Held([pipeline.work_key("result", result_id)], [1], worktimes.LEASE_S) as lease:
        if not lease.taken:
            return "held"
        evaluation_id = Result.objects.values_list("evaluation_id", flat=True).get(pk=result_id)
        if Evaluation.objects.filter(pk=evaluation_id, status__in=Evaluation.FINISHED).exists():
            return "cancelled"
        _process_in_thread(result_id)
    dispatch(evaluation_id)
    return "ok"


def _taken(result_id: int) -> bool:
    """Mark a running result taken (``taken_at``), before its lease is taken: a task that dies
    between the two, or after, leaves a taken result without a live lease, which the sweep puts
    back; the other order would leave one that looks like a message still waiting in the queue
    (put back only after 25 minutes). False when it is not running (nothing to do)."""
    return bool(
        Result.objects.filter(pk=result_id, status=Result.Status.RUNNING).update(
            taken_at=timezone.now()
        )
    )


def release_lost(evaluation_id: int, now: datetime) -> int:
    """Put back the evaluation's running results that no live task holds and that a task took
    (it died) or whose message is lost (sent ``LOST_AFTER_S`` ago, never taken, and in none of
    the broker's places: lib/broker.py), each with one more failure (at ``MAX_FAILURES`` scored
    an error, never a "wrong"); how many. The reaper and the command line call it."""
    from playground.benchmarks.tasks import evaluate_item

    running = list(
        Result.objects.filter(evaluation_id=evaluation_id, status=Result.Status.RUNNING).values(
            "pk", "taken_at", "claimed_at", "failures"
        )
    )
    alive = leases.live_many([pipeline.work_key("result", row["pk"]) for row in running])
    looked_for_before = now - timedelta(seconds=worktimes.LOST_AFTER_S)
    dead = [row for row, live in zip(running, alive, strict=True) if not live]
    waiting = {
        row["pk"]: broker.task_id("result", row["pk"], "item", row["failures"])
        for row in dead
        if row["taken_at"] is None
        and row["claimed_at"] is not None
        and row["claimed_at"] < looked_for_before
    }
    in_broker = (
        broker.held(waiting.values(), [broker.queue_of(evaluate_item.name)]) if waiting else set()
    )
    lost = [
        row
        for row in dead
        if row["taken_at"] is not None
        or (row["pk"] in waiting and waiting[row["pk"]] not in in_broker)
    ]
    released = 0
    for row in lost:
        # Conditional on what was read: a result taken again meanwhile is alive after all.
        same = Result.objects.filter(
            pk=row["pk"], status=Result.Status.RUNNING, taken_at=row["taken_at"],
            claimed_at=row["claimed_at"],
        )  # fmt: skip
        if row["failures"] >= MAX_FAILURES - 1:
            released += same.update(
                status=Result.Status.DONE, passed=False, score_status="error",
                reason=LOST_ITEM.format(times=MAX_FAILURES), scored_at=now,
                failures=MAX_FAILURES,
            )  # fmt: skip
        else:
            released += same.update(
                status=Result.Status.PENDING, failures=F("failures") + 1, taken_at=None
            )
    return released


def execute(evaluation_id: int, *, on_progress: Callable[[int, int], None] | None = None) -> str:
    """The command line's way: work through the evaluation in this process's threads,
    ``concurrency`` at a time, holding its lease (so the reaper sends no worker its items while
    this process lives; a second process returns "held"), until none is left, it is cancelled
    or fails. An import's checks run here too (``imports.score``)."""
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
            ids = _claim(evaluation_id, chunk)
            if not ids:
                # Results still running: a dead process's (its leases lapse: put back and
                # taken here) or a live worker's (it scores them: wait for it).
                release_lost(evaluation_id, timezone.now())
                if Result.objects.filter(
                    evaluation_id=evaluation_id, status=Result.Status.PENDING
                ).exists():
                    continue
                if not Result.objects.filter(
                    evaluation_id=evaluation_id, status=Result.Status.RUNNING
                ).exists():
                    break
                time.sleep(1.0)
                continue
            list(pool.map(_work_here, ids))
            if on_progress is not None:
                done = Result.objects.filter(
                    evaluation_id=evaluation_id, status=Result.Status.DONE
                ).count()
                on_progress(done, evaluation.total)
    finish(evaluation_id)
    return "done"


def _work_here(result_id: int) -> None:
    """One result in the command line's thread pool, holding its lease as a worker would."""
    if not _taken(result_id):
        return
    with leases.Held([pipeline.work_key("result", result_id)], [1], worktimes.LEASE_S) as lease:
        if lease.taken:
            _process_in_thread(result_id)


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
        with transaction.atomic():  # a worker killed here leaves no run without its result
            run = start_run(
                **item, user=evaluation.owner, anon_token=None, method=evaluation.method,
                model=evaluation.model, temperature=evaluation.temperature,
                seed=evaluation.seed + result.sample, max_tokens=evaluation.max_tokens,
                enqueue=False, rule=evaluation.rule,
            )  # fmt: skip
            Result.objects.filter(pk=result_id).update(run=run)
    if run.program_id is not None:
        _real_run(run.pk)
    m0 = time.monotonic()
    pipeline.execute_emulation(run.pk)
    model_seconds = time.monotonic() - m0
    run.refresh_from_db()
    score = _score(run)
    prior = _prior(run, score)
    changed = _changed(run)
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
        path=str(((run.verdict or {}).get("path") or {}).get("status", ""))[:8],
        prior=prior,
        changed=changed,
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
    sent = execute_real_run.apply_async(args=(run_id,), queue=settings.PLAYGROUND_SANDBOX_QUEUE)
    deadline = time.monotonic() + sandboxing.WAIT_FOR_WORKER_S + worktimes.SANDBOX.hard_s
    while not (
        Trace.objects.filter(run_id=run_id, kind=Trace.Kind.REAL).exists()
        or Run.objects.filter(pk=run_id, status__in=Run.FINISHED).exists()
    ):
        if time.monotonic() > deadline:
            raise sandbox.SandboxUnavailable("No sandbox worker ran the program in time.")
        # The task's own result says at once when it is done; the database is the truth (a
        # copy the reaper sent again finishes the run under another task id).
        if sent.ready():  # done, yet no trace: a copy the reaper sent works on it
            time.sleep(0.5)
        else:
            with contextlib.suppress(CeleryTimeout):
                sent.get(timeout=1.0, propagate=False, disable_sync_subtasks=False)


def _score(run: Run) -> scoring.Score:
    nothing = _no_value(run)
    if nothing is not None:
        return nothing
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
    if spec is not None and spec.asks_probes:  # graded probe by probe against the real trace
        return scoring.score_probes(run.verdict)
    if spec is not None and spec.predicts_input:
        return _score_input(run)
    return scoring.score_cruxeval_output(
        run.source, run.call, run.prediction or None, runner=_runner(run.rule)
    )


def _no_value(run: Run) -> scoring.Score | None:
    """Under a rule, the score of a program whose own call returns no value under it (it
    raises, or does not finish): nothing to predict (an input predictor's run then fails, with
    no output to show); None otherwise. Probes are asked of such a run too, and graded."""
    spec = run.spec
    if not run.rule or run.program_id is None or (spec is not None and spec.asks_probes):
        return None
    real = run.real_trace
    if real is None or real.data.get("status") == "ok":
        return None
    return scoring.no_value(real.data, run.rule)


def _runner(rule: str) -> scoring.Runner | None:
    """The check's runner: under the run's rule (the call itself, the comparison, is not
    rewritten), or the usual one (None) for Python's own semantics."""
    if not rule:
        return None
    return lambda source, call: sandboxing.run(
        source, call=call, limits=sandbox.Limits(keep_running=True), rule=rule
    )


def _changed(run: Run) -> bool | None:
    """Under a rule, whether the program's outcome (its status, value or exception) differs
    from standard Python's; None without a rule or either run."""
    real, standard = (run.real_trace, run.standard_trace) if run.rule else (None, None)
    if real is None or standard is None:
        return None

    def outcome(data: dict[str, Any]) -> tuple[Any, ...]:
        error = data.get("error") or {}
        return (data.get("status"), data.get("result"), error.get("type"))

    return outcome(real.data) != outcome(standard.data)


def _prior(run: Run, score: scoring.Score) -> bool | None:
    """Under a rule, whether a wrong answer is what the program returns under Python's own
    semantics (the model followed its priors): checked in the sandbox as CRUXEval checks an
    answer; None when there is nothing to check (no rule, a right or unreadable answer)."""
    if not run.rule or score.status != "fail" or run.program_id is None:
        return None
    spec = run.spec
    if spec is None or spec.asks_probes:
        return None
    if spec.predicts_input:  # the model's call returns the output under Python's semantics
        output = _output_of(run)
        if output is None:
            return None
        return scoring.holds_cruxeval_input(run.source, output, run.prediction or None)
    return scoring.holds_cruxeval_output(run.source, run.call, run.prediction or None)


def _output_of(run: Run) -> str | None:
    """The output an input is predicted for: the data set's (what the model was shown; never
    under a rule), else the real run's value (under the rule); None when there is none."""
    output = run.details.get("output") if isinstance(run.details, dict) else None
    if not output:
        real = run.real_trace
        if real is None or real.data.get("status") != "ok":
            return None
        output = str(real.data.get("result"))
    return str(output)


def _score_input(run: Run) -> scoring.Score:
    """CRUXEval-I: the model's call against the output, by the official rules (under a rule,
    by the site's: ``scoring.score_cruxeval_input_under_rule``)."""
    output = _output_of(run)
    if output is None:
        return scoring.Score(
            False, False, "The program's own call has no output to predict an input for.",
            "error",
        )  # fmt: skip
    function = function_of(run.call) or "f"
    if run.rule:
        return scoring.score_cruxeval_input_under_rule(
            run.source, output, run.prediction or None, rule=run.rule, function=function
        )
    return scoring.score_cruxeval_input(
        run.source, str(output), run.prediction or None, function=function
    )
