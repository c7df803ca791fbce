"""Starting an evaluation (its form, the hiding policy's refusals, the rate limits), cancelling
one, and asking for one to be scored again.

Its own file because these are the views that change an evaluation rather than show it;
all are for signed-in owners only and hand the work to ``benchmarks/services.py``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from playground.benchmarks import imports, paired, rescoring, services
from playground.benchmarks.access import listable_programs, visible_evaluations
from playground.benchmarks.forms import EvaluationForm, ImportForm
from playground.benchmarks.models import Dataset, Evaluation
from playground.emulation.registry import max_tokens_for
from playground.lib import hiding, ratelimits
from playground.lib.hiding import Surface
from playground.lib.middleware import with_refusal


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
    models = form.models
    if form.limited:
        # Refused while the owner's model tokens are spent (its runs count against them), then
        # counted only once the evaluations would be made (one each): fixing a typo costs
        # nothing.
        over = ratelimits.exceeded(request, "model_tokens", count=False)
        for _ in range(len(models) * form.per_model):
            over = over or ratelimits.exceeded(request, "evaluations")
        if over is not None:
            form.add_error(None, over.message)
            return with_refusal(_start_page(request, form), over)
    samples = data["samples"]
    made = []
    try:
        # One evaluation per model, all or none; each runs on the batch workers beside the
        # others, within its own model's limit of streams at once.
        with transaction.atomic():
            for model in models:
                made.append(
                    services.create_evaluation(
                        dataset=data["dataset"], method=data["method"], model=model,
                        subset=form.subset, owner=request.user, limit=data["limit"],
                        sample_randomly=data["random"], samples=samples, seed=data["seed"],
                        temperature=0.8 if samples > 1 else 0.0,
                        concurrency=data["concurrency"],
                        max_tokens=max_tokens_for(data["method"]), title=data["title"],
                        max_results=form.most_results, rule=data["rule"],
                    )
                )  # fmt: skip
                if form.per_model == 2:  # under the rule, and its standard twin to pair with
                    made.append(
                        services.start_standard_twin(
                            made[-1], owner=request.user, max_results=form.most_results
                        )
                    )
    except services.EvaluationError as exc:
        form.add_error(None, str(exc))
        return _start_page(request, form)
    if len(models) == 1:
        if len(made) == 2:
            messages.success(
                request,
                f"Started it under {made[0].rule} and its standard twin #{made[1].pk}: the "
                "paired comparison below fills in as both finish.",
            )
        return redirect(made[0])
    messages.success(
        request,
        f"Started {len(made)} evaluations, one per model"
        + (", each under the rule and under Python's own semantics" if form.per_model == 2 else "")
        + ": "
        + ", ".join(f"#{e.pk} ({e.model}{f', {e.rule}' if e.rule else ''})" for e in made)
        + ". They run side by side; each fills in below as its items finish.",
    )
    return redirect(reverse("benchmarks:leaderboard") + "#mine")


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = Evaluation.objects.filter(pk=pk, owner_id=request.user.pk).first()
    if evaluation is None:
        raise Http404("No such evaluation of yours.")
    services.cancel(evaluation)
    return redirect(evaluation)


@login_required
@require_POST
def start_twin(request: HttpRequest, pk: int) -> HttpResponse:
    """Start the standard twin of one's own evaluation under a rule (the same evaluation under
    Python's own semantics), to pair with: counted and capped as any evaluation started here."""
    evaluation = Evaluation.objects.filter(pk=pk, owner_id=request.user.pk).first()
    if evaluation is None:
        raise Http404("No such evaluation of yours.")
    refusal = hiding.policy().refusal(request.user, Surface.START_EVALUATION)
    if refusal is not None:
        return _refused(request, refusal)
    twin = paired.standard_twin(evaluation, visible_evaluations(request))
    if twin is not None:
        messages.info(request, f"Its standard twin is already #{twin.pk}: paired below.")
        return redirect(evaluation)
    limited = not request.user.is_staff
    if limited:  # over either: the site's 429 page (the middleware)
        ratelimits.hit(request, "model_tokens", count=False)
        ratelimits.hit(request, "evaluations")
    try:
        made = services.start_standard_twin(
            evaluation, owner=request.user,
            max_results=ratelimits.cap("evaluation_results.user") if limited else None,
        )  # fmt: skip
    except services.EvaluationError as exc:
        messages.error(request, str(exc))
        return redirect(evaluation)
    messages.success(
        request, f"Started its standard twin, #{made.pk}: the paired figures fill in below."
    )
    return redirect(evaluation)


@login_required
@require_POST
def rescore(request: HttpRequest, pk: int) -> HttpResponse:
    """Score a finished evaluation of one's own again under the current rules, keeping its
    generations: queued on the batch worker (thousands of sandbox checks are no request's
    work); the page shows the new figures once it is done."""
    evaluation = Evaluation.objects.filter(pk=pk).first()
    if evaluation is None or not (evaluation.owner_id == request.user.pk or request.user.is_staff):
        raise Http404("No such evaluation of yours.")
    why = rescoring.refusal(evaluation)
    if why is not None:
        messages.error(request, why)
        return redirect(evaluation)
    if not request.user.is_staff:
        ratelimits.hit(request, "rescores")  # over: the site's 429 page (the middleware)
    services.queue_rescore(evaluation)
    messages.success(
        request,
        f"Scoring again under the current rules ({rescoring.rules_for(evaluation)}): the "
        "figures below change when it is done (reload the page).",
    )
    return redirect(evaluation)


@login_required
@require_http_methods(["GET", "POST"])
def import_outputs(request: HttpRequest) -> HttpResponse:
    """Upload outputs to score with the benchmark's own rules (GET: the form). The file is
    read and checked here (nothing runs); the evaluation is made at once and its checks are
    queued on the batch worker, whose progress its page shows."""
    hidden = hiding.policy().hidden_for(request.user)
    refusal = hiding.policy().refusal(request.user, Surface.START_EVALUATION, hidden=hidden)
    if refusal is not None:
        return _refused(request, refusal)
    if request.method == "GET":
        return render(request, "benchmarks/import.html", {"form": ImportForm(owner=request.user)})
    form = ImportForm(request.POST, request.FILES, owner=request.user)
    if form.is_valid():
        if form.limited:
            over = ratelimits.exceeded(request, "imports")
            if over is not None:
                form.add_error(None, over.message)
                page = render(request, "benchmarks/import.html", {"form": form})
                return with_refusal(page, over)
        try:
            evaluation = services.import_upload(form.cleaned_data, owner=request.user)
        except imports.ImportRefused as exc:
            form.add_error("file", str(exc))
        else:
            messages.success(
                request, "Imported: the outputs are being scored with the benchmark's own rules."
            )
            return redirect(evaluation)
    return render(request, "benchmarks/import.html", {"form": form}, status=400)
