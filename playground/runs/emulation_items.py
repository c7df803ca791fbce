"""What a run hands to an emulation method: the item (``emulation.base.Item``), the database's
plan store, and the requester's token budget. Named for the emulation's items, which are not the
classroom's ``Item`` model."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from playground.emulation.base import Item
from playground.lib import ratelimits
from playground.llm.client import Refused
from playground.programs.models import Dataset, TaskExample
from playground.runs.models import Plan, Run

FEW_SHOT = 3


def task_item(example: TaskExample, *, shots: int = FEW_SHOT) -> Item:
    """A task instance with a few other solved instances of the same task (never itself)."""
    others = (
        TaskExample.objects.filter(task_id=example.task_id)
        .exclude(pk=example.pk)
        .order_by("index")
        .values_list("input", "target")[:shots]
    )
    return Item(
        kind="task",
        task=example.task.name,
        question=example.input,
        target=example.target,
        examples=tuple((q, t) for q, t in others),
        title=str(example),
    )


def item_for_run(run: Run) -> Item:
    if run.puzzle_id is not None:
        puzzle = run.puzzle
        assert puzzle is not None
        return Item(
            kind="puzzle",
            source=puzzle.sat,
            ans_type=puzzle.ans_type,
            description=puzzle.description,
            title=puzzle.name,
        )
    if run.task_example_id is not None:
        assert run.task_example is not None
        return task_item(run.task_example)
    return Item(
        kind="program",
        source=run.source,
        call=run.call,
        stdin=run.stdin,
        title=run.subject_title,
        output=_library_output(run),
        rule=run.rule,
        probes=tuple(
            (str(kind), int(count))
            for kind, count in (run.probes if isinstance(run.probes, dict) else {}).items()
        ),
    )


def _library_output(run: Run) -> str:
    """The call's value as a library data set gives it (CRUXEval's ``output``), when the run is
    of that program with its own call and input; "" otherwise (a user's expected output is
    what they typed, not a fact, so it is never used), and "" under a rule (the data set's
    output is standard Python's)."""
    program = run.program
    if (
        run.rule
        or program is None
        or program.dataset == Dataset.USER
        or not program.expected_output
        or (run.source, run.call, run.stdin) != (program.source, program.call, program.stdin)
    ):
        return ""
    return program.expected_output


class DatabasePlans:
    """Think-and-Execute plans in PostgreSQL, shared by every worker; first writer wins."""

    def get(self, key: str, model: str) -> dict[str, Any] | None:
        plan = Plan.objects.filter(key=key, model=model).first()
        if plan is None:
            return None
        Plan.objects.filter(pk=plan.pk).update(uses=F("uses") + 1)
        return dict(plan.data)

    def put(
        self, key: str, model: str, plan: dict[str, Any], *, subject: str = ""
    ) -> dict[str, Any]:
        try:
            with transaction.atomic():
                Plan.objects.create(key=key, subject=subject, model=model, data=plan, uses=1)
                return plan
        except IntegrityError:  # another worker thought first: use its plan
            stored = Plan.objects.get(key=key, model=model)
            return dict(stored.data)


class RunBudget:
    """The token budget of a run's requester (``Run.budget_key``) in Redis, shared by every
    worker: each call reserves the most it can cost before it is sent, and settles what it
    really cost (the engine's ``usage`` where it reports it) afterwards."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.name = ratelimits.budget_name(key)
        self.counters: list[str] = []  # of the reservations not yet settled

    def reserve(self, tokens: int) -> None:
        try:
            self.counters.append(ratelimits.reserve(self.name, self.key, tokens))
        except ratelimits.Refused as refused:
            raise Refused(
                f"This run stopped before its next model call. {refused.message}"
            ) from None

    def settle(self, reserved: int, used: int) -> None:
        ratelimits.settle(self.counters.pop(), used - reserved)
