"""Starting a run, its page (the trace viewer), its trace as JSON, and the run history."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from playground.emulation.probes import KINDS
from playground.lib import hiding, ratelimits
from playground.lib.htmx import HtmxHttpRequest
from playground.lib.middleware import too_many
from playground.lib.pagination import page_of
from playground.lib.params import whole_number
from playground.programs.access import anon_token, get_program_for_user
from playground.programs.models import Puzzle, TaskExample
from playground.runs.access import get_run_for_user, runs_of
from playground.runs.limits import ADJUSTABLE
from playground.runs.models import Run, Trace
from playground.runs.pages import STATUS_TEXT, finished_page_loader, progress_context, run_context
from playground.runs.requests import Kind, Refusal, resolve_run_request
from playground.runs.services import cancel_run, start_run


def _start(request: HtmxHttpRequest, kind: Kind, back: Any, **item: Any) -> HttpResponse:
    program, puzzle = item.get("program"), item.get("puzzle")
    refusal = hiding.policy().run_start_refusal(
        request.user,
        source=program.source if program is not None else None,
        puzzle_id=puzzle.pk if puzzle is not None else None,
    )
    if refusal is not None:
        return hiding.policy().page(request, refusal)
    asked = resolve_run_request(
        request,
        kind=kind,
        # The form offers this site's methods and models; another method (a stale form) gets
        # the kind's default, another model is no page of this site.
        method=request.POST.get("method"),
        unknown_method_is_default=True,
        model=request.POST.get("model", ""),
        max_tokens=whole_number(request.POST.get("max_tokens", "")),
        limits={name: whole_number(request.POST.get(name, "")) for name in ADJUSTABLE},
        rule=request.POST.get("rule", ""),
        source=program.source if program is not None else None,
        probes=_posted_probes(request),
        seed=_posted_number(request, "seed"),
    )
    if isinstance(asked, Refusal):
        if asked.limit is not None:
            return too_many(request, asked.limit)
        if asked.reason in ("rule", "probes"):  # a stale or edited form: say what was wrong
            return _bad_request(request, asked.message)
        raise Http404("No such model on this site.")
    run = start_run(
        **item,
        user=request.user,
        anon_token=anon_token(request, create=True),
        budget_key=ratelimits.whose(request),
        method=asked.method,
        model=asked.model,
        limits=asked.limits,
        max_tokens=asked.max_tokens,
        rule=asked.rule,
        probes=asked.probes,
        seed=asked.seed,
    )
    if request.htmx:
        return HttpResponseClientRedirect(run.get_absolute_url())
    return redirect(run)


def _posted_number(request: HttpRequest, name: str) -> Any:
    """A whole number the form sent; None when the field is blank; the text itself when it is
    not a whole number (so that the check refuses it, saying why, rather than dropping it)."""
    raw = request.POST.get(name, "").strip()
    if not raw:
        return None
    number = whole_number(raw)
    return number if number is not None else raw[:20]


def _posted_probes(request: HttpRequest) -> dict[str, object]:
    """The probe counts the form sent (``probe_<kind>``), the kinds left blank left out."""
    counts = {}
    for kind in KINDS:
        value = _posted_number(request, f"probe_{kind}")
        if value is not None:
            counts[kind] = value
    return counts


def _bad_request(request: HtmxHttpRequest, message: str) -> HttpResponse:
    """A 400 page that says what was wrong with the form (the whole page, even for htmx)."""
    response = render(request, "400.html", {"message": message}, status=400)
    if request.htmx:
        response["HX-Retarget"] = "body"
        response["HX-Reswap"] = "innerHTML"
    return response


@require_POST
def run_program(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Run a program for real in the sandbox and, if asked, have a model emulate it; the run
    page follows both."""
    program = get_program_for_user(request, pk)
    return _start(request, "program", program, program=program)


@require_POST
def run_puzzle(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """Ask a model to solve a P3 puzzle; the sandbox checks its answers."""
    puzzle = get_object_or_404(Puzzle, name=name)
    return _start(request, "puzzle", puzzle, puzzle=puzzle)


@require_POST
def run_task_example(request: HtmxHttpRequest, name: str, index: int) -> HttpResponse:
    """Ask a model to answer one instance of a reasoning task."""
    example = get_object_or_404(TaskExample, task__name=name, index=index)
    return _start(request, "task", example, task_example=example)


def _hidden(request: HttpRequest, run: Run) -> HttpResponse | None:
    """The refusal page when this run's results are hidden from the requester (a student of an
    open assignment with its program or puzzle)."""
    visibility = hiding.policy()
    if visibility.hidden_for(request.user).run(run):
        return visibility.page(request, visibility.hidden_message)
    return None


@require_safe
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request, pk)
    if (refused := _hidden(request, run)) is not None:
        return refused
    context = run_context(run, step_standard=request.GET.get("trace") == "standard")
    context["share_links"] = run.share_links.filter(revoked_at__isnull=True)
    return render(request, "runs/run_detail.html", context)


# A run row without what only its page shows (the model's text, the comparison, details).
STATUS_FIELDS = ("id", "status", "source", "program_id", "puzzle_id", "task_example_id", "rule")
# ...and what the list of runs shows of each: when, and the title and link of what was run.
LIST_FIELDS = (
    "created_at", "program__id", "program__title", "puzzle__id", "puzzle__name",
    "task_example__id", "task_example__index", "task_example__task__id", "task_example__task__name",
)  # fmt: skip


@require_safe
def run_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The progress fragment the run page polls; for a finished run, what loads the finished page
    in place (``finished_page_loader``)."""
    try:
        run = runs_of(request).only(*STATUS_FIELDS).get(pk=pk)
    except Run.DoesNotExist:
        raise Http404("No such run, or it is not yours.") from None
    if (refused := _hidden(request, run)) is not None:
        return refused
    if run.is_finished and request.htmx:
        return HttpResponse(finished_page_loader(run.get_absolute_url()))
    return render(request, "runs/run_detail.html#progress", progress_context(run))


@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request, pk)
    cancel_run(run)
    return redirect(run)


@require_safe
def run_trace_json(request: HttpRequest, pk: int) -> JsonResponse:
    """The run, its real trace and the model's emulation, as JSON (traces in the current schema,
    however old the stored ones)."""
    run = get_run_for_user(request, pk)
    visibility = hiding.policy()
    if visibility.hidden_for(request.user).run(run):
        return JsonResponse({"detail": visibility.hidden_message}, status=403)
    return JsonResponse(run.as_dict(), json_dumps_params={"ensure_ascii": False})


@require_safe
def my_runs(request: HttpRequest) -> HttpResponse:
    # Only what the list shows: never a trace's data, the model's text or a program's source
    # (the run's own source stays: hiding is decided on it).
    runs = (
        runs_of(request)
        .select_related("program", "puzzle", "task_example__task")
        .only(*STATUS_FIELDS, *LIST_FIELDS)
        # The real and the model's traces; a rule run's standard one is no result of its own.
        .prefetch_related(
            Prefetch(
                "traces",
                queryset=Trace.objects.exclude(kind=Trace.Kind.STANDARD).only(
                    "id", "run_id", "status"
                ),
            )
        )
    )
    page = page_of(request, runs, settings.PLAYGROUND_PAGE_SIZE)
    visibility = hiding.policy()
    hidden = visibility.hidden_for(request.user)
    context = {
        "page": page,
        "status_text": STATUS_TEXT,
        # Rows of runs whose results are hidden show neither status nor result.
        "hidden_runs": {run.pk for run in page if hidden.run(run)},
        "hidden_message": visibility.hidden_message,
    }
    return render(request, "runs/my_runs.html", context)
