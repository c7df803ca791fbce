"""An item's answer key as staff and students depend on it: is it ready, and if not, why.

A key can be *preparing* (its run is queued or running), *failed* (the run failed: the
sandbox, the model server), or have *problems* that make the item impossible to answer (a
checkpoint the program never reaches, a variable with no value there, a model trace with no
step to mark). Students cannot answer an item whose key is not ready, so no attempt is ever
spent on a question nobody can answer; the staff see why in the assignment's item list and on
the item's page. *Warnings* do not block (e.g. Chain of Code needed no model call, so the
"model" the students face is Python itself).

The verdict on a finished key run is computed once and kept on the item (``key_check``), keyed
by the run, so that the list and the student pages do not read traces again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from playground.classroom import grading, probing
from playground.classroom.models import Item, Mode
from playground.emulation import probes
from playground.emulation.judging import NO_MODEL, needed_no_model
from playground.runs.models import Run, Trace

log = logging.getLogger(__name__)

READY, PREPARING, MISSING, FAILED, PROBLEM = "ready", "preparing", "missing", "failed", "problem"
LABELS = {
    READY: "ready",
    PREPARING: "being prepared",
    MISSING: "missing",
    FAILED: "failed",
    PROBLEM: "cannot be answered",
}
# Real runs that ended at a limit: a line not reached may still run later.
LIMITS = frozenset({"step_limit", "time_limit", "memory_limit", "output_limit"})


@dataclass(frozen=True)
class KeyStatus:
    state: str
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def label(self) -> str:
        return LABELS[self.state]


def trace_data(trace: Trace | None) -> dict[str, Any]:
    """A stored trace's data, the one place the classroom reads a trace from the database."""
    data = trace.data if trace is not None else None
    return data if isinstance(data, dict) else {}


def divergence_from_call(run: Run) -> bool:
    """Whether the model traced only the call (its method compares from the call): then its
    steps, and the real ones they are compared with, start at the call."""
    return run.compares_from_call


def divergence_key(run: Run) -> tuple[grading.Mistake, list[dict[str, Any]]]:
    """The answer of a spot-the-divergence item, and the model's steps as the students number
    them."""
    real = trace_data(run.real_trace)
    emulated = trace_data(run.emulated_trace)
    from_call = divergence_from_call(run)
    steps = grading.model_steps(emulated, from_call=from_call)
    raw = real.get("steps")
    mistake = grading.first_mistake(
        raw if isinstance(raw, list) else [],
        emulated,
        from_call=from_call,
        real_complete=real.get("status") not in LIMITS,
    )
    return mistake, steps


def questions(item: Item) -> list[probes.Probe]:
    """An "answer the probes" item's questions with their true answers, from its key run's real
    trace (none while the key is not finished). The truths reach a student only once the
    answer may be revealed (``progress.feedback_details``)."""
    run = item.key_run
    if run is None or not run.is_finished:
        return []
    config, seed = probing.config_of(item)
    # Made once per item object: a page, a submission and its grading each ask, and the trace
    # may be megabytes.
    made = getattr(item, "_questions", None)
    if made is not None and made[0] == (run.pk, config, seed):
        return list(made[1])
    real = trace_data(run.real_trace)
    found = (
        probes.generate(real, run.source, call=run.call, seed=seed, config=config) if real else []
    )
    item._questions = ((run.pk, config, seed), found)  # type: ignore[attr-defined]
    return list(found)


def key_status(item: Item, *, refresh: bool = False) -> KeyStatus:
    """Where the item's answer key stands (a puzzle needs none: its sat checks each answer)."""
    if item.mode == Mode.PUZZLE:
        return KeyStatus(READY)
    run = item.key_run
    if run is None:
        return KeyStatus(MISSING, ("No answer key yet: prepare it.",))
    if not run.is_finished:
        return KeyStatus(PREPARING)
    if run.status != Run.Status.DONE:
        why = run.error or f"The key run was {run.get_status_display().lower()}."
        return KeyStatus(FAILED, (why,))
    cached = item.key_check if isinstance(item.key_check, dict) else {}
    if not refresh and cached.get("run") == run.pk:
        problems, warnings = cached.get("problems") or [], cached.get("warnings") or []
    else:
        problems, warnings = _check(item, run)
        check = {"run": run.pk, "problems": problems, "warnings": warnings}
        Item.objects.filter(pk=item.pk, key_run=run).update(key_check=check)
        item.key_check = check
    return KeyStatus(PROBLEM if problems else READY, tuple(problems), tuple(warnings))


def check_run(item: Item, run: Run) -> tuple[list[str], list[str]]:
    """The problems and warnings of the item with this finished key run (a variant's run too:
    variants.py hands out only those with no problem)."""
    return _check(item, run)


def _check(item: Item, run: Run) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    real = trace_data(run.real_trace)
    status = str(real.get("status", ""))
    if item.mode == Mode.TRACE:
        steps = real.get("steps")
        found = grading.checkpoint_values(
            steps if isinstance(steps, list) else [], list(item.checkpoints or [])
        )
        problems += grading.checkpoint_problems(found, complete=status not in LIMITS)
    if item.mode in (Mode.OUTPUT, Mode.BEAT_MODEL, Mode.RULE) and status not in ("ok", "exception"):
        problems.append(
            f"The real run did not finish ({status.replace('_', ' ')}): there is no value to "
            "predict. Change the program or its call."
        )
    if item.mode == Mode.INPUT and status != "ok":
        problems.append(
            f"The program's call does not return a value ({status.replace('_', ' ')}): there is "
            "no output to find an input for. Change the program or its call."
        )
    if item.mode == Mode.PROBES and not questions(item):
        problems.append(
            f"No question can be asked about this run (it ended with {status.replace('_', ' ')}, "
            "or it has no line, variable or value to ask about): choose another program or call, "
            "or ask for other kinds of questions."
        )
    if item.mode == Mode.NEXT_STATE:
        from playground.classroom import nextstate

        problems += nextstate.problems(item)
    if item.mode == Mode.RULE and run.rule != item.rule:
        problems.append("The key run was not made under the item's rule: prepare the key again.")
    elif item.mode == Mode.RULE and run.standard_trace is None:
        warnings.append("The standard run beside the rule's is missing: students see one trace.")
    program = item.program
    shown_anyway = program is not None and (program.is_public or program.is_builtin)
    if item.mode == Mode.INPUT and shown_anyway:
        warnings.append(
            "This program is public: its own page shows the call that is the answer. For a "
            "graded item, use a program of your own that is not public."
        )
    no_model = (run.verdict or {}).get("status") == NO_MODEL or needed_no_model(
        run.method, run.model_calls
    )
    if item.mode in (Mode.DIVERGENCE, Mode.BEAT_MODEL) and no_model:
        warnings.append(
            "Chain of Code ran every line of this program in Python and never asked the model: "
            "the students are compared with Python itself. Choose the trace method, or a "
            "program that calls a helper it does not define."
        )
    if item.mode == Mode.DIVERGENCE:
        mistake, steps = divergence_key(run)
        if not steps:
            problems.append(
                "The model's trace has no step to mark (it wrote nothing readable): prepare "
                "the key again or choose another method."
            )
        elif mistake.undecided:
            problems.append(
                "The real run stopped at a limit before the model's trace ends: its later "
                "steps cannot be checked. Choose a shorter call."
            )
    return problems, warnings
