"""Evaluation pages: the leaderboard, starting one, its live progress and results, exports."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from playground.benchmarks import services
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.summary import summarise
from playground.emulation.registry import REGISTRY
from playground.llm.registry import RegistryError, load_models
from playground.runs.methods import METHOD_TOKENS


def _visible(request: HttpRequest) -> QuerySet[Evaluation]:
    """Finished evaluations are public (the leaderboard); unfinished ones their owner's."""
    mine = Evaluation.objects.none()
    if request.user.is_authenticated:
        mine = Evaluation.objects.filter(owner_id=request.user.pk)
    return Evaluation.objects.filter(status=Evaluation.Status.DONE) | mine


def _get(request: HttpRequest, pk: int) -> Evaluation:
    evaluation = _visible(request).filter(pk=pk).first()
    if evaluation is None:
        raise Http404("No such evaluation.")
    return evaluation


def leaderboard(request: HttpRequest) -> HttpResponse:
    """Finished evaluations by data set, best accuracy first; the user's own below."""
    boards: dict[str, list[dict[str, Any]]] = {}
    for evaluation in Evaluation.objects.filter(status=Evaluation.Status.DONE)[:500]:
        boards.setdefault(evaluation.get_dataset_display(), []).append(
            {"evaluation": evaluation, **summarise(evaluation)}
        )
    for rows in boards.values():
        rows.sort(key=lambda r: (-r["accuracy"], -r["n"]))
    mine = (
        Evaluation.objects.filter(owner_id=request.user.pk)[:50]
        if request.user.is_authenticated
        else []
    )
    try:
        models = load_models()
    except RegistryError:
        models = []
    return render(
        request,
        "benchmarks/leaderboard.html",
        {
            "boards": boards,
            "mine": mine,
            "datasets": Dataset.choices,
            "methods": {k: m.label for k, m in REGISTRY.items()},
            "models": models,
        },
    )


@login_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    post = request.POST
    try:
        limit = int(post["limit"]) if post.get("limit", "").strip() else None
        samples = int(post.get("samples") or 1)
        seed = int(post.get("seed") or 0)
        concurrency = int(post.get("concurrency") or 4)
    except ValueError:
        messages.error(request, "Limit, samples, seed and concurrency are whole numbers.")
        return redirect("benchmarks:leaderboard")
    method = post.get("method", "")
    try:
        names = {m.name for m in load_models()}
    except RegistryError:
        names = set()
    if post.get("model") not in names:
        messages.error(request, "Choose a model this site offers.")
        return redirect("benchmarks:leaderboard")
    subset = [t.strip() for t in post.get("tasks", "").split(",") if t.strip()]
    try:
        evaluation = services.create_evaluation(
            dataset=post.get("dataset", ""), method=method, model=post["model"],
            subset=subset, owner=request.user, limit=limit,
            sample_randomly=post.get("random") == "on", samples=samples, seed=seed,
            temperature=0.8 if samples > 1 else 0.0, concurrency=concurrency,
            max_tokens=METHOD_TOKENS.get(method, 512), title=post.get("title", "")[:200],
        )  # fmt: skip
    except services.EvaluationError as exc:
        messages.error(request, str(exc))
        return redirect("benchmarks:leaderboard")
    return redirect(evaluation)


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = _get(request, pk)
    context = _context(evaluation)
    context["mine"] = request.user.is_authenticated and evaluation.owner_id == request.user.pk
    if request.htmx and not evaluation.is_finished:  # type: ignore[attr-defined]
        return render(request, "benchmarks/detail.html#progress", context)
    return render(request, "benchmarks/detail.html", context)


def _context(evaluation: Evaluation) -> dict[str, Any]:
    summary = summarise(evaluation)
    done = [
        t
        for t in Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .order_by("scored_at")
        .values_list("scored_at", flat=True)
        if t is not None
    ]
    rate = eta = None
    if len(done) >= 2:
        seconds = (done[-1] - done[0]).total_seconds()
        if seconds > 0:
            rate = (len(done) - 1) / seconds * 60
            remaining = evaluation.total - len(done)
            eta = remaining / (rate / 60) if rate else None
    results = Result.objects.filter(evaluation=evaluation).select_related("run")[:2000]
    return {
        "evaluation": evaluation,
        "summary": summary,
        "percent": 100 * summary["done"] / evaluation.total if evaluation.total else 0,
        "rate": rate,
        "eta": eta,
        "results": results,
        "now": timezone.now(),
    }


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = Evaluation.objects.filter(pk=pk, owner_id=request.user.pk).first()
    if evaluation is None:
        raise Http404("No such evaluation of yours.")
    services.cancel(evaluation)
    return redirect(evaluation)


def export_json(request: HttpRequest, pk: int) -> JsonResponse:
    evaluation = _get(request, pk)
    results = Result.objects.filter(evaluation=evaluation).select_related("run")
    return JsonResponse(
        {"summary": summarise(evaluation), "results": [r.as_dict() for r in results]},
        json_dumps_params={"ensure_ascii": False},
    )


def _cell(value: Any) -> Any:
    """A spreadsheet does not run it: text starting like a formula gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = _get(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{evaluation.pk}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    fields = ["index", "sample", "item", "passed", "leakage", "status", "reason",
              "prediction", "run", "lines", "steps", "divergence_step"]  # fmt: skip
    writer.writerow(fields)
    for result in Result.objects.filter(evaluation=evaluation).select_related("run"):
        row = result.as_dict()
        writer.writerow([_cell(row[f]) for f in fields])
    return response
