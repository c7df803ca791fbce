"""An evaluation's items ranked by the model's surprise along their real traces (issue 23), and
asking for its runs to be scored (``runs/surprise.py``: one task each on the llm queue).

Two rankings, both over the runs already scored: ``surprise-mean``, the mean surprise per token
of the whole trace (comparable between short and long traces), and ``surprise-max``, the
surprise of the trace's most surprising step (where the model's picture broke most). Items not
scored (or whose engine cannot be) come last, in their own order."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from playground.benchmarks.models import Evaluation, Result
from playground.lib import ratelimits
from playground.lib.middleware import too_many
from playground.runs import surprise
from playground.runs.models import Run, RunSurprise

SORTS = {
    "surprise-mean": ("surprise_mean", "mean surprise per token (nats), highest first"),
    "surprise-max": ("surprise_max", "surprise of the most surprising step (nats), highest first"),
}


def rank(
    request: HttpRequest, evaluation: Evaluation, rows: QuerySet[Result]
) -> tuple[QuerySet[Result], dict[str, Any]]:
    """The item table's rows with each run's surprise (``surprise_state``, ``surprise_mean``,
    ``surprise_max``), ordered as ``?sort=`` asks; and what the page shows of it: how many runs
    are scored, the sort in force, whether the requester may ask for the rest."""
    rows = rows.annotate(
        surprise_state=F("run__surprise__state"),
        surprise_mean=F("run__surprise__mean"),
        surprise_max=F("run__surprise__max_step"),
    )
    sort = request.GET.get("sort", "")
    if sort in SORTS:
        field = SORTS[sort][0]
        rows = rows.order_by(F(field).desc(nulls_last=True), "index", "sample")
    counts = RunSurprise.objects.filter(run_id__in=_runs(evaluation)).aggregate(
        scored=Count("pk", filter=Q(state=RunSurprise.State.DONE)),
        pending=Count("pk", filter=Q(state=RunSurprise.State.PENDING)),
        unsupported=Count("pk", filter=Q(state=RunSurprise.State.UNSUPPORTED)),
    )
    user = request.user
    mine = user.is_authenticated and (evaluation.owner_id == user.pk or user.is_staff)
    return rows, {
        **counts,
        "sort": sort if sort in SORTS else "",
        "sort_words": SORTS[sort][1] if sort in SORTS else "",
        "shown": any(counts.values()),
        "may_score": mine and evaluation.is_finished and _unscored(evaluation).exists(),
        "cap": ratelimits.cap("surprise_runs.user"),
    }


def _runs(evaluation: Evaluation) -> QuerySet[Result, Any]:
    return Result.objects.filter(evaluation=evaluation, run__isnull=False).values("run_id")


def _unscored(evaluation: Evaluation) -> QuerySet[Run]:
    """The evaluation's runs that can be scored and are not (or failed): of programs with a
    call and a model, finished."""
    return (
        Run.objects.filter(pk__in=_runs(evaluation), status__in=Run.FINISHED, program__isnull=False)
        .exclude(method="real")
        .exclude(call="")
        .exclude(model="")
        .filter(Q(surprise__isnull=True) | Q(surprise__state=RunSurprise.State.FAILED))
    )


@login_required
@require_POST
def score(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the evaluation's runs not scored yet to be scored (at most ``surprise_runs.user``,
    in the items' order), one task each on the llm queue; the owner or staff only."""
    evaluation = Evaluation.objects.filter(pk=pk).first()
    if evaluation is None or not (evaluation.owner_id == request.user.pk or request.user.is_staff):
        raise Http404("No such evaluation of yours.")
    if not evaluation.is_finished:
        messages.error(request, "Score the surprise of its runs once the evaluation has finished.")
        return redirect(evaluation)
    if not request.user.is_staff:
        ratelimits.hit(request, "surprises")  # over: the site's 429 page (the middleware)
    if (spent := ratelimits.exceeded(request, "model_tokens", count=False)) is not None:
        return too_many(request, spent)
    cap = ratelimits.cap("surprise_runs.user")
    waiting = set(_unscored(evaluation).values_list("pk", flat=True))
    chosen = [pk for pk in _item_order(evaluation) if pk in waiting][:cap]
    # Only what asking needs: a run's source, text and details stay in the database.
    runs = Run.objects.filter(pk__in=chosen).only("pk", "model").order_by("pk")
    key = ratelimits.whose(request)
    sent = unsupported = 0
    for run in runs:
        row, queued = surprise.request(run, budget_key=key)
        sent += queued
        unsupported += row.state == RunSurprise.State.UNSUPPORTED
    words = f"{sent} run{'s' if sent != 1 else ''} sent to be scored"
    if unsupported:
        words += f"; {unsupported} not supported by their model's engine"
    left = _unscored(evaluation).count()
    if left:
        words += f"; {left} more not scored yet (at most {cap} at a time)"
    messages.success(request, words + ". The ranking grows as they finish (reload the page).")
    return redirect(evaluation.get_absolute_url() + "#results")


def _item_order(evaluation: Evaluation) -> list[int]:
    return list(
        Result.objects.filter(evaluation=evaluation, run__isnull=False)
        .order_by("index", "sample")
        .values_list("run_id", flat=True)
    )
