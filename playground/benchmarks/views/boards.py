"""The leaderboard: finished public evaluations by data set, best accuracy first, under a chart
of accuracy by method and model, with the user's own evaluations and the form that starts one.

Its own file because it is the one page across evaluations: it reads their kept figures, never
their results."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from playground.benchmarks import plots
from playground.benchmarks.access import public_evaluations
from playground.benchmarks.forms import EvaluationForm
from playground.benchmarks.models import Dataset, Evaluation
from playground.benchmarks.summary import keep_figures, summarise
from playground.lib.pagination import page_of

# Done evaluations whose figures were never kept (finished before they were, or made outside
# services.execute) are counted this many per leaderboard request, in one query.
FILL_PER_REQUEST = 100


# The boards: (the ``?dataset=`` key, data set, task, under a semantic rule, title). CRUXEval's
# two tasks are ranked apart: an output prediction's accuracy and an input prediction's are not
# one scale; nor is one under a changed rule (over the items it changes, issue 21), whose board
# is apart too (each row says its rule; its page pairs it with its standard twin).
BOARDS = [
    ("cruxeval", Dataset.CRUXEVAL, "output", False, "CRUXEval-O output prediction"),
    ("cruxeval-input", Dataset.CRUXEVAL, "input", False, "CRUXEval-I input prediction"),
    ("cruxeval-rules", Dataset.CRUXEVAL, "output", True,
     "CRUXEval-O under a changed rule (each over the items its rule changes)"),
    ("bbh", Dataset.BBH, "output", False, str(Dataset.BBH.label)),
    ("p3", Dataset.P3, "output", False, str(Dataset.P3.label)),
]  # fmt: skip


def _ranked(dataset: str, task: str, under_rule: bool) -> QuerySet[Evaluation]:
    """A data set's finished public evaluations of one task (under a rule, or not), best
    accuracy first (then more items, then the newest), by their kept figures: no result is
    read."""
    found = public_evaluations()
    found = found.exclude(rule="") if under_rule else found.filter(rule="")
    return found.filter(dataset=dataset, task=task, figures__isnull=False).order_by(
        KeyTransform("accuracy", "figures").desc(), KeyTransform("n", "figures").desc(), "-id"
    )


def leaderboard(request: HttpRequest) -> HttpResponse:
    """Finished evaluations by data set, best accuracy first, a page of each under a chart of
    accuracy by method and model (``?dataset=`` pages through one); the user's own below."""
    keep_figures(list(public_evaluations().filter(figures__isnull=True)[:FILL_PER_REQUEST]))
    chosen = request.GET.get("dataset", "")
    if chosen not in {key for key, *_ in BOARDS}:
        chosen = ""
    per_page = settings.PLAYGROUND_PAGE_SIZE
    boards: list[dict[str, Any]] = []
    for key, dataset, task, under_rule, name in BOARDS:
        if chosen and key != chosen:
            continue
        ranked = _ranked(dataset, task, under_rule)
        # One board pages with ?page=; on the page of every board, each shows its first page.
        page = page_of(request, ranked, per_page) if chosen else Paginator(ranked, per_page).page(1)
        if not chosen and not page.object_list:
            continue
        rows = [{"evaluation": evaluation, **summarise(evaluation)} for evaluation in page]
        entries = [
            plots.Entry(group=r["model"], series=r["method"], passed=r["passed"], n=r["n"],
                        link=r["evaluation"].get_absolute_url())
            for r in rows
        ]  # fmt: skip
        chart = plots.grouped_accuracy(entries, title=f"Accuracy by method and model, {name}")
        number = len(boards) + 1
        boards.append({"dataset": name, "key": key, "rows": rows, "page": page,
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
