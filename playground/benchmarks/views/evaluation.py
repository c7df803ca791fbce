"""One evaluation's page: its live progress (the partial the page polls), a page of its items,
and its charts (accuracy by program length and by real steps, where traces first diverge),
each counted in SQL.

Its own file because it is the page of one evaluation; its exports (streamed files) are in
``exports.py`` and the comparison of two in ``comparing.py``."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Min, Q
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from playground import sandbox
from playground.benchmarks import paired, plots
from playground.benchmarks.access import visible_evaluations
from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.summary import APART, NO_MODEL, summarise
from playground.benchmarks.views.common import evaluation_or_404, hidden_of
from playground.benchmarks.views.surprise import rank as rank_by_surprise
from playground.emulation.registry import REGISTRY
from playground.lib import hiding
from playground.lib.htmx import HtmxHttpRequest
from playground.lib.pagination import page_of

RESULTS_PER_PAGE = 100
# What the item table shows of a result (a run by its id only: its source and text are large).
ROW_FIELDS = ("id", "evaluation_id", "index", "sample", "item_key", "item_ref", "status",
              "score_status", "passed", "leakage", "prediction", "reason", "run_id",
              "path")  # fmt: skip
# ?path=: only the items whose answer and path disagree (issue 20: right answer, wrong execution).
PATH_FILTERS = {
    "right-wrong": Q(passed=True, path="diverges"),
    "wrong-right": Q(passed=False, path="agrees") & ~Q(score_status=NO_MODEL),
}


def detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    evaluation = evaluation_or_404(request, pk)
    context = _progress(evaluation)
    context["mine"] = request.user.is_authenticated and evaluation.owner_id == request.user.pk
    # As pairs: in a template, ``config.items`` would read a key named "items" first.
    config = evaluation.config if isinstance(evaluation.config, dict) else {}
    context["config_rows"] = [(k, v) for k, v in sorted(config.items()) if k != "digest"]
    if request.htmx and not evaluation.is_finished:
        return render(request, "benchmarks/detail.html#progress", context)
    # Only the whole page: the progress partial is polled every second.
    rows = Result.objects.filter(evaluation=evaluation).only(*ROW_FIELDS)
    path_filter = request.GET.get("path", "")
    if path_filter in PATH_FILTERS:
        rows = rows.filter(PATH_FILTERS[path_filter])
        context["path_filter"] = path_filter
    # Each run's surprise, and ?sort=surprise-mean / surprise-max (issue 23).
    rows, context["surprise"] = rank_by_surprise(request, evaluation, rows)
    page = page_of(request, rows, RESULTS_PER_PAGE)
    page.object_list = results = list(page.object_list)
    hidden = hidden_of(
        hiding.policy().hidden_for(request.user), {r.index: r.item_ref for r in results}
    )
    for result in results:
        result.hidden = result.index in hidden
    context["results"] = page
    context["plots"] = _plots(evaluation)
    context["plots"].update(plots.stepping_charts(context["summary"].get("stepping")))
    visible = visible_evaluations(request)
    context["paired"] = paired.figures(evaluation, visible)
    for row in context["paired"]:  # the table's two columns: every item paired, those changed
        row["paired_columns"] = [row, row["changed"]]
    context["twin_missing"] = bool(evaluation.rule) and not context["paired"]
    rule = sandbox.RULES.get(evaluation.rule)
    context["rule_text"] = rule.text if rule is not None else ""
    context["others"] = visible.filter(dataset=evaluation.dataset).exclude(pk=evaluation.pk)[:100]
    return render(request, "benchmarks/detail.html", context)


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
        .exclude(score_status__in=APART)
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
