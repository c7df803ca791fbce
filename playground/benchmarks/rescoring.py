"""Scoring a finished evaluation again under the current rules, keeping its generations (the
predictions stored with its results): after a change of the rules, or to score an older
evaluation by the rules' current version. The site's button, the API and ``manage.py bench
rescore`` all come here.

Which rules: an import, and CRUXEval-I, are scored by the benchmarks' own rules (official.py,
``official.RULES_VERSION``); the site's own evaluations of the other tasks by the site's
(scoring.py, ``scoring.RULES_VERSION``). Every check that runs code runs in the sandbox, each in
a fresh process forked inside one batch sandbox.

All of an evaluation's new scores are worked out first and written in one transaction with the
rules' version and the figures: a re-scoring killed half way writes nothing, and running it
again gives the same scores (idempotent). Results that were never judged (``error``: the run
failed) and items Python ran without the model (``no_model``) keep their status: there is no
generation to score again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.benchmarks import imports, official, scoring
from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.summary import figures_of
from playground.emulation.input_prediction import function_of
from playground.emulation.registry import REGISTRY
from playground.programs.models import Program, Puzzle, TaskExample
from playground.sandbox.batch import BatchSandbox
from playground.sandbox.limits import Limits

KEPT = frozenset({"error", "no_model", "no_value"})  # statuses with nothing to score again
# (passed, score_status, reason, leakage, prior: under a rule, a wrong answer that is what
# Python's own semantics returns)
NewScore = tuple[bool, str, str, bool, bool | None]
Runner = Callable[..., dict[str, Any]]  # (source, call, *, rule=None) -> trace


class RescoreRefused(Exception):
    """The evaluation cannot be scored again now (the message says why)."""


def rules_for(evaluation: Evaluation) -> str:
    """The version of the rules that score this evaluation today."""
    # CRUXEval-I under a semantic rule is the site's: the official check would be rewritten.
    if evaluation.origin == "import" or (evaluation.task == "input" and not evaluation.rule):
        return official.RULES_VERSION
    return scoring.RULES_VERSION


def refusal(evaluation: Evaluation) -> str | None:
    """Why the evaluation cannot be scored again now, or None."""
    if evaluation.status != Evaluation.Status.DONE:
        return "Only a finished evaluation can be scored again: its generations are not all in."
    spec = REGISTRY.get(evaluation.method)
    if spec is not None and spec.asks_probes:
        return (
            "A probe evaluation is scored by its probes, each graded against its run's real "
            "trace: there are no benchmark rules to score it by again."
        )
    return None


def rescore(evaluation_id: int) -> dict[str, Any]:
    """Score every result of the evaluation again under the current rules; what changed."""
    evaluation = Evaluation.objects.get(pk=evaluation_id)
    why = refusal(evaluation)
    if why is not None:
        raise RescoreRefused(why)
    results = list(
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .select_related("run")
        .order_by("index", "sample")
    )
    checks = BatchSandbox(official.CHECK_LIMITS)
    runs = BatchSandbox(Limits(keep_running=True))
    try:
        new: dict[int, NewScore | None]
        if evaluation.origin == "import":  # the official rules, as the import scored them
            scored = imports.score_rows(evaluation, results, checks.run, runs.run)
            new = {pk: (*score, False, None) for pk, score in scored.items()}
        else:
            new = {r.pk: _one(evaluation, r, checks.run, runs.run) for r in results}
    finally:
        checks.close()
        runs.close()
    version = rules_for(evaluation)
    now = timezone.now()
    changed = 0
    with transaction.atomic():
        locked = Evaluation.objects.select_for_update().get(pk=evaluation_id)
        before = locked.figures
        for result in results:
            score = new.get(result.pk)
            if score is None:
                continue
            passed, status, reason, leakage, prior = score
            if (result.passed, result.score_status) != (passed, status):
                changed += 1
            result.passed, result.score_status = passed, status
            result.reason, result.leakage, result.scored_at = reason[:2000], leakage, now
            result.prior = prior
        Result.objects.bulk_update(
            results, ["passed", "score_status", "reason", "leakage", "scored_at", "prior"],
            batch_size=2000,
        )  # fmt: skip
        locked.rules = version
        locked.figures = figures_of([locked])[locked.pk]
        locked.config = {
            **(locked.config or {}),
            "rescored": {"at": now.isoformat(), "rules": version, "changed": changed},
        }
        locked.save(update_fields=["rules", "figures", "config"])
    return {
        "id": evaluation_id,
        "rules": version,
        "results": len(results),
        "changed": changed,
        "accuracy_before": (before or {}).get("accuracy"),
        "accuracy": locked.figures["accuracy"],
    }


def _one(evaluation: Evaluation, result: Result, checks: Runner, runs: Runner) -> NewScore | None:
    """One result of an evaluation generated here, under the site's current rules (CRUXEval-I:
    the official ones); None to keep it as it is."""
    if result.score_status in KEPT:
        return None
    ref = result.item_ref if isinstance(result.item_ref, dict) else {}
    # The run's own prediction where it is kept (a result keeps its first 5,000 characters).
    run = result.run
    prediction = (run.prediction if run is not None and run.prediction else None) or (
        result.prediction or None
    )
    if "task_example" in ref:
        example = TaskExample.objects.filter(pk=ref["task_example"]).first()
        if example is None:
            return None
        return _as_new(scoring.score_bbh(prediction, example.target))
    if "puzzle" in ref:
        puzzle = Puzzle.objects.filter(pk=ref["puzzle"]).first()
        if puzzle is None:
            return None
        if not prediction:
            return (False, "unparsable", "There is no answer.", False, None)
        return (*imports.puzzle_score(puzzle, prediction, runs), False, None)
    program = Program.objects.filter(pk=ref["program"]).first() if "program" in ref else None
    source = run.source if run is not None else (program.source if program else None)
    call = run.call if run is not None else (program.call if program else None)
    if source is None or call is None:
        return None
    if evaluation.task == "input":
        output = (run.details or {}).get("output") if run is not None else None
        if not evaluation.rule:
            output = output or (program.expected_output if program and program.is_builtin else None)
        elif not output and run is not None:  # the rule's value; never the data set's (Python's)
            real = run.real_trace
            if real is not None and real.data.get("status") == "ok":
                output = str(real.data.get("result"))
        if not output:
            return None
        function = function_of(call) or "f"
        if evaluation.rule:
            rule = evaluation.rule
            score = scoring.score_cruxeval_input_under_rule(
                source, str(output), prediction, rule=rule, function=function,
                runner=lambda text, check: checks(text, check, rule=rule),
            )  # fmt: skip
            prior = None
            if score.status == "fail":
                prior = scoring.holds_cruxeval_input(
                    source, str(output), prediction, runner=lambda text, check: checks(text, check)
                )
            return (*_as_new(score)[:4], prior)
        return _as_new(
            scoring.score_cruxeval_input(
                source, str(output), prediction, function=function,
                runner=lambda program_text, _call: checks(program_text, None),
            )
        )  # fmt: skip
    if not evaluation.rule:
        return _as_new(scoring.score_cruxeval_output(source, call, prediction, runner=runs))
    # Under its rule (the check's call is not rewritten), and a wrong answer checked again under
    # Python's own semantics: did the model answer what the program usually does?
    rule = evaluation.rule
    score = scoring.score_cruxeval_output(
        source, call, prediction, runner=lambda text, check: runs(text, check, rule=rule)
    )
    prior = None
    if score.status == "fail":  # (probe evaluations are not scored again: ``refusal``)
        prior = scoring.holds_cruxeval_output(source, call, prediction, runner=runs)
    return (*_as_new(score)[:4], prior)


def _as_new(score: scoring.Score) -> NewScore:
    return (score.passed, score.status, score.reason, score.leakage, None)
