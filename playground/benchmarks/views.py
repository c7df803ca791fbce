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

from playground.benchmarks import plots, services
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.stats import mcnemar
from playground.benchmarks.summary import summarise
from playground.emulation.registry import REGISTRY
from playground.lib.spreadsheet import spreadsheet_safe
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
    """Finished evaluations by data set, best accuracy first, under a chart of accuracy by method
    and model; the user's own below."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for evaluation in Evaluation.objects.filter(status=Evaluation.Status.DONE)[:500]:
        by_dataset.setdefault(evaluation.get_dataset_display(), []).append(
            {"evaluation": evaluation, **summarise(evaluation)}
        )
    boards: list[dict[str, Any]] = []
    for name, rows in by_dataset.items():
        rows.sort(key=lambda r: (-r["accuracy"], -r["n"]))
        entries = [
            plots.Entry(group=r["model"], series=r["method"], passed=r["passed"], n=r["n"],
                        link=r["evaluation"].get_absolute_url())
            for r in rows
        ]  # fmt: skip
        chart = plots.grouped_accuracy(entries, title=f"Accuracy by method and model, {name}")
        number = len(boards) + 1
        boards.append({"dataset": name, "rows": rows, "chart": chart,
                       "chart_id": f"chart-{number}", "table_id": f"board-{number}"})  # fmt: skip
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
    # Only the whole page: the progress partial is polled every second.
    context["plots"] = _plots(evaluation)
    context["others"] = (
        _visible(request).filter(dataset=evaluation.dataset).exclude(pk=evaluation.pk)[:100]
    )
    return render(request, "benchmarks/detail.html", context)


def _plots(evaluation: Evaluation) -> dict[str, plots.Chart | None]:
    """Accuracy by program length and by real steps, and where traces first diverge (methods
    that compare steps); first samples only, like the score."""
    first: dict[int, Any] = {}
    for row in Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE).values(
        "index", "passed", "lines", "steps", "divergence_step"
    ):
        first.setdefault(row["index"], row)
    rows = list(first.values())
    method = REGISTRY.get(evaluation.method)
    divergence = None
    if method is not None and method.compares_steps:
        divergence = plots.histogram(
            (r["divergence_step"] for r in rows), plots.DIVERGENCE_BUCKETS,
            title="Where the trace first diverged (real step)",
        )  # fmt: skip
    return {
        "lines": plots.accuracy_by(
            ((r["lines"], bool(r["passed"])) for r in rows), plots.LINE_BUCKETS,
            title="Accuracy by program length (lines)",
        ),
        "steps": plots.accuracy_by(
            ((r["steps"], bool(r["passed"])) for r in rows), plots.STEP_BUCKETS,
            title="Accuracy by number of real steps",
        ),
        "divergence": divergence,
    }  # fmt: skip


def _first_samples(evaluation: Evaluation) -> dict[str, Result]:
    """The first scored sample of each item, by item key, in the evaluation's order."""
    first: dict[str, Result] = {}
    results = (
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .order_by("index", "sample")
        .only("index", "sample", "item_key", "passed", "leakage", "run_id", "evaluation_id")
    )
    for result in results:
        first.setdefault(result.item_key, result)
    return first


def _refuse(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "benchmarks/compare.html", {"error": message}, status=400)


def compare(request: HttpRequest) -> HttpResponse:
    """Two evaluations of the same data set item by item (first samples): which items one got
    right and the other wrong, and McNemar's exact test of the difference."""
    try:
        a_pk, b_pk = int(request.GET["a"]), int(request.GET["b"])
    except (KeyError, ValueError):
        return _refuse(request, "Choose two evaluations to compare: ?a=<id>&b=<id>.")
    a, b = _get(request, a_pk), _get(request, b_pk)
    if a.pk == b.pk:
        return _refuse(request, "Choose two different evaluations to compare.")
    if a.dataset != b.dataset:
        return _refuse(
            request,
            f"{a} is over {a.get_dataset_display()} and {b} over {b.get_dataset_display()}: "
            "only evaluations over the same data set can be compared item by item.",
        )
    first_a, first_b = _first_samples(a), _first_samples(b)
    pairs = [(key, ra, first_b[key]) for key, ra in first_a.items() if key in first_b]
    test = mcnemar([bool(ra.passed) for _, ra, _ in pairs], [bool(rb.passed) for _, _, rb in pairs])
    return render(
        request,
        "benchmarks/compare.html",
        {
            "a": a,
            "b": b,
            "test": test,
            "only_a_right": [p for p in pairs if p[1].passed and not p[2].passed],
            "only_b_right": [p for p in pairs if p[2].passed and not p[1].passed],
            "only_in_a": [r for key, r in first_a.items() if key not in first_b],
            "only_in_b": [r for key, r in first_b.items() if key not in first_a],
        },
    )


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
        writer.writerow([spreadsheet_safe(row[f]) for f in fields])
    return response
