"""An evaluation's figures: accuracy with its 95% interval, pass@k, leakage, progress.

The figures are counted in the database (one grouped query, whatever the number of results) and,
once an evaluation is done, kept on it (``Evaluation.figures``): its results never change after,
so the leaderboard sorts and pages evaluations by stored numbers and reads no result at all. A
change to scored results of done evaluations (a data migration) must set ``figures`` to null;
the next read counts them again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Q

from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.official import pass_at_k as official_pass_at_k
from playground.benchmarks.scoring import pass_at_k
from playground.benchmarks.stats import mean_ci, wilson_interval
from playground.emulation import probes
from playground.emulation.registry import REGISTRY

NO_MODEL = "no_model"
NO_VALUE = "no_value"  # under a rule, the program returned no value to predict (scoring.py)
APART = (NO_MODEL, NO_VALUE)  # items that are not the model's success nor its failure
SKIPPED = "skipped"  # a generation CRUXEval's official scorer does not check (official.py)

# Per item (an index): its scored samples, how many passed, whether its first scored sample
# passed, whether any sample needed no model; then items grouped by those four, so that the
# answer has at most a few rows per sample count however many items there are. (The table's
# name is the model's, never input.)
_BY_ITEM = f"""
SELECT evaluation_id, samples, passed, first_passed, no_model, COUNT(*),
       SUM(leakage)::bigint, SUM(errors)::bigint, scored, no_value
FROM (
    SELECT evaluation_id, "index",
           COUNT(*) AS samples,
           COUNT(*) FILTER (WHERE passed) AS passed,
           -- CRUXEval's official n: skipped samples left out, unless none passed (all false).
           CASE WHEN COUNT(*) FILTER (WHERE passed) > 0
                THEN COUNT(*) FILTER (WHERE score_status <> %(skipped)s)
                ELSE COUNT(*) END AS scored,
           (ARRAY_AGG(COALESCE(passed, FALSE) ORDER BY sample))[1] AS first_passed,
           BOOL_OR(score_status = %(no_model)s) AS no_model,
           BOOL_OR(score_status = %(no_value)s) AS no_value,
           COUNT(*) FILTER (WHERE leakage) AS leakage,
           COUNT(*) FILTER (WHERE score_status = 'error') AS errors
    FROM {Result._meta.db_table}
    WHERE evaluation_id = ANY(%(ids)s) AND status = %(done)s
    GROUP BY evaluation_id, "index"
) AS items
GROUP BY evaluation_id, samples, passed, first_passed, no_model, scored, no_value
"""  # noqa: S608


@dataclass(frozen=True)
class _Items:
    """Items that share (scored samples, passed samples, first passed, no model)."""

    samples: int
    passed: int
    first_passed: bool
    no_model: bool
    count: int
    leakage: int
    errors: int
    scored: int  # the samples that count in pass@k (official CRUXEval leaves skipped ones out)
    no_value: bool  # under a rule, the program returned no value to predict


def _grouped_items(ids: list[int]) -> dict[int, list[_Items]]:
    out: dict[int, list[_Items]] = {pk: [] for pk in ids}
    with connection.cursor() as cursor:
        cursor.execute(
            _BY_ITEM,
            {
                "ids": ids,
                "no_model": NO_MODEL,
                "no_value": NO_VALUE,
                "done": Result.Status.DONE,
                "skipped": SKIPPED,
            },
        )
        for pk, *row in cursor.fetchall():
            out[pk].append(_Items(*row))
    return out


def _figures(evaluation: Evaluation, groups: Iterable[_Items]) -> dict[str, Any]:
    """The numbers of the summary, from its items grouped by ``_BY_ITEM``."""
    groups = list(groups)
    # Items Chain of Code ran in Python alone never reached the model: counted apart, and left
    # out of the accuracy (they are neither the model's success nor its failure).
    # Items whose program returned nothing to predict under the evaluation's rule, likewise.
    scored = [g for g in groups if not g.no_model and not g.no_value]
    n = sum(g.count for g in scored)
    passed = sum(g.count for g in scored if g.first_passed)
    low, high = wilson_interval(passed, n)
    figures: dict[str, Any] = {
        "n": n,
        "passed": passed,
        "accuracy": passed / n if n else 0.0,
        "ci95": [low, high],
        "leakage": sum(g.leakage for g in groups),
        # Not judged (the run or the sandbox failed): counted as not passed, and reported.
        "errors": sum(g.errors for g in groups),
        "no_model": sum(g.count for g in groups if g.no_model),
        "no_value": sum(g.count for g in groups if g.no_value and not g.no_model),
        "done": sum(g.samples * g.count for g in groups),
    }
    official = evaluation.rules.startswith("official")
    if evaluation.samples > 1 and n:
        for k in sorted({1, min(5, evaluation.samples), evaluation.samples}):
            # One value per item, as many times as items share it: at most as many values as
            # the data set has items, whatever the samples. Under the official rules an item
            # whose skipped samples leave fewer than k counts as the official estimator says.
            values = [
                official_pass_at_k(g.scored, g.passed, k) if official
                else pass_at_k(g.samples, g.passed, k)
                for g in scored if official or g.samples >= k
                for _ in range(g.count)
            ]  # fmt: skip
            mean, lo, hi = mean_ci(values)
            figures[f"pass@{k}"] = {"value": mean, "ci95": [lo, hi], "items": len(values)}
    return figures


def figures_of(evaluations: list[Evaluation]) -> dict[int, dict[str, Any]]:
    """The figures of these evaluations, counted now (one query for all of them, and one more
    for those of a probe method)."""
    grouped = _grouped_items([e.pk for e in evaluations])
    figures = {e.pk: _figures(e, grouped[e.pk]) for e in evaluations}
    probing = [e.pk for e in evaluations if _asks_probes(e.method)]
    if probing:
        for pk, found in _probe_figures(probing).items():
            figures[pk]["probes"] = found
    stepping = [e.pk for e in evaluations if _yields_steps(e.method)]
    if stepping:
        for pk, found in _path_figures(stepping).items():
            figures[pk]["path"] = found
    per_step = [e.pk for e in evaluations if _graded_per_step(e.method)]
    if per_step:
        for pk, found in _stepping_figures(per_step).items():
            figures[pk]["stepping"] = found
    return figures


def _graded_per_step(method: str) -> bool:
    spec = REGISTRY.get(method)
    return spec is not None and spec.graded_per_step


def _asks_probes(method: str) -> bool:
    spec = REGISTRY.get(method)
    return spec is not None and spec.asks_probes


def _yields_steps(method: str) -> bool:
    """A method with a path verdict (judging: a step trace, Chain of Code's, the probes, a
    Think-and-Execute plan's prints)."""
    spec = REGISTRY.get(method)
    return spec is not None and spec.judges_path


_JUDGED = ("agrees", "diverges")


def _path_figures(ids: list[int]) -> dict[int, dict[str, Any]]:
    """Right answers on a diverging path (and wrong ones on the real path) among the first
    samples with a path verdict, each share with its Wilson interval; one grouped query."""
    # Each item's first scored sample, as the plots take it (evaluation/views: _plots).
    first = (
        Result.objects.filter(evaluation_id__in=ids, status=Result.Status.DONE)
        .exclude(score_status__in=APART)
        .order_by("evaluation_id", "index", "sample")
        .distinct("evaluation_id", "index")
        .values("pk")
    )
    counted = (
        Result.objects.filter(pk__in=first)
        .values("evaluation_id")
        .annotate(
            judged=Count("pk", filter=Q(path__in=_JUDGED)),
            diverges=Count("pk", filter=Q(path="diverges")),
            right=Count("pk", filter=Q(passed=True, path__in=_JUDGED)),
            right_wrong=Count("pk", filter=Q(passed=True, path="diverges")),
            wrong=Count("pk", filter=Q(passed=False, path__in=_JUDGED)),
            wrong_right=Count("pk", filter=Q(passed=False, path="agrees")),
        )
    )
    out = {pk: _path_shares({}) for pk in ids}
    for row in counted:
        out[row["evaluation_id"]] = _path_shares(dict(row))
    return out


def _path_shares(row: dict[str, Any]) -> dict[str, Any]:
    def share(count: int, of: int) -> dict[str, Any]:
        return {"count": count, "of": of, "share": count / of if of else 0.0,
                "ci95": list(wilson_interval(count, of))}  # fmt: skip

    return {
        "judged": row.get("judged", 0),
        "diverges": row.get("diverges", 0),
        "right_wrong_path": share(row.get("right_wrong", 0), row.get("right", 0)),
        "wrong_right_path": share(row.get("wrong_right", 0), row.get("wrong", 0)),
    }


def _probe_figures(ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per probe kind, the probes asked, answered right and not readable at all over the
    evaluation's runs (the accuracy of the answered right, with a
    Wilson interval: probes of one run are not independent, so it is narrower than it should
    be), and incremental consistency over every item of every run (mean and interval)."""
    marks_by: dict[int, list[list[dict[str, Any]]]] = {pk: [] for pk in ids}
    verdicts = Result.objects.filter(
        evaluation_id__in=ids, status=Result.Status.DONE, run__isnull=False
    ).values_list("evaluation_id", "run__verdict")
    for pk, verdict in verdicts.iterator():
        marks = (verdict or {}).get("probes") if isinstance(verdict, dict) else None
        if isinstance(marks, list):
            marks_by[pk].append([m for m in marks if isinstance(m, dict)])
    out: dict[int, dict[str, Any]] = {}
    for pk, runs in marks_by.items():
        kinds: dict[str, dict[str, Any]] = {}
        items: list[tuple[float, float]] = []
        for marks in runs:
            for kind, row in probes.scores(marks).items():
                seen = kinds.setdefault(kind, {"asked": 0, "correct": 0, "unparsable": 0})
                for count in seen:
                    seen[count] += row[count]
            items += probes.item_scores(marks)
        for figure in kinds.values():
            figure["accuracy"] = figure["correct"] / figure["asked"] if figure["asked"] else 0.0
            figure["ci95"] = list(wilson_interval(figure["correct"], figure["asked"]))
        found: dict[str, Any] = {
            "runs": len(runs),
            # A list, in the kinds' order: a stored JSON object's keys come back in jsonb's.
            "kinds": [{"kind": k, **kinds[k]} for k in probes.KINDS if k in kinds],
            "items": len(items),
        }
        if items:
            mean, low, high = mean_ci([ic for _, ic in items])
            found["ic"] = {"value": mean, "ci95": [low, high]}
            found["prefix"] = sum(p for p, _ in items) / len(items)
        out[pk] = found
    return out


STEP_PARTS = ("line", "variables", "output", "value")
MAX_STEP_INDEX = 400  # step indexes counted one by one; later ones (a call's end) together


def _stepping_figures(ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per step, over every graded step of the evaluation's stepping runs (``step``,
    ``step-free``; emulation/stepping.py): the share right as a whole and per part (line,
    variables, each variable, output, value), by step kind, by step index and by the run's
    trace length, and the re-syncs of free mode. Read from each run's verdict figures (their
    counts, not the marks); steps of one run are not independent, so the intervals are narrower
    than they should be."""
    rows = Result.objects.filter(
        evaluation_id__in=ids, status=Result.Status.DONE, run__isnull=False
    ).values_list("evaluation_id", "run__verdict__figures")
    sums: dict[int, dict[str, Any]] = {pk: _empty_steps() for pk in ids}
    for pk, figures in rows.iterator():
        if isinstance(figures, dict) and isinstance(figures.get("graded"), int):
            _add_steps(sums[pk], figures)
    return {pk: _step_shares(found) for pk, found in sums.items()}


def _empty_steps() -> dict[str, Any]:
    return {"runs": 0, "graded": 0, "correct": 0, "right": dict.fromkeys(STEP_PARTS, 0),
            "variables": [0, 0], "kinds": {}, "index": {}, "length": {}, "resyncs": None,
            "free_runs": 0}  # fmt: skip


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _add_steps(found: dict[str, Any], figures: dict[str, Any]) -> None:
    """One run's verdict figures added to its evaluation's sums."""
    graded = _count(figures.get("graded"))
    found["runs"] += 1
    found["graded"] += graded
    found["correct"] += _count(figures.get("correct"))
    right = _dict(figures.get("right"))
    accuracy = _dict(figures.get("accuracy"))
    for part in STEP_PARTS:
        if part in right:
            found["right"][part] += _count(right[part])
        elif isinstance(accuracy.get(part), (int, float)):  # a verdict from before the counts
            found["right"][part] += round(accuracy[part] * graded)
    variables = figures.get("variables")
    if isinstance(variables, list) and len(variables) == 2:
        found["variables"][0] += _count(variables[0])
        found["variables"][1] += _count(variables[1])
    kinds = _dict(figures.get("by_kind"))
    for kind, row in kinds.items():
        if isinstance(row, dict):
            seen = found["kinds"].setdefault(str(kind)[:20], [0, 0])
            seen[0] += _count(row.get("correct"))
            seen[1] += _count(row.get("graded"))
    marks = _list(figures.get("by_index"))
    at = _list(figures.get("at")) if "at" in figures else list(range(len(marks)))
    total = _count(figures.get("total"))
    length = found["length"].setdefault(total, [0, 0])
    for index, ok in zip(at, marks, strict=False):
        step = min(_count(index), MAX_STEP_INDEX) + 1  # counted from 1, as users read steps
        seen = found["index"].setdefault(step, [0, 0])
        seen[0] += 1 if ok else 0
        seen[1] += 1
        length[0] += 1 if ok else 0
        length[1] += 1
    if isinstance(figures.get("resyncs"), int):  # free mode
        found["resyncs"] = (found["resyncs"] or 0) + _count(figures["resyncs"])
        found["free_runs"] += 1


def _step_shares(found: dict[str, Any]) -> dict[str, Any]:
    """The sums as shares with their Wilson intervals, in lists (jsonb keeps no key order)."""

    def share(right: int, of: int) -> dict[str, Any]:
        return {"right": right, "of": of, "share": right / of if of else 0.0,
                "ci95": list(wilson_interval(right, of))}  # fmt: skip

    graded = found["graded"]
    parts = [{"part": part, **share(found["right"][part], graded)} for part in STEP_PARTS]
    parts.insert(2, {"part": "each variable", **share(*found["variables"])})
    kinds = [{"kind": kind, **share(*found["kinds"][kind])}
             for kind in sorted(found["kinds"], key=_kind_order)]  # fmt: skip
    out: dict[str, Any] = {
        "runs": found["runs"],
        "step": share(found["correct"], graded),
        "parts": parts,
        "kinds": kinds,
        # [step (from 1), right, graded], by step; a run's steps past the cap are not asked.
        "by_index": [[step, *found["index"][step]] for step in sorted(found["index"])],
        # [the run's steps, right, graded], by the length of the run's trace (from the call).
        "by_length": [[total, *found["length"][total]] for total in sorted(found["length"])],
        "resyncs": None,
    }
    if found["resyncs"] is not None:
        out["resyncs"] = {"runs": found["free_runs"], "total": found["resyncs"],
                          "per_step": found["resyncs"] / graded if graded else 0.0}  # fmt: skip
    return out


def _kind_order(kind: str) -> tuple[int, str]:
    order = ("call", "line", "back-edge", "return", "exception")
    return (order.index(kind) if kind in order else len(order), kind)


def keep_figures(evaluations: list[Evaluation]) -> None:
    """Count and keep the figures of these done evaluations that have none yet (two queries)."""
    missing = [e for e in evaluations if e.figures is None and e.status == Evaluation.Status.DONE]
    if not missing:
        return
    counted = figures_of(missing)
    for evaluation in missing:
        evaluation.figures = counted[evaluation.pk]
    # Should ``bench --resume`` reopen one meanwhile, what is written here is never read: only a
    # done evaluation's figures are, and finishing again writes them anew (services.execute).
    Evaluation.objects.bulk_update(missing, ["figures"])


def summarise(evaluation: Evaluation) -> dict[str, Any]:
    """The summary object of the CLI's --json and the API: at least dataset, method, model, n,
    passed, accuracy, ci95. ``n`` counts the items the model was asked about; ``no_model`` the
    items Chain of Code ran in Python alone (not in ``n``)."""
    if evaluation.status == Evaluation.Status.DONE:
        keep_figures([evaluation])
    figures = evaluation.figures
    if figures is None or evaluation.status != Evaluation.Status.DONE:
        figures = figures_of([evaluation])[evaluation.pk]
    summary: dict[str, Any] = {
        "id": evaluation.pk,
        "dataset": evaluation.dataset,
        "subset": evaluation.subset,
        "method": evaluation.method,
        "model": evaluation.model,
        "status": evaluation.status,
        "origin": evaluation.origin,
        "rules": evaluation.rules,
        # The semantic rule ("" for Python's own) and the items left out as it changes nothing
        # in their program; the paired figures against its standard twin are paired.py's.
        "rule": evaluation.rule,
        "not_offered": evaluation.not_offered,
    }
    if evaluation.dataset in ("cruxeval", "programs"):  # programs: output or input prediction
        summary["task"] = evaluation.task
    for key in ("n", "passed", "accuracy", "ci95", "leakage", "errors", "no_model", "done"):
        summary[key] = figures[key]
    summary["no_value"] = figures.get("no_value", 0)  # (figures kept before it was counted)
    summary["total"] = evaluation.total
    summary["config"] = evaluation.config  # what it ran with (services.configuration), or read
    summary["samples"] = evaluation.samples
    summary.update({key: value for key, value in figures.items() if key.startswith("pass@")})
    if "probes" in figures:  # a probe method: per kind, and incremental consistency
        summary["probes"] = figures["probes"]
    if "path" in figures:  # a method that yields steps: right answers on a wrong path
        summary["path"] = figures["path"]
    if "stepping" in figures:  # step, step-free: per step, part, kind, index, re-syncs
        summary["stepping"] = figures["stepping"]
    return summary
