"""The run page's surprise: asking for it (POST, the owner only, counted) and its part of the
page, which a pending one polls (GET)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from playground.lib import hiding, ratelimits
from playground.lib.htmx import HtmxHttpRequest
from playground.lib.middleware import too_many
from playground.runs import surprise
from playground.runs.access import get_run_for_user
from playground.runs.models import Run, RunSurprise
from playground.runs.pages import own_urls, run_context


def _part(request: HtmxHttpRequest, run: Run, status: int = 200) -> HttpResponse:
    context = run_context(run, own_urls(run))
    if context["surprise"] is None:  # nothing to show of this run (no model, no call)
        return HttpResponse("", status=status)
    return render(request, "runs/_surprise.html", context, status=status)


def _bad(request: HtmxHttpRequest, message: str) -> HttpResponse:
    response = render(request, "400.html", {"message": message}, status=400)
    if request.htmx:
        response["HX-Retarget"] = "body"
        response["HX-Reswap"] = "innerHTML"
    return response


@require_http_methods(["GET", "HEAD", "POST"])
def run_surprise(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: the surprise part of the run page (polled while it is scored). POST: score the
    run's real trace under its model, once; asking again for a scored run changes nothing."""
    run = get_run_for_user(request, pk)
    visibility = hiding.policy()
    if visibility.hidden_for(request.user).run(run):
        return visibility.page(request, visibility.hidden_message)
    if request.method == "POST":
        if why := surprise.why_not(run):
            return _bad(request, why)
        if not run.is_finished:
            return _bad(request, "The run has not finished: score its surprise once it has.")
        row = RunSurprise.objects.filter(run=run).first()
        again = row is None or row.state == RunSurprise.State.FAILED or surprise.stale(row)
        if again:
            if not request.user.is_staff:
                ratelimits.hit(request, "surprises")  # over: the site's 429 page
            if (spent := ratelimits.exceeded(request, "model_tokens", count=False)) is not None:
                return too_many(request, spent)
            surprise.request(run, budget_key=ratelimits.whose(request))
        if not request.htmx:
            return redirect(run.get_absolute_url() + "#surprise")
    return _part(request, run)
