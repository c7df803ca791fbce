"""The compare page: two evaluations of one data set item by item (first samples), which items
one got right and the other wrong, and McNemar's exact test of the difference.

Its own file because it is the one page over two evaluations, with its own pairing of results."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.stats import mcnemar
from playground.benchmarks.summary import APART, NO_MODEL, NO_VALUE
from playground.benchmarks.views.common import evaluation_or_404, hidden_items
from playground.lib.params import object_id

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
    a, b = evaluation_or_404(request, a_pk), evaluation_or_404(request, b_pk)
    if a.pk == b.pk:
        return _refuse(request, "Choose two different evaluations to compare.")
    if a.dataset != b.dataset or a.task != b.task:
        return _refuse(
            request,
            f"{a} is over {a.benchmark} and {b} over {b.benchmark}: only evaluations over the "
            "same data set and task can be compared item by item.",
        )
    first_a = _first_samples(a, hidden_items(request, a))
    first_b = _first_samples(b, hidden_items(request, b))
    both = [(key, ra, first_b[key]) for key, ra in first_a.items() if key in first_b]
    # An item that one side ran without the model says nothing about that model, nor one whose
    # program returned no value under that side's rule: left out of the paired test, counted.
    pairs = [p for p in both if not {p[1].score_status, p[2].score_status} & set(APART)]
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
            "no_value": sum(
                1 for _, ra, rb in both if NO_VALUE in (ra.score_status, rb.score_status)
            ),
            "only_in_a": [r for key, r in first_a.items() if key not in first_b],
            "only_in_b": [r for key, r in first_b.items() if key not in first_a],
        },
    )
