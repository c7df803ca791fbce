"""The evaluations' part of the JSON API (a django-ninja ``Router``, mounted by
``playground/api.py``): the requester's evaluations, or the public ones (the leaderboard), with
their figures. A file of its own, beside ``benchmarks/views/``, whose rules for who sees which
evaluation it follows, because it answers a page of JSON rows where the views render tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from playground.benchmarks.access import public_evaluations
from playground.benchmarks.models import Evaluation
from playground.benchmarks.summary import keep_figures, summarise
from playground.runs.api import PAGE_SIZE, MethodName, page_bounds

router = Router()


class EvaluationFilters(Schema):
    which: Literal["mine", "public"] = Field(
        "mine",
        description="`mine`: your own evaluations, in any state; `public`: the leaderboard "
        "(finished evaluations of the shared data sets, anyone's).",
    )
    status: Evaluation.Status | None = None
    method: MethodName | None = None
    page: int = Field(1, ge=1, le=1_000_000, description=f"{PAGE_SIZE} evaluations a page.")


class EvaluationRowOut(Schema):
    id: int
    url: str
    title: str
    owner: str | None
    dataset: str
    task: str = Field(description="`output` (CRUXEval-O and the others) or `input` (CRUXEval-I)")
    origin: str = Field(description="`run`: generated here; `import`: outputs read from a file")
    rules: str = Field(description="the scoring rules' version (`official-1`: the benchmark's)")
    subset: list[Any]
    method: str
    model: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    n: int
    passed: int
    accuracy: float
    ci95: list[float]
    no_model: int
    errors: int
    done: int
    total: int


SUMMARY_FIELDS = (
    "n", "passed", "accuracy", "ci95", "no_model", "errors", "done", "total", "subset",
)  # fmt: skip


class EvaluationPageOut(Schema):
    count: int
    page: int
    pages: int
    results: list[EvaluationRowOut]


@router.get(
    "/evaluations", response=EvaluationPageOut, summary="Your evaluations, or the public ones"
)
def list_evaluations(request: HttpRequest, filters: Query[EvaluationFilters]) -> dict[str, Any]:
    """Evaluations with their figures (accuracy, 95% interval, counts), newest first, by the
    evaluation pages' rules: your own in any state, and the finished ones of the shared data
    sets for everyone. Per-item results are on each evaluation's page (``url``)."""
    if filters.which == "public":
        evaluations = public_evaluations()
    elif request.user.is_authenticated:
        evaluations = Evaluation.objects.filter(owner_id=request.user.pk).select_related("owner")
    else:
        evaluations = Evaluation.objects.none()
    if filters.status is not None:
        evaluations = evaluations.filter(status=filters.status)
    if filters.method is not None:
        evaluations = evaluations.filter(method=filters.method.value)
    count = evaluations.count()
    pages, start = page_bounds(count, filters.page)
    rows = []
    shown = list(evaluations.order_by("-id")[start : start + PAGE_SIZE])
    keep_figures(shown)  # the finished ones' figures, counted once for the page and kept
    for evaluation in shown:
        summary = summarise(evaluation)
        rows.append(
            {
                **{k: summary[k] for k in SUMMARY_FIELDS},
                "id": evaluation.pk,
                "url": evaluation.get_absolute_url(),
                "title": str(evaluation),
                "owner": evaluation.owner.get_username() if evaluation.owner else None,
                "dataset": evaluation.dataset,
                "task": evaluation.task,
                "origin": evaluation.origin,
                "rules": evaluation.rules,
                "method": evaluation.method,
                "model": evaluation.model,
                "status": evaluation.status,
                "created_at": evaluation.created_at,
                "finished_at": evaluation.finished_at,
            }
        )
    return {"count": count, "page": filters.page, "pages": pages, "results": rows}
