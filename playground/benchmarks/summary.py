"""An evaluation's figures: accuracy with its 95% interval, pass@k, leakage, progress."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.scoring import pass_at_k
from playground.benchmarks.stats import mean_ci, wilson_interval


def summarise(evaluation: Evaluation) -> dict[str, Any]:
    """The summary object of the CLI's --json and the API: at least dataset, method, model, n,
    passed, accuracy, ci95."""
    results = list(
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE).values(
            "index", "passed", "leakage", "score_status"
        )
    )
    by_item: dict[int, list[bool]] = defaultdict(list)
    for r in results:
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
