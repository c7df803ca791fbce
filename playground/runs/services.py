"""Starting and cancelling runs: what a page, the API or an evaluation asks for; writes
that touch several models, and the hand-off to Celery. What happens to a run once it is queued
is ``pipeline.py``."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.emulation.puzzle import PRELUDE as PUZZLE_PRELUDE
from playground.emulation.registry import REGISTRY
from playground.programs.models import Program, Puzzle, TaskExample
from playground.runs.models import Run
from playground.runs.pipeline import announce
from playground.runs.tasks import send_part
from playground.sandbox.inside.semantics import check as check_rule

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
    rule: str = "",
    probes: dict[str, int] | None = None,
) -> Run:
    """Queue a run of one item: the real execution on ``sandbox`` (programs only) and, for an
    emulation method, the model on ``llm``; both are sent once the run row is committed.
    ``enqueue=False``: the caller executes the tasks itself (an evaluation's batch worker).
    ``budget_key``: whose token budget the model's calls spend (``ratelimits.whose(request)``
    for a request); by default a signed-in user's who is not staff (their evaluations, the
    answer keys of their items), nobody's for staff and the command line. ``rule``: the
    semantic rule the program runs under (its real trace is the rewritten program's, and the
    standard run is kept beside it), checked here too for callers that skip
    ``resolve_run_request`` (evaluations, the classroom); ``probes``: what a probe method asks
    (``emulation/probes.Config``'s counts; empty: its default)."""
    if (program, puzzle, task_example).count(None) != 2:
        raise ValueError("a run is of exactly one program, puzzle or task example")
    if program is None and method == "real":
        raise ValueError("only a program can be run without a model")
    if rule:
        check_rule(rule)  # UnknownRule, a ValueError
        if program is None:
            raise ValueError("only a program runs under a rule")
        spec = REGISTRY.get(method)
        if spec is not None and not spec.changed_semantics:
            raise ValueError(f"the method {method!r} cannot run under a rule")
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
            sent_as_tasks=enqueue,
            rule=rule,
            probes=dict(probes or {}),
        )
        if program is not None and enqueue:
            transaction.on_commit(lambda: send_part(run.pk, "real", 0))
        if enqueue and method != "real":
            transaction.on_commit(lambda: send_part(run.pk, "emulation", 0))
    return run


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
