"""An evaluation's figures: accuracy with its 95% interval, pass@k, leakage, progress."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.scoring import pass_at_k
from playground.benchmarks.stats import mean_ci, wilson_interval

NO_MODEL = "no_model"


def summarise(evaluation: Evaluation) -> dict[str, Any]:
    """The summary object of the CLI's --json and the API: at least dataset, method, model, n,
    passed, accuracy, ci95. ``n`` counts the items the model was asked about; ``no_model`` the
    items Chain of Code ran in Python alone (not in ``n``)."""
    results = list(
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE).values(
            "index", "passed", "leakage", "score_status"
        )
    )
    # Items Chain of Code ran in Python alone never reached the model: counted apart, and left
    # out of the accuracy (they are neither the model's success nor its failure).
    no_model = {r["index"] for r in results if r["score_status"] == NO_MODEL}
    by_item: dict[int, list[bool]] = defaultdict(list)
    for r in results:
        if r["index"] not in no_model:
            by_item[r["index"]].append(bool(r["passed"]))
    n = len(by_item)
    first = [samples[0] for samples in by_item.values()]
    passed = sum(first)
    low, high = wilson_interval(passed, n)
    summary: dict[str, Any] = {
        "id": evaluation.pk,
        "dataset": evaluation.dataset,
        "subset": evaluation.subset,
        "method": evaluation.method,
        "model": evaluation.model,
        "status": evaluation.status,
        "n": n,
        "passed": passed,
        "accuracy": passed / n if n else 0.0,
        "ci95": [low, high],
        "leakage": sum(1 for r in results if r["leakage"]),
        # Not judged (the run or the sandbox failed): counted as not passed, and reported.
        "errors": sum(1 for r in results if r["score_status"] == "error"),
        "no_model": len(no_model),
        "done": len(results),
        "total": evaluation.total,
        "samples": evaluation.samples,
    }
    if evaluation.samples > 1 and n:
        for k in sorted({1, min(5, evaluation.samples), evaluation.samples}):
            values = [pass_at_k(len(s), sum(s), k) for s in by_item.values() if len(s) >= k]
            mean, lo, hi = mean_ci(values)
            summary[f"pass@{k}"] = {"value": mean, "ci95": [lo, hi], "items": len(values)}
    return summary
