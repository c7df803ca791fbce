"""Library browsing, program pages and the submit form."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Page
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from playground.lib import hiding, ratelimits
from playground.lib.hiding import Surface, Verdict
from playground.lib.htmx import HtmxHttpRequest, partial_for
from playground.lib.middleware import with_refusal
from playground.lib.pagination import page_of
from playground.lib.params import object_id
from playground.moderation.models import ProgramLock
from playground.programs.access import (
    anon_token,
    get_own_program,
    get_program_for_user,
    owns,
)
from playground.programs.forms import ProgramForm, raw_form_fields
from playground.programs.models import Dataset, Program, Puzzle, Task, TaskExample

# The library's tabs, in display order: (key, label, what it holds).
LIBRARY_TABS = [
    ("cruxeval", "CRUXEval", "800 short functions with an input and the expected output"),
    ("humaneval", "HumanEval", "164 problems with reference solutions and their tests"),
    ("p3", "P3 puzzles", "1,715 programming puzzles: find x so that sat(x) is true"),
    ("bbh", "BIG-Bench Hard", "27 reasoning tasks, 6,511 examples"),
    ("user", "Shared by users", "programs that users made public"),
]
_TAB_KEYS = {key for key, _, _ in LIBRARY_TABS}
_MAX_QUERY = 200


def _page(request: HttpRequest, qs: QuerySet, per_page: int | None = None) -> Page:
    return page_of(request, qs, per_page or settings.PLAYGROUND_PAGE_SIZE)


def library(request: HtmxHttpRequest) -> HttpResponse:
    """Browse and search the built-in data sets and public user programs."""
    tab = request.GET.get("dataset", "cruxeval")
    if tab not in _TAB_KEYS:
        tab = "cruxeval"
    q = request.GET.get("q", "").strip()[:_MAX_QUERY]
    module = request.GET.get("module", "").strip()[:100]
    context: dict[str, object] = {"tab": tab, "q": q, "tabs": LIBRARY_TABS, "module": module}

    if tab == "p3":
        puzzles = Puzzle.objects.all()
        if module:
            puzzles = puzzles.filter(module=module)
        if q:
            puzzles = puzzles.filter(
                Q(name__icontains=q) | Q(sat__icontains=q) | Q(sol_docstring__icontains=q)
            )
        context["modules"] = (
            Puzzle.objects.order_by("module").values_list("module", flat=True).distinct()
        )
        context["page"] = _page(request, puzzles)
    elif tab == "bbh":
        if q:
            examples = TaskExample.objects.select_related("task").filter(
                Q(input__icontains=q) | Q(target__iexact=q) | Q(task__name__icontains=q)
            )
            context["page"] = _page(request, examples)
            context["searching_examples"] = True
        else:
            # 27 tasks: one page, never 25 and a second page of 2.
            tasks = Task.objects.annotate(n_examples=Count("examples")).order_by("name")
            context["page"] = _page(request, tasks, per_page=1000)
    else:
        programs = Program.objects.filter(dataset=tab, is_public=True)
        if q:
            programs = programs.filter(
                Q(title__icontains=q) | Q(source__icontains=q) | Q(external_id__iexact=q)
            )
        context["page"] = _page(request, programs.select_related("owner"))
    return render(request, partial_for(request, "programs/library.html", "results"), context)


def _hidden_context(
    request: HttpRequest, *, source: str | None = None, puzzle_id: int | None = None
) -> dict[str, object]:
    """For a student of an open assignment with this program or puzzle: the results and the run
    form give way to ``hidden_message``; in exam mode the run form gives way to ``run_refusal``."""
    visibility = hiding.policy()
    hidden = visibility.hidden_for(request.user)
    results_hidden = (
        hidden.verdict(Surface.LIBRARY, source=source, puzzle_id=puzzle_id) is not Verdict.SHOW
    )
    refusal = visibility.run_start_refusal(
        request.user, source=source, puzzle_id=puzzle_id, hidden=hidden
    )
    return {
        "hidden_message": visibility.hidden_message if results_hidden else "",
        "run_refusal": refusal or "",
    }


def program_detail(request: HttpRequest, pk: int) -> HttpResponse:
    program = get_program_for_user(request, pk)
    context: dict[str, object] = {"program": program, "is_owner": owns(request, program)}
    context.update(_hidden_context(request, source=program.source))
    return render(request, "programs/program_detail.html", context)


@require_http_methods(["GET", "POST"])
def program_new(request: HtmxHttpRequest) -> HttpResponse:
    """Submit a program: the form re-renders with inline errors and keeps what was typed."""
    if request.method == "POST":
        form = ProgramForm(request.POST, request.FILES, raw_fields=raw_form_fields(request))
        refused = None
        if form.is_valid():
            refused = ratelimits.exceeded(request, "programs")
        if refused is not None:
            # The form comes back with the refusal and the program (an uploaded file's text
            # in the box, since a file input cannot be filled in again).
            form.data = request.POST.copy()
            form.data["source"] = form.cleaned_data["source"]
            form.add_error(None, refused.message)
        elif form.is_valid():
            program: Program = form.save(commit=False)
            program.dataset = Dataset.USER
            if request.user.is_authenticated:
                program.owner = request.user
            else:
                program.anon_owner = anon_token(request, create=True) or ""
            program.save()
            messages.success(request, "Program saved.")
            if request.htmx:
                return HttpResponseClientRedirect(program.get_absolute_url())
            return redirect(program)
        template = "programs/program_form.html"
        if request.htmx:
            template += "#form"
        page = render(request, template, {"form": form})
        return with_refusal(page, refused) if refused is not None else page

    initial: dict[str, object] = {}
    copy_of = object_id(request.GET.get("copy"))
    if copy_of is not None:
        original = get_program_for_user(request, copy_of)
        initial = {
            "title": f"Copy of {original.display_title}"[:200],
            "source": original.source,
            "call": original.call,
            "stdin": original.stdin,
        }
    return render(request, "programs/program_form.html", {"form": ProgramForm(initial=initial)})


def my_programs(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        mine = Program.objects.filter(owner=request.user)
    else:
        token = anon_token(request)
        mine = (
            Program.objects.filter(owner__isnull=True, anon_owner=token)
            if token
            else Program.objects.none()
        )
    page = _page(request, mine.order_by("-id"))
    return render(request, "programs/my_programs.html", {"page": page})


@require_POST
def program_visibility(request: HttpRequest, pk: int) -> HttpResponse:
    program = get_own_program(request, pk)
    publish = request.POST.get("is_public") == "1"
    if publish and not program.is_public and ProgramLock.objects.filter(program=program).exists():
        messages.error(
            request, "Staff unpublished this program: it cannot be made public until they allow it."
        )
        return redirect(program)
    program.is_public = publish
    program.save(update_fields=["is_public", "updated_at"])
    messages.success(
        request, "The program is now " + ("public." if program.is_public else "private.")
    )
    return redirect(program)


@require_POST
def program_delete(request: HttpRequest, pk: int) -> HttpResponse:
    program = get_own_program(request, pk)
    program.delete()
    messages.success(request, f"Deleted “{program.display_title}”.")
    return redirect("programs:mine")


def puzzle_detail(request: HttpRequest, name: str) -> HttpResponse:
    puzzle = get_object_or_404(Puzzle, name=name)
    siblings = Puzzle.objects.filter(family=puzzle.family).exclude(pk=puzzle.pk).only("name")[:20]
    context: dict[str, object] = {"puzzle": puzzle, "siblings": siblings}
    context.update(_hidden_context(request, puzzle_id=puzzle.pk))
    return render(request, "programs/puzzle_detail.html", context)


def task_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    task = get_object_or_404(Task, name=name)
    q = request.GET.get("q", "").strip()[:_MAX_QUERY]
    examples = task.examples.all()
    if q:
        examples = examples.filter(Q(input__icontains=q) | Q(target__iexact=q))
    context = {
        "task": task,
        "q": q,
        "page": _page(request, examples),
        "total": task.examples.count(),
    }
    return render(request, partial_for(request, "programs/task_detail.html", "results"), context)


def task_example(request: HttpRequest, name: str, index: int) -> HttpResponse:
    example = get_object_or_404(
        TaskExample.objects.select_related("task"), task__name=name, index=index
    )
    neighbours = {
        "previous": TaskExample.objects.filter(task=example.task, index=index - 1).first(),
        "next": TaskExample.objects.filter(task=example.task, index=index + 1).first(),
    }
    context = {"example": example, **neighbours, **_hidden_context(request)}
    return render(request, "programs/task_example.html", context)
