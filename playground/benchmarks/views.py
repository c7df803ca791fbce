"""Evaluation pages: the leaderboard, starting one, its live progress and results, exports."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from playground.benchmarks import plots, services
from playground.benchmarks.access import listable_programs, public_evaluations, visible_evaluations
from playground.benchmarks.forms import EvaluationForm
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.stats import mcnemar
from playground.benchmarks.summary import NO_MODEL, keep_figures, summarise
from playground.emulation.registry import REGISTRY, max_tokens_for
from playground.lib import hiding, ratelimits
from playground.lib.hiding import Hidden, Surface, Verdict
from playground.lib.middleware import with_refusal
from playground.lib.pagination import page_of
from playground.lib.params import object_id
from playground.lib.spreadsheet import spreadsheet_safe
from playground.programs.models import Program


def _hidden_items(request: HttpRequest, evaluation: Evaluation) -> set[int]:
    """The items (by index) of this evaluation whose results are hidden from the requester: a
    student's open assignment holds their program or puzzle (the hiding policy's
    ``EVALUATION`` surface). Their rows show no prediction, verdict, reason or run."""
    hidden = hiding.policy().hidden_for(request.user)
    if not hidden.anything:
        return set()
    refs = dict(
        Result.objects.filter(evaluation=evaluation, sample=0).values_list("index", "item_ref")
    )
    return _hidden_of(hidden, refs)


def _hidden_of(hidden: Hidden, refs: dict[int, Any]) -> set[int]:
    """Which of these items (index: reference) are hidden; a page or a chunk of rows at a time."""
    if not hidden.anything:
        return set()
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
    evaluation = visible_evaluations(request).filter(pk=pk).first()
    if evaluation is None:
        raise Http404("No such evaluation.")
    return evaluation


# Done evaluations whose figures were never kept (finished before they were, or made outside
# services.execute) are counted this many per leaderboard request, in one query.
FILL_PER_REQUEST = 100


def _ranked(dataset: str) -> QuerySet[Evaluation]:
    """A data set's finished public evaluations, best accuracy first (then more items, then the
    newest), by their kept figures: no result is read."""
    return (
        public_evaluations()
        .filter(dataset=dataset, figures__isnull=False)
        .order_by(
            KeyTransform("accuracy", "figures").desc(), KeyTransform("n", "figures").desc(), "-id"
        )
    )


def leaderboard(request: HttpRequest) -> HttpResponse:
    """Finished evaluations by data set, best accuracy first, a page of each under a chart of
    accuracy by method and model (``?dataset=`` pages through one); the user's own below."""
    keep_figures(list(public_evaluations().filter(figures__isnull=True)[:FILL_PER_REQUEST]))
    datasets = [d for d in Dataset if d != Dataset.PROGRAMS]
    chosen = request.GET.get("dataset", "")
    if chosen not in datasets:
        chosen = ""
    per_page = settings.PLAYGROUND_PAGE_SIZE
    boards: list[dict[str, Any]] = []
    for dataset in datasets:
        if chosen and dataset != chosen:
            continue
        ranked = _ranked(dataset)
        # One board pages with ?page=; on the page of every board, each shows its first page.
        page = page_of(request, ranked, per_page) if chosen else Paginator(ranked, per_page).page(1)
        if not chosen and not page.object_list:
            continue
        rows = [{"evaluation": evaluation, **summarise(evaluation)} for evaluation in page]
        name = dataset.label
        entries = [
            plots.Entry(group=r["model"], series=r["method"], passed=r["passed"], n=r["n"],
                        link=r["evaluation"].get_absolute_url())
            for r in rows
        ]  # fmt: skip
        chart = plots.grouped_accuracy(entries, title=f"Accuracy by method and model, {name}")
        number = len(boards) + 1
        boards.append({"dataset": name, "key": dataset.value, "rows": rows, "page": page,
                       "chart": chart, "chart_id": f"chart-{number}",
                       "table_id": f"board-{number}"})  # fmt: skip
    mine = (
        Evaluation.objects.filter(owner_id=request.user.pk)[:50]
        if request.user.is_authenticated
        else []
    )
    form = EvaluationForm(owner=request.user) if request.user.is_authenticated else None
    return render(
        request,
        "benchmarks/leaderboard.html",
        {"boards": boards, "mine": mine, "form": form, "chosen": chosen},
    )


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    messages.error(request, message)
    return redirect("benchmarks:leaderboard")


def _start_page(request: HttpRequest, form: EvaluationForm) -> HttpResponse:
    return render(request, "benchmarks/start.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """The form that starts an evaluation (GET), and starting it (POST). An invalid form comes
    back with what was typed and each error next to its field."""
    hidden = hiding.policy().hidden_for(request.user)
    refusal = hiding.policy().refusal(request.user, Surface.START_EVALUATION, hidden=hidden)
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
        listed = listable_programs(request.user).filter(pk__in=form.subset)
        for source in listed.values_list("source", flat=True):
            refusal = hiding.policy().refusal(
                request.user, Surface.START_RUN, source=source, hidden=hidden
            )
            if refusal is not None:
                return _refused(request, refusal)
    if form.limited:
        # Refused while the owner's model tokens are spent (its runs count against them), then
        # counted only once the evaluation would be made: fixing a typo costs nothing.
        over = ratelimits.exceeded(request, "model_tokens", count=False) or ratelimits.exceeded(
            request, "evaluations"
        )
        if over is not None:
            form.add_error(None, over.message)
            return with_refusal(_start_page(request, form), over)
    samples = data["samples"]
    try:
        evaluation = services.create_evaluation(
            dataset=data["dataset"], method=data["method"], model=data["model"],
            subset=form.subset, owner=request.user, limit=data["limit"],
            sample_randomly=data["random"], samples=samples, seed=data["seed"],
            temperature=0.8 if samples > 1 else 0.0, concurrency=data["concurrency"],
            max_tokens=max_tokens_for(data["method"]), title=data["title"],
            max_results=form.most_results,
        )  # fmt: skip
    except services.EvaluationError as exc:
        form.add_error(None, str(exc))
        return _start_page(request, form)
    return redirect(evaluation)


RESULTS_PER_PAGE = 100
# What the item table shows of a result (a run by its id only: its source and text are large).
ROW_FIELDS = ("id", "evaluation_id", "index", "sample", "item_key", "item_ref", "status",
              "score_status", "passed", "leakage", "prediction", "reason", "run_id")  # fmt: skip


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = _get(request, pk)
    context = _progress(evaluation)
    context["mine"] = request.user.is_authenticated and evaluation.owner_id == request.user.pk
    if request.htmx and not evaluation.is_finished:  # type: ignore[attr-defined]
        return render(request, "benchmarks/detail.html#progress", context)
    # Only the whole page: the progress partial is polled every second.
    rows = Result.objects.filter(evaluation=evaluation).only(*ROW_FIELDS)
    page = page_of(request, rows, RESULTS_PER_PAGE)
    page.object_list = results = list(page.object_list)
    hidden = _hidden_of(
        hiding.policy().hidden_for(request.user), {r.index: r.item_ref for r in results}
    )
    for result in results:
        result.hidden = result.index in hidden
    context["results"] = page
    context["plots"] = _plots(evaluation)
    context["others"] = (
        visible_evaluations(request)
        .filter(dataset=evaluation.dataset)
        .exclude(pk=evaluation.pk)[:100]
    )
    return render(request, "benchmarks/detail.html", context)


def _bucket_counts(
    field: str, buckets: plots.Buckets, *, shift: int = 0, passed: bool = True
) -> dict[str, Count]:
    """SQL counts of the first samples in each bucket of ``field + shift`` (and of those that
    passed), as ``plots`` buckets them; named ``<field>_<bucket>_n`` / ``_passed``."""
    counts: dict[str, Count] = {}
    for i, (above, top) in enumerate(plots.bucket_bounds(buckets)):
        inside = Q(**{f"{field}__isnull": False})
        if above is not None:
            inside &= Q(**{f"{field}__gt": above - shift})
        if top is not None:
            inside &= Q(**{f"{field}__lte": top - shift})
        counts[f"{field}_{i}_n"] = Count("pk", filter=inside)
        if passed:
            counts[f"{field}_{i}_passed"] = Count("pk", filter=inside & Q(passed=True))
    return counts


def _plots(evaluation: Evaluation) -> dict[str, plots.Chart | None]:
    """Accuracy by program length and by real steps, and where traces first diverge (methods
    that compare steps); first samples only, like the score. Counted in one SQL query."""
    method = REGISTRY.get(evaluation.method)
    compares_steps = method is not None and method.compares_steps
    # Items that never reached the model (Chain of Code ran them in Python alone) are no part
    # of the model's accuracy, here as in the summary.
    first = (
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .exclude(score_status=NO_MODEL)
        .order_by("index", "sample")
        .distinct("index")
        .values("pk")
    )
    wanted = {
        **_bucket_counts("lines", plots.LINE_BUCKETS),
        **_bucket_counts("steps", plots.STEP_BUCKETS),
    }
    if compares_steps:
        # Stored steps count from 0; the chart's, as viewers read them, from 1.
        wanted |= _bucket_counts("divergence_step", plots.DIVERGENCE_BUCKETS, shift=1, passed=False)
    counts = Result.objects.filter(pk__in=first).aggregate(**wanted)

    def accuracy(field: str, buckets: plots.Buckets) -> list[tuple[int, int]]:
        return [(counts[f"{field}_{i}_passed"], counts[f"{field}_{i}_n"])
                for i in range(len(buckets))]  # fmt: skip

    divergence = None
    if compares_steps:
        divergence = plots.histogram_of_counts(
            [counts[f"divergence_step_{i}_n"] for i in range(len(plots.DIVERGENCE_BUCKETS))],
            plots.DIVERGENCE_BUCKETS,
            title="Where the trace first diverged (real step)",
        )  # fmt: skip
    return {
        "lines": plots.accuracy_of_counts(
            accuracy("lines", plots.LINE_BUCKETS), plots.LINE_BUCKETS,
            title="Accuracy by program length (lines)",
        ),
        "steps": plots.accuracy_of_counts(
            accuracy("steps", plots.STEP_BUCKETS), plots.STEP_BUCKETS,
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


def _progress(evaluation: Evaluation) -> dict[str, Any]:
    """The score and progress (items a minute, time left): counted in SQL."""
    summary = summarise(evaluation)
    times = Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE).aggregate(
        scored=Count("scored_at"), first=Min("scored_at"), last=Max("scored_at")
    )
    rate = eta = None
    if times["scored"] >= 2:
        seconds = (times["last"] - times["first"]).total_seconds()
        if seconds > 0:
            rate = (times["scored"] - 1) / seconds * 60
            remaining = evaluation.total - times["scored"]
            eta = remaining / (rate / 60) if rate else None
    return {
        "evaluation": evaluation,
        "summary": summary,
        "percent": 100 * summary["done"] / evaluation.total if evaluation.total else 0,
        "rate": rate,
        "eta": eta,
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


EXPORT_CHUNK = 500
EXPORT_FIELDS = ("id", "evaluation_id", "index", "sample", "item_key", "item_ref", "passed",
                 "leakage", "score_status", "reason", "prediction", "run_id", "lines", "steps",
                 "divergence_step")  # fmt: skip
CSV_FIELDS = ["index", "sample", "item", "passed", "leakage", "status", "reason",
              "prediction", "run", "lines", "steps", "divergence_step"]  # fmt: skip


def _export_rows(evaluation: Evaluation, hidden: Hidden) -> Iterator[list[dict[str, Any]]]:
    """Every result as the exports show it, EXPORT_CHUNK at a time in the evaluation's order:
    each chunk one query after the last row of the one before, so that no query, and no more
    than a chunk in memory, grows with the evaluation."""
    after: tuple[int, int] | None = None
    while True:
        rows = Result.objects.filter(evaluation=evaluation).only(*EXPORT_FIELDS)
        if after is not None:
            rows = rows.filter(Q(index__gt=after[0]) | Q(index=after[0], sample__gt=after[1]))
        chunk = list(rows.order_by("index", "sample")[:EXPORT_CHUNK])
        if not chunk:
            return
        hidden_now = _hidden_of(hidden, {r.index: r.item_ref for r in chunk})
        yield [_row(result, hidden_now) for result in chunk]
        if len(chunk) < EXPORT_CHUNK:
            return
        after = (chunk[-1].index, chunk[-1].sample)


def _dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _json_parts(summary: dict[str, Any], chunks: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    """The text of ``{"summary": ..., "results": [...]}``, exactly as one ``json.dumps`` of it
    would write it, a chunk of results at a time."""
    yield '{"summary": ' + _dumps(summary) + ', "results": ['
    separator = ""
    for chunk in chunks:
        yield separator + ", ".join(_dumps(row) for row in chunk)
        separator = ", "
    yield "]}"


class _Line:
    """What ``csv.writer`` writes to: each line is handed back rather than stored."""

    def write(self, line: str) -> str:
        return line


def _csv_parts(chunks: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(CSV_FIELDS)
    for chunk in chunks:
        yield "".join(
            writer.writerow([spreadsheet_safe(row[f]) for f in CSV_FIELDS]) for row in chunk
        )


async def _async_parts(parts: Iterator[str]) -> AsyncIterator[str]:
    """The same parts for an ASGI server, each made in the thread that holds the database
    connection (Django would otherwise read a sync iterator to its end before sending)."""
    while (part := await sync_to_async(_next)(parts)) is not None:
        yield part


def _next(parts: Iterator[str]) -> str | None:
    return next(parts, None)


def _streamed(
    request: HttpRequest, parts: Iterator[str], content_type: str
) -> StreamingHttpResponse:
    content = _async_parts(parts) if isinstance(request, ASGIRequest) else parts
    return StreamingHttpResponse(content, content_type=content_type)


def export_json(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    evaluation = _get(request, pk)
    chunks = _export_rows(evaluation, hiding.policy().hidden_for(request.user))
    return _streamed(request, _json_parts(summarise(evaluation), chunks), "application/json")


def export_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    evaluation = _get(request, pk)
    chunks = _export_rows(evaluation, hiding.policy().hidden_for(request.user))
    response = _streamed(request, _csv_parts(chunks), "text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{evaluation.pk}.csv"'
    return response
