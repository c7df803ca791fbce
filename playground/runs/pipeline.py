"""The run pipeline: what happens to a run once it is queued, as plain functions of a run id.

The real execution (``execute_real``: the sandbox, then the trace stored), the emulation
(``execute_emulation``: the method asks the model, its events go out live through
``LiveComparison``, what it produced is stored), judging (``finish_if_complete``: the verdict and
the comparison once every part has arrived), announcing (``announce``: live events) and failing
(``fail_run``, the last resort ``fails_run_on_error`` and the messages a user reads). The Celery
tasks (``tasks.py``) only wrap the two entry points, and an evaluation's batch worker calls them
in its own thread; pages and the API start, cancel and requeue runs through ``services.py``.
Its own file because it is the one path from a queued run to its verdict, whoever runs it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from playground import sandbox
from playground.compare import compare_traces
from playground.emulation.base import Cancelled, Emulation, MethodEventKind, Params, Session
from playground.emulation.judging import judge_program
from playground.emulation.registry import REGISTRY
from playground.lib import leases, worktimes
from playground.llm.client import LLMError, Refused
from playground.llm.registry import RegistryError, get_model
from playground.llm.replicas import routing_key
from playground.runs import sandboxing
from playground.runs.emulation_items import DatabasePlans, RunBudget, item_for_run
from playground.runs.events import WRITTEN, EventKind, publish, published, since_restart
from playground.runs.limits import limits_for_run
from playground.runs.models import Run, Trace

log = logging.getLogger(__name__)

# What a user reads when a run failed for a reason that is ours, not theirs; the detail is logged.
SERVER_ERROR = "The server failed while running this; the error was logged. Try again later."
TOO_LONG = "The server gave up on this run: it took longer than allowed."
NO_RULE = "The sandbox worker that ran this program cannot run it under a rule yet; run it again."


def fails_run_on_error(task: Callable[[int], str]) -> Callable[[int], str]:
    """The last resort of a run's task: whatever it raises, the run ends failed with a generic
    message (and the detail goes to the log), never left running or queued for ever."""

    @functools.wraps(task)
    def guarded(run_id: int) -> str:
        try:
            return task(run_id)
        except SoftTimeLimitExceeded:
            log.error("run %s: %s passed its time limit", run_id, task.__name__)
            fail_run(run_id, TOO_LONG)
        except Exception:
            if not Run.objects.filter(pk=run_id).exists():
                # Deleted while the task worked (its owner deleted their account, a retention
                # period ran out): nobody is left to tell, and nothing is wrong.
                log.info("run %s: deleted while %s worked; stopped", run_id, task.__name__)
                return "gone"
            log.exception("run %s: %s failed", run_id, task.__name__)
            fail_run(run_id, SERVER_ERROR)
        return "failed"

    return guarded


Part = Literal["real", "emulation"]


def work_key(kind: str, pk: int, part: str = "") -> str:
    """The lease (lib/leases.py) a task holds while it works on a part of a run (or on an
    evaluation): at most one holder, so a second copy of the task leaves the work alone."""
    return f"{leases.prefix()}:work:{kind}:{pk}" + (f":{part}" if part else "")


def holding(part: Part) -> Callable[[Callable[[int], str]], Callable[[int], str]]:
    """Run the task body only while holding the lease on this part of the run (refreshed while
    it works); a copy of the task that finds it held (a redelivery, a resend while the first
    still works) returns "held" and touches nothing. A holder that dies stops refreshing: the
    reaper (playground.reaper) sends the part again once the lease lapses."""

    def wrap(task: Callable[[int], str]) -> Callable[[int], str]:
        @functools.wraps(task)
        def held(run_id: int) -> str:
            with leases.Held([work_key("run", run_id, part)], [1], worktimes.LEASE_S) as lease:
                if not lease.taken:
                    return "held"
                return task(run_id)

        return held

    return wrap


def _start(run_id: int, part: Part) -> Run | None:
    """The run, marked running and the part taken (``<part>_claimed_at``, which the reaper
    reads); None when it is gone or already finished (a retried task)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return None
        now = timezone.now()
        fields = [f"{part}_claimed_at"]
        setattr(run, f"{part}_claimed_at", now)
        if run.status == Run.Status.QUEUED:
            run.status = Run.Status.RUNNING
            run.started_at = now
            fields += ["status", "started_at"]
        run.save(update_fields=fields)
        return run


@fails_run_on_error
@holding("real")
def execute_real(run_id: int) -> str:
    """Run the program of ``run_id`` in the sandbox and store its trace. Idempotent: a retried
    or redelivered task finds the trace stored (or re-runs a run left by a dead worker)."""
    run = _start(run_id, "real")
    if run is None:
        return "skipped"
    stored = set(run.traces.values_list("kind", flat=True))
    if Trace.Kind.REAL not in stored:
        try:
            if run.rule and Trace.Kind.STANDARD not in stored:
                # Under a rule, the same program under standard Python too, for the page to
                # show beside it; stored first, so that whoever finds the real trace (the
                # judge, an evaluation's item) finds both.
                standard = sandbox.run(
                    run.source,
                    call=run.call or None,
                    stdin=run.stdin,
                    limits=limits_for_run(run.limits),
                )
                save_trace(run_id, Trace.Kind.STANDARD, standard)
            # The ground truth: the program as the user wrote it, under the run's rule if any
            # (rewritten and run inside the sandbox, traced in the user's own lines).
            trace = sandbox.run(
                run.source,
                call=run.call or None,
                stdin=run.stdin,
                limits=limits_for_run(run.limits),
                rule=run.rule or None,
            )
        except sandbox.SandboxUnavailable as exc:
            log.error("run %s: sandbox unavailable: %s", run_id, exc)
            fail_run(run_id, f"The sandbox is not available on this server: {exc}")
            return "failed"
        save_trace(run_id, Trace.Kind.REAL, trace)
        announce(
            run.events_key,
            "trace",
            status=trace["status"],
            steps=len(trace["steps"]),
            result=trace["result"],
        )
    finish_if_complete(run_id)
    return "ok"


def _routing_key(run: Run) -> str:
    """Whose model calls these are, as an opaque key (a hash, never the id or the visitor's
    token itself): the user's, the anonymous visitor's, else the run's own."""
    if run.owner_id is not None:
        return routing_key("user", run.owner_id)
    if run.anon_owner:
        return routing_key("anon", run.anon_owner)
    return routing_key("run", run.events_key)


@fails_run_on_error
@holding("emulation")
def execute_emulation(run_id: int) -> str:
    """Have the run's model emulate the run's item with the run's method: the answer streams to
    viewers (steps too, for the trace methods) and is saved in batches; a cancelled run closes
    the stream."""
    run = _start(run_id, "emulation")
    if run is None:
        return "skipped"
    if run.emulation_done:
        finish_if_complete(run_id)
        return "ok"
    _restart_if_written(run)
    method = REGISTRY.get(run.method)
    item = item_for_run(run)
    if method is None or item.kind not in method.kinds:
        fail_run(run_id, f"The method {run.method!r} does not apply to a {item.kind}.")
        return "failed"
    if item.kind == "program" and not run.call and method.needs_call:
        fail_run(run_id, "Output prediction needs a call expression, e.g. f([1, 2]).")
        return "failed"
    try:
        model = get_model(run.model)
    except (KeyError, RegistryError):
        fail_run(run_id, f"The model {run.model!r} is not configured on this server.")
        return "failed"

    def save_text(text: str) -> None:
        Run.objects.filter(pk=run_id).update(emulated_text=text)

    session = Session(
        model,
        params=Params(temperature=run.temperature, seed=run.seed, max_tokens=run.max_tokens),
        plans=DatabasePlans(),
        emit=LiveComparison(run, method.compares_steps).emit,
        on_text=save_text,
        cancelled=lambda: Run.objects.filter(pk=run_id, status=Run.Status.CANCELLED).exists(),
        limits=limits_for_run(run.limits, anonymous=run.owner_id is None and bool(run.anon_owner)),
        budget=RunBudget(run.budget_key) if run.budget_key else None,
        sandbox_run=sandboxing.run,  # on the sandbox queue, from this (llm or batch) worker
        routing_key=_routing_key(run),
    )
    announce(run.events_key, "status", text=f"Asking {model.label}…")
    try:
        emulation = method.emulate(item, session)
    except Cancelled:
        # What the model had written is kept (on_text); so is what it cost, for the page.
        Run.objects.filter(pk=run_id).update(
            completion_tokens=session.live_tokens or None, model_calls=session.calls
        )
        return "cancelled"
    except Refused as exc:  # nothing was sent: a prompt over the context, a spent budget
        Run.objects.filter(pk=run_id).update(
            completion_tokens=session.completion_tokens or None,
            prompt_tokens=session.prompt_tokens or None,
            model_calls=session.calls,
        )
        fail_run(run_id, str(exc))
        return "failed"
    except LLMError as exc:
        if not Run.objects.filter(pk=run_id, status=Run.Status.CANCELLED).exists():
            fail_run(run_id, f"The model could not answer: {exc}")
        return "failed"
    except sandbox.SandboxUnavailable as exc:
        fail_run(run_id, f"The sandbox is not available on this server: {exc}")
        return "failed"
    store_emulation(run, emulation, session)
    finish_if_complete(run_id)
    return "ok"


RESTARTED = "The worker writing the model's answer stopped; the model starts again."


def _restart_if_written(run: Run) -> None:
    """A previous attempt at the model's part (its worker died mid-answer) streamed part of an
    answer: viewers are told to drop it (this attempt writes the whole answer again, and the
    stored text will be this attempt's), and the text saved so far is dropped too."""
    try:
        written = any(e["type"] in WRITTEN for e in since_restart(published(run.events_key)))
    except Exception:  # Redis away: viewers are a convenience (announce says the same)
        log.warning("could not read the events of %s", run.events_key, exc_info=True)
        written = False
    if written or run.emulated_text:
        Run.objects.filter(pk=run.pk).update(emulated_text="")
        spec = run.spec
        live_steps = bool(spec and spec.live_steps)
        announce(run.events_key, "restarted", text=RESTARTED, live_steps=live_steps)


class LiveComparison:
    """Passes a method's events on to viewers and, for a trace written step by step, compares
    the steps so far with the real trace (once it exists) every few steps, so viewers see the
    agreement and the first divergence while the model is still writing."""

    EVERY_S = 0.5

    def __init__(self, run: Run, compares_steps: bool) -> None:
        self.run_id = run.pk
        self.key = run.events_key
        self.active = compares_steps and run.has_real_run
        self.from_call = run.compares_from_call
        self.steps: list[dict[str, Any]] = []
        self.real: dict[str, Any] | None = None
        self.last = 0.0
        self.reported: int | None = None

    def emit(self, kind: MethodEventKind, **data: Any) -> None:
        announce(self.key, kind, **data)
        if kind != "step" or not self.active:
            return
        self.steps.append(data["step"])
        if time.monotonic() - self.last >= self.EVERY_S:
            self.last = time.monotonic()
            self.compare()

    def compare(self) -> None:
        if self.real is None:
            trace = Trace.objects.filter(run_id=self.run_id, kind=Trace.Kind.REAL).first()
            if trace is None:
                return
            self.real = trace.data
        so_far = {"steps": self.steps, "result": None, "stdout": ""}
        comparison = compare_traces(self.real, so_far, from_call=self.from_call).as_dict()
        divergence = comparison["first_divergence"]
        # Real steps the model has not reached yet are not a divergence (yet).
        if divergence is not None and divergence.get("emulated_step") is None:
            divergence = None
        prefix = comparison["correct_prefix"] if divergence else len(self.steps)
        if divergence is None and self.reported is None and prefix == 0:
            return
        announce(
            self.key,
            "progress",
            steps=len(self.steps),
            correct_prefix=prefix,
            divergence=divergence["message"] if divergence else None,
        )
        self.reported = prefix


def save_trace(run_id: int, kind: str, trace: dict[str, Any]) -> None:
    """Store the run's trace of this kind (again, for a retried task)."""
    Trace.objects.update_or_create(
        run_id=run_id,
        kind=kind,
        defaults={"status": trace["status"], "step_count": len(trace["steps"]), "data": trace},
    )


def store_emulation(run: Run, emulation: Emulation, session: Session) -> None:
    """Save what the method produced, in one transaction."""
    run_id = run.pk
    with transaction.atomic():
        if emulation.trace is not None:
            save_trace(run_id, Trace.Kind.EMULATED, emulation.trace)
        if emulation.real_trace is not None:  # a puzzle's sat(answer)
            save_trace(run_id, Trace.Kind.REAL, emulation.real_trace)
        verdict = emulation.verdict or ({"problem": emulation.problem} if emulation.problem else {})
        fields: dict[str, Any] = {
            "emulated_text": session.transcript,
            "prediction": emulation.prediction or "",
            "verdict": verdict,
            # How each answer ended: "complete" (stopped there), "stop", "length" (its limit).
            "details": {**emulation.details, "endings": session.endings},
            "emulation_done": True,
            "prompt_tokens": session.prompt_tokens or None,
            "completion_tokens": session.completion_tokens,
            "model_calls": session.calls,
        }
        if emulation.details.get("call"):
            fields["call"] = emulation.details["call"]
        Run.objects.filter(pk=run_id).update(**fields)
    if emulation.trace is not None:
        announce(
            run.events_key,
            "emulated",
            status=emulation.trace["status"],
            steps=len(emulation.trace["steps"]),
        )


def finish_if_complete(run_id: int) -> None:
    """Mark the run done once every part has arrived, judging the model against the real run."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return
        real = run.traces.filter(kind=Trace.Kind.REAL).first()
        if (run.has_real_run and real is None) or (run.is_emulated and not run.emulation_done):
            return
        if run.rule and real is not None and real.data.get("rule") != run.rule:
            # Run by a sandbox worker of the previous release (a rolling upgrade), which knows
            # no rule: standard Python's run must never be judged as the rule's.
            log.error("run %s: its real trace was made without its rule %s", run_id, run.rule)
            fail_run(run_id, NO_RULE)
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
        details=run.details if isinstance(run.details, dict) else None,
        source=run.source,
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
