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
from django.views.decorators.http import require_http_methods, require_POST

from playground.benchmarks import plots, services
from playground.benchmarks.forms import EvaluationForm
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.stats import mcnemar
from playground.benchmarks.summary import NO_MODEL, summarise
from playground.classroom import guards
from playground.classroom.hiding import Surface, Verdict, hidden_for
from playground.emulation.registry import REGISTRY
from playground.lib import ratelimits
from playground.lib.params import object_id
from playground.lib.spreadsheet import spreadsheet_safe
from playground.programs.models import Program
from playground.runs.methods import METHOD_TOKENS


def _public() -> QuerySet[Evaluation]:
    """Finished evaluations of the shared data sets: the leaderboard. An evaluation of a list
    of programs stays its owner's (the list may hold their private programs; one made from the
    command line has no owner and is nobody's to read on the site)."""
    return (
        Evaluation.objects.filter(status=Evaluation.Status.DONE)
        .exclude(dataset=Dataset.PROGRAMS)
        .select_related("owner")  # the leaderboard names each row's owner
    )


def _visible(request: HttpRequest) -> QuerySet[Evaluation]:
    """Finished public evaluations, and every evaluation of the requester's own."""
    mine = Evaluation.objects.none()
    if request.user.is_authenticated:
        mine = Evaluation.objects.filter(owner_id=request.user.pk)
    return _public() | mine


def _hidden_items(request: HttpRequest, evaluation: Evaluation) -> set[int]:
    """The items (by index) of this evaluation whose results are hidden from the requester: a
    student's open assignment holds their program or puzzle (the hiding policy's
    ``EVALUATION`` surface). Their rows show no prediction, verdict, reason or run."""
    hidden = hidden_for(request.user)
    if not hidden.anything:
        return set()
    refs = dict(
        Result.objects.filter(evaluation=evaluation, sample=0).values_list("index", "item_ref")
    )
    program_ids = {ref["program"] for ref in refs.values() if "program" in ref}
    sources = dict(Program.objects.filter(pk__in=program_ids).values_list("pk", "source"))
    out: set[int] = set()
    for index, ref in refs.items():
        source = sources.get(ref.get("program"))
        verdict = hidden.verdict(Surface.EVALUATION, source=source, puzzle_id=ref.get("puzzle"))
        if verdict is not Verdict.SHOW:
            out.add(index)
    return out


HIDDEN_ROW = "hidden while an assignment is open"


def _row(result: Result, hidden: set[int]) -> dict[str, Any]:
    """A result as the exports show it, with nothing of a hidden item but its key."""
    row = result.as_dict()
    if result.index in hidden:
        row.update(passed=None, leakage=None, status="hidden", reason=HIDDEN_ROW,
                   prediction="", run=None, divergence_step=None)  # fmt: skip
    return row


def _get(request: HttpRequest, pk: int) -> Evaluation:
    evaluation = _visible(request).filter(pk=pk).first()
    if evaluation is None:
        raise Http404("No such evaluation.")
    return evaluation


def leaderboard(request: HttpRequest) -> HttpResponse:
    """Finished evaluations by data set, best accuracy first, under a chart of accuracy by method
    and model; the user's own below."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for evaluation in _public()[:500]:
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
    form = EvaluationForm(owner=request.user) if request.user.is_authenticated else None
    return render(
        request, "benchmarks/leaderboard.html", {"boards": boards, "mine": mine, "form": form}
    )


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    messages.error(request, message)
    return redirect("benchmarks:leaderboard")


def _start_page(request: HttpRequest, form: EvaluationForm, status: int = 200) -> HttpResponse:
    return render(request, "benchmarks/start.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """The form that starts an evaluation (GET), and starting it (POST). An invalid form comes
    back with what was typed and each error next to its field."""
    hidden = hidden_for(request.user)
    refusal = guards.refusal(request.user, Surface.START_EVALUATION, hidden=hidden)
    if refusal is not None:
        return _refused(request, refusal)
    if request.method == "GET":
        return _start_page(request, EvaluationForm(owner=request.user))
    form = EvaluationForm(request.POST, owner=request.user)
    if not form.is_valid():
        return _start_page(request, form)
    data = form.cleaned_data
    if data["dataset"] == Dataset.PROGRAMS:
        # Not a program whose results an open assignment hides from the requester: the
        # evaluation would run it and show its rows.
        listed = services.listable_programs(request.user).filter(pk__in=form.subset)
        for source in listed.values_list("source", flat=True):
            refusal = guards.refusal(request.user, Surface.START_RUN, source=source, hidden=hidden)
            if refusal is not None:
                return _refused(request, refusal)
    if form.limited:
        # Counted only once the evaluation would be made: fixing a typo costs nothing.
        over = ratelimits.exceeded(request, "evaluations")
        if over is not None:
            form.add_error(None, over.message)
            response = _start_page(request, form, status=429)
            response["Retry-After"] = str(over.retry_after)
            return response
    samples = data["samples"]
    try:
        evaluation = services.create_evaluation(
            dataset=data["dataset"], method=data["method"], model=data["model"],
            subset=form.subset, owner=request.user, limit=data["limit"],
            sample_randomly=data["random"], samples=samples, seed=data["seed"],
            temperature=0.8 if samples > 1 else 0.0, concurrency=data["concurrency"],
            max_tokens=METHOD_TOKENS.get(data["method"], 512), title=data["title"],
            max_results=form.most_results,
        )  # fmt: skip
    except services.EvaluationError as exc:
        form.add_error(None, str(exc))
        return _start_page(request, form)
    return redirect(evaluation)


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = _get(request, pk)
    context = _context(evaluation, _hidden_items(request, evaluation))
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
    # Items that never reached the model (Chain of Code ran them in Python alone) are no part
    # of the model's accuracy, here as in the summary.
    for row in (
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .exclude(score_status=NO_MODEL)
        .values("index", "passed", "lines", "steps", "divergence_step")
    ):
        first.setdefault(row["index"], row)
    rows = list(first.values())
    method = REGISTRY.get(evaluation.method)
    divergence = None
    if method is not None and method.compares_steps:
        divergence = plots.histogram(
            (None if r["divergence_step"] is None else r["divergence_step"] + 1 for r in rows),
            plots.DIVERGENCE_BUCKETS,
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


FIRST_SAMPLE_FIELDS = ("index", "sample", "item_key", "passed", "leakage", "score_status",
                       "run_id", "evaluation_id")  # fmt: skip


def _first_samples(evaluation: Evaluation, hidden: set[int]) -> dict[str, Result]:
    """The first scored sample of each item, by item key, in the evaluation's order (items
    hidden from the requester left out)."""
    first: dict[str, Result] = {}
    results = (
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .order_by("index", "sample")
        .only(*FIRST_SAMPLE_FIELDS)
    )
    for result in results:
        if result.index not in hidden:
            first.setdefault(result.item_key, result)
    return first


def _refuse(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "benchmarks/compare.html", {"error": message}, status=400)


def compare(request: HttpRequest) -> HttpResponse:
    """Two evaluations of the same data set item by item (first samples): which items one got
    right and the other wrong, and McNemar's exact test of the difference."""
    a_pk, b_pk = object_id(request.GET.get("a")), object_id(request.GET.get("b"))
    if a_pk is None or b_pk is None:
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
    first_a = _first_samples(a, _hidden_items(request, a))
    first_b = _first_samples(b, _hidden_items(request, b))
    both = [(key, ra, first_b[key]) for key, ra in first_a.items() if key in first_b]
    # An item that one side ran without the model says nothing about that model: left out of
    # the paired test, and counted.
    pairs = [p for p in both if NO_MODEL not in (p[1].score_status, p[2].score_status)]
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
            "no_model_a": sum(1 for _, ra, _ in both if ra.score_status == NO_MODEL),
            "no_model_b": sum(1 for _, _, rb in both if rb.score_status == NO_MODEL),
            "only_in_a": [r for key, r in first_a.items() if key not in first_b],
            "only_in_b": [r for key, r in first_b.items() if key not in first_a],
        },
    )


def _context(evaluation: Evaluation, hidden: set[int]) -> dict[str, Any]:
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
    results = list(Result.objects.filter(evaluation=evaluation).select_related("run")[:2000])
    for result in results:
        result.hidden = result.index in hidden  # type: ignore[attr-defined]
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
    hidden = _hidden_items(request, evaluation)
    return JsonResponse(
        {"summary": summarise(evaluation), "results": [_row(r, hidden) for r in results]},
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
    hidden = _hidden_items(request, evaluation)
    for result in Result.objects.filter(evaluation=evaluation).select_related("run"):
        row = _row(result, hidden)
        writer.writerow([spreadsheet_safe(row[f]) for f in fields])
    return response
