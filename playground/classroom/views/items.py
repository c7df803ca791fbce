"""Staff pages of items: the item form (new, edit) with its answer-key preview, deleting an item,
and the form's live library search.

Its own file because the item form, its refusal rules and the search that fills it belong
together and make a topic of their own. Every view starts from ``access`` (not a member: 404; a
student: 403); changes are POST only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from playground.classroom import authoring, grading, keys, regrading, variants, visibility
from playground.classroom.access import get_assignment, get_item
from playground.classroom.errors import ClassroomError
from playground.classroom.item_form import ItemForm, checkpoint_rows, library_programs
from playground.classroom.models import Assignment, Item, Membership, Mode, Role, Variant
from playground.classroom.visibility import Surface, hidden_for
from playground.emulation.judging import headline
from playground.emulation.registry import REGISTRY
from playground.lib import ratelimits
from playground.lib.middleware import with_refusal
from playground.programs.models import Program, Puzzle
from playground.runs.models import Trace
from playground.sandbox.inside.semantics import RULES, offered

_MAX_QUERY = 200
LIBRARY_RESULTS = 20


def _key_preview(item: Item) -> dict[str, Any] | None:
    """What the answer key says, for the teacher to check the item before students see it."""
    run = item.key_run
    if item.mode == Mode.PUZZLE or run is None or run.status != run.Status.DONE:
        return None
    real = keys.trace_data(run.real_trace)
    error = real.get("error") or {}
    preview: dict[str, Any] = {
        "status": real.get("status"),
        "result": real.get("result") if real.get("status") == "ok" else None,
        "error": error.get("type"),
    }
    if item.mode == Mode.TRACE:
        preview["checkpoints"] = grading.checkpoint_values(real.get("steps", []), item.checkpoints)
    if item.mode == Mode.DIVERGENCE:
        # The same rule the students are graded by (grading.first_mistake).
        mistake, steps = keys.divergence_key(run)
        preview["mistake"] = mistake
        preview["model_steps"] = len(steps)
    if item.mode == Mode.PROBES:
        preview["probes"] = keys.questions(item)
    if item.mode == Mode.RULE:
        standard = keys.trace_data(run.standard_trace)
        preview["rule_text"] = run.rule_text
        preview["standard_result"] = (
            standard.get("result") if standard.get("status") == "ok" else None
        )
    if item.mode == Mode.BEAT_MODEL:
        preview["prediction"] = run.prediction
        preview["verdict"] = headline(run.verdict)
    return preview


def _library_results(request: HttpRequest, mode: str, q: str, source: str) -> dict[str, Any]:
    """The programs (or, for a puzzle item, the P3 puzzles) matching the query; the same filters
    as the library page (``programs.views.library``)."""
    if mode == Mode.PUZZLE:
        puzzles = Puzzle.objects.all()
        if q:
            puzzles = puzzles.filter(
                Q(name__icontains=q) | Q(sat__icontains=q) | Q(sol_docstring__icontains=q)
            )
        return {"kind": "puzzle", "results": puzzles[:LIBRARY_RESULTS], "count": puzzles.count()}
    programs = library_programs(request.user)
    if source in ("cruxeval", "humaneval"):
        programs = programs.filter(dataset=source, is_public=True)
    elif source == "mine":
        programs = programs.filter(owner=request.user).order_by("-id")
    if q:
        programs = programs.filter(
            Q(title__icontains=q) | Q(source__icontains=q) | Q(external_id__iexact=q)
        )
    return {"kind": "program", "results": programs[:LIBRARY_RESULTS], "count": programs.count()}


def _search_params(request: HttpRequest) -> dict[str, str]:
    mode = request.GET.get("mode", Mode.OUTPUT)
    source = request.GET.get("library", "all")
    return {
        "mode": mode if mode in Mode.values else Mode.OUTPUT,
        "q": request.GET.get("q", "").strip()[:_MAX_QUERY],
        "source": source if source in ("all", "cruxeval", "humaneval", "mine") else "all",
    }


def _item_page(
    request: HttpRequest, assignment: Assignment, member: Membership, item: Item | None
) -> HttpResponse:
    template = "classroom/staff/item_form.html"
    back = reverse("classroom:assignment_edit", args=[assignment.course_id, assignment.pk])
    data = request.POST if request.method == "POST" else None
    hidden = hidden_for(request.user)
    if data is not None and "prepare" in data and item is not None:
        refusal = _item_refusal(request, hidden, item.program, item.puzzle_id)
        if refusal is not None:
            return visibility.hidden_page(request, refusal)
        ratelimits.hit(request, "item_prepares.user")  # a real run and a model run
        for _ in range(variants.failed(item).count() if variants.is_varied(item) else 0):
            ratelimits.hit(request, "variant_runs.user")  # a varied item's failed candidates
        authoring.prepare_again(item, by=request.user)
        messages.success(request, "The answer key is being prepared again.")
        return redirect("classroom:item_edit", assignment.course_id, assignment.pk, item.pk)
    if data is not None and "regrade" in data and item is not None:
        refusal = _item_refusal(request, hidden, item.program, item.puzzle_id)
        if refusal is not None:
            return visibility.hidden_page(request, refusal)
        ratelimits.hit(request, "item_prepares.user")  # every answer graded again
        try:
            done = regrading.regrade(item, by=request.user)
        except ClassroomError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, done.message)
        return redirect("classroom:item_edit", assignment.course_id, assignment.pk, item.pk)
    more = data is not None and "more_rows" in data
    rows = checkpoint_rows(data, item, blank=6 if more else 3)

    def may_run(program: Any, source: str) -> bool:
        return _item_refusal(request, hidden, program, None, source=source) is None

    # Saving is counted before the form is checked, since checking checkpoints may already run
    # the program in the sandbox; a new item is also a row (items.user). Refused, the form
    # comes back unsaved and unchecked, as typed.
    limited: ratelimits.Refused | None = None
    if data is not None and not more:
        if item is None:
            limited = ratelimits.exceeded(request, "items.user")
        limited = limited or ratelimits.exceeded(request, "item_prepares.user")
    if more or limited:  # the form again, unsaved (more rows in the checkpoint editor)
        form = ItemForm(initial=data.dict(), user=request.user, item=item, rows=rows)  # type: ignore[union-attr]
    else:
        form = ItemForm(data, user=request.user, item=item, rows=rows, may_run=may_run)
    refusal = None
    if data is not None and not more and form.is_valid() and form.data_out is not None:
        out = form.data_out
        source = out.new_source if out.new_source is not None else None
        refusal = _item_refusal(
            request, hidden, out.program, out.puzzle.pk if out.puzzle else None, source=source
        )
        if refusal is not None:
            form.add_error(None, refusal)
        elif (runs := _variant_runs(item, out)) and (limited := _count_variant_runs(request, runs)):
            form.add_error(None, limited.message)
    if data is not None and not more and form.is_valid() and form.data_out is not None:
        graded = item.submissions.count() if item is not None else 0
        asked_before = dict(item.probe_config) if item is not None else {}
        saved, prepared = authoring.save_item(
            assignment=assignment, item=item, data=form.data_out, by=request.user
        )
        note = (
            " Its answer key is being prepared." if prepared and saved.mode != Mode.PUZZLE else ""
        )
        messages.success(request, f"Item “{saved}” saved.{note}")
        if form.check_note:
            messages.warning(
                request,
                f"Its checkpoints could not be checked against a real run yet ({form.check_note})."
                " Its answer key checks them: the item list shows any problem, and students "
                "cannot answer the item until its checkpoints can be reached.",
            )
        # New probe counts or seed: the same key, other questions.
        requestioned = saved.mode == Mode.PROBES and saved.probe_config != asked_before
        if (prepared or requestioned) and graded:
            messages.warning(
                request,
                "1 submission was graded against the old key and keeps its grade: regrade "
                "it on this item's page once the new key is ready, or override it."
                if graded == 1
                else f"{graded} submissions were graded against the old key and keep their "
                "grades: regrade them on this item's page once the new key is ready, or "
                "override them.",
            )
        return redirect(back + "#items")
    preview_refused = None
    if item is not None:
        preview_refused = visibility.refusal(
            request.user,
            Surface.PREVIEW,
            source=item.program.source if item.program is not None else None,
            puzzle_id=item.puzzle_id,
            hidden=hidden,
        )
    mode = str(form["mode"].value() or Mode.OUTPUT)
    params = {"mode": mode, "q": "", "source": "all"}
    picked = form.picked()
    # The rules listed: those that change the picked program, else the whole catalogue.
    rules = offered(picked.source) if isinstance(picked, Program) else list(RULES.values())
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "item": item,
        "form": form,
        "rows": rows,
        "picked": picked,
        "rules": rules,
        "step_methods": [name for name, spec in REGISTRY.items() if spec.compares_steps],
        "pick_value": form["pick"].value() or "",
        "search": params,
        "preview": _key_preview(item) if item is not None and not preview_refused else None,
        "preview_refusal": preview_refused,
        "modes": Mode,
        "limited": limited.message if limited else "",
        "graded": item.submissions.filter(status="graded").count() if item is not None else 0,
        "regrade_refusal": regrading.refusal(item) if item is not None else "",
        **(_variant_context(item) if item is not None and variants.is_varied(item) else {}),
        **_library_results(request, mode, "", "all"),
    }
    page = render(request, template, context)
    return with_refusal(page, limited) if limited else page


def _variant_runs(item: Item | None, out: Any) -> int:
    """The sandbox runs a save would start for the item's variants: one per candidate, when
    the generator, the program or its call is new (0 when it would start none)."""
    if not out.variation or out.mode not in variants.VARIED_MODES:
        return 0
    program_id = out.program.pk if out.program is not None else None
    if (
        item is not None
        and item.variation == out.variation
        and out.new_source is None
        and item.program_id == program_id
    ):
        return 0
    call = out.new_call if out.new_source is not None else (out.program.call if out.program else "")
    return variants.needed(out.variation, call)


def _count_variant_runs(request: HttpRequest, runs: int) -> ratelimits.Refused | None:
    """Count the candidate runs against ``variant_runs.user``; refused: nothing is saved."""
    for _ in range(runs):
        refused = ratelimits.exceeded(request, "variant_runs.user")
        if refused is not None:
            return refused
    return None


def _variant_context(item: Item) -> dict[str, Any]:
    """The variants panel of the item's page: where they stand and each candidate, with the
    value of the valid ones (the staff's answer key)."""
    rows = list(Variant.objects.filter(item=item, spec=variants.spec_key(item)).order_by("number"))
    results = dict(
        Trace.objects.filter(
            run_id__in=[v.run_id for v in rows if v.status == Variant.Status.VALID],
            kind=Trace.Kind.REAL,
        ).values_list("run_id", "data__result")
    )
    for row in rows:
        row.result = results.get(row.run_id or 0)  # type: ignore[attr-defined]
    return {"variant_progress": variants.progress(item), "variant_rows": rows}


def _item_refusal(
    request: HttpRequest,
    hidden: Any,
    program: Any,
    puzzle_id: int | None,
    *,
    source: str | None = None,
) -> str | None:
    """Why this person may not save this item or prepare its key now: its key is a real run,
    which a student must not get of an open assignment's item (through a course of their own),
    nor of anything in an exam window."""
    if source is None and program is not None:
        source = program.source
    return visibility.refusal(
        request.user, Surface.SAVE_ITEM, source=source, puzzle_id=puzzle_id, hidden=hidden
    )


@login_required
@require_http_methods(["GET", "POST"])
def item_new(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    assignment, member = get_assignment(request, course_id, assignment_id, staff=True)
    return _item_page(request, assignment, member, None)


@login_required
@require_http_methods(["GET", "POST"])
def item_edit(
    request: HttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    item, member = get_item(request, course_id, assignment_id, item_id, staff=True)
    return _item_page(request, item.assignment, member, item)


@login_required
@require_http_methods(["GET", "POST"])
def item_delete(
    request: HttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    """Delete an item; when students have answered it, only after a confirmation (their
    submissions go with it). Instructors only: assistants grade, they do not delete."""
    item, member = get_item(request, course_id, assignment_id, item_id, staff=True)
    if member.role != Role.INSTRUCTOR:
        raise PermissionDenied("Only the course's instructors may delete an item.")
    assignment = item.assignment
    submissions = item.submissions.aggregate(
        n=Count("id"), students=Count("student", distinct=True)
    )
    if request.method == "POST" and (submissions["n"] == 0 or request.POST.get("confirm") == "yes"):
        title = str(item)
        deleted = authoring.delete_item(item, by=request.user)
        extra = f" and its {deleted} submission{'s' if deleted != 1 else ''}" if deleted else ""
        messages.success(request, f"Deleted “{title}”{extra}.")
        return redirect(
            reverse("classroom:assignment_edit", args=[course_id, assignment.pk]) + "#items"
        )
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "item": item,
        "submissions": submissions,
    }
    return render(request, "classroom/staff/item_delete.html", context)


@login_required
@require_GET
def library_search(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """The item form's live search (an htmx fragment): library programs, or P3 puzzles for a
    puzzle item. With ``pick=program:<id>`` it answers the "picked" box instead."""
    assignment, _ = get_assignment(request, course_id, assignment_id, staff=True)
    template = "classroom/staff/item_form.html"
    pick = request.GET.get("pick")
    if pick is not None:
        form = ItemForm(initial={"pick": pick[:40]}, user=request.user)
        return render(
            request, template + "#picked", {"picked": form.picked(), "pick_value": pick[:40]}
        )
    params = _search_params(request)
    context: dict[str, Any] = {
        "assignment": assignment,
        "search": params,
        **_library_results(request, params["mode"], params["q"], params["source"]),
    }
    return render(request, template + "#library-results", context)
