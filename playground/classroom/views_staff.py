"""Staff pages of the classroom: courses and their members, assignments and their items, the
live submissions, overrides, extensions, the gradebook and item statistics.

Every view starts from ``access`` (not a member: 404; a student: 403); changes are POST only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground.classroom import (
    audit,
    grading,
    guards,
    invitations,
    keys,
    services,
    staff_services,
    stats,
)
from playground.classroom.access import get_assignment, get_course, get_item
from playground.classroom.forms import (
    REMOVE,
    AssignmentForm,
    CourseForm,
    DeleteForm,
    ExtensionForm,
    ItemForm,
    OverrideForm,
    RoleForm,
    RosterForm,
    checkpoint_rows,
    library_programs,
    site_time_zone,
)
from playground.classroom.gradebook import Gradebook, build
from playground.classroom.hiding import Surface, hidden_for
from playground.classroom.models import (
    Assignment,
    Extension,
    Invitation,
    Item,
    Membership,
    Mode,
    Role,
    Submission,
)
from playground.classroom.services import ClassroomError
from playground.emulation.judging import headline
from playground.lib import ratelimits
from playground.lib.htmx import HtmxHttpRequest, partial_for
from playground.lib.middleware import with_refusal
from playground.lib.pagination import page_of
from playground.lib.params import object_id
from playground.lib.spreadsheet import spreadsheet_safe
from playground.programs.models import Puzzle

_MAX_QUERY = 200
LIBRARY_RESULTS = 20
SUBMISSIONS_PER_PAGE = 100
MAX_ROSTER_MESSAGES = 20
AUDIT_EVENTS_PER_PAGE = 100
_ROLE_ORDER = {Role.INSTRUCTOR: 0, Role.ASSISTANT: 1, Role.STUDENT: 2}


def _form_errors(request: HttpRequest, form: Any) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


# Courses ---------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def course_new(request: HttpRequest) -> HttpResponse:
    """Anyone signed in may create a course, and becomes its instructor (not a student in an
    exam window: a course of one's own would preview any code's real run)."""
    refusal = guards.refusal(request.user, Surface.NEW_COURSE)
    if refusal is not None:
        return guards.hidden_page(request, refusal)
    form = CourseForm(request.POST or None)
    refused = None
    if request.method == "POST" and form.is_valid():
        refused = ratelimits.exceeded(request, "courses.user")
        if refused is None:
            course = services.create_course(
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                instructor=request.user,
            )
            messages.success(request, f"Course “{course.title}” created: you are its instructor.")
            return redirect("classroom:course_manage", course_id=course.pk)
        form.add_error(None, refused.message)
    page = render(request, "classroom/staff/course_new.html", {"form": form})
    return with_refusal(page, refused) if refused is not None else page


def _base_url(request: HttpRequest) -> str:
    """This site's address as the visitor reached it (for links sent by e-mail)."""
    return request.build_absolute_uri("/").rstrip("/")


@login_required
@require_GET
def course_manage(request: HttpRequest, course_id: int) -> HttpResponse:
    course, member = get_course(request, course_id, staff=True)
    members = sorted(
        Membership.objects.filter(course=course).select_related("user"),
        key=lambda m: (_ROLE_ORDER.get(Role(m.role), 3), m.user.get_username().lower()),
    )
    # Meta.ordering does not apply to a GROUP BY query: order explicitly.
    assignments = course.assignments.annotate(
        n_items=Count("items", distinct=True), n_submissions=Count("items__submissions")
    ).order_by("opens_at", "id")
    pending = list(
        course.invitations.filter(status=Invitation.Status.PENDING)
        .select_related("invitee", "invited_by")
        .order_by("email", "invitee__username", "id")
    )
    is_instructor = member.role == Role.INSTRUCTOR
    context = {
        "course": course,
        "member": member,
        "is_instructor": is_instructor,
        "members": members,
        "n_students": sum(1 for m in members if m.role == Role.STUDENT),
        "to_confirm": [m for m in members if m.pending_role],
        "invitations": [
            {
                "invitation": i,
                "expires": invitations.expires_at(i),
                # Assistants handle student invitations; only instructors deal with staff ones.
                "may_change": is_instructor or i.role == Role.STUDENT,
            }
            for i in pending
        ],
        "assignments": assignments,
        "roster_form": RosterForm(),
        "roles": Role.choices,
        "join_url": request.build_absolute_uri(reverse("classroom:join")),
        "invitation_days": invitations.link_lifetime().days,
        "now": timezone.now(),
    }
    return render(request, "classroom/staff/course_manage.html", context)


@login_required
@require_POST
def course_code(request: HttpRequest, course_id: int) -> HttpResponse:
    """Rotate the join code, or open or close joining (instructors)."""
    course, _ = get_course(request, course_id, instructor=True)
    action = request.POST.get("action", "")
    if action == "rotate":
        course.rotate_join_code()
        messages.success(
            request, f"New join code: {course.join_code}. The old one no longer works."
        )
    elif action in ("enable", "disable"):
        course.join_enabled = action == "enable"
        course.save(update_fields=["join_enabled"])
        messages.success(
            request,
            "Joining with the code is open." if course.join_enabled else "Joining is closed.",
        )
    else:
        messages.error(request, "Unknown action: nothing changed.")
        return redirect(reverse("classroom:course_manage", args=[course.pk]) + "#join")
    audit.record(audit.Action.JOIN_CODE, course=course, actor=request.user, change=action)
    return redirect(reverse("classroom:course_manage", args=[course.pk]) + "#join")


@login_required
@require_POST
def course_roster(request: HttpRequest, course_id: int) -> HttpResponse:
    """Upload a roster: everyone it names is invited (by e-mail, or on their "My courses"
    page); nobody joins before accepting."""
    course, member = get_course(request, course_id, staff=True)
    back = reverse("classroom:course_manage", args=[course.pk]) + "#roster"
    form = RosterForm(request.POST, request.FILES)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(back)
    # Each upload may make up to 5,000 invitations (rows; e-mails have their own daily cap).
    ratelimits.hit(request, "rosters.user")
    try:
        report = invitations.import_roster(
            course, form.cleaned_data["file"].read(), member=member, base_url=_base_url(request)
        )
    except ClassroomError as exc:
        messages.error(request, f"The roster was not imported: {exc}")
        return redirect(back)
    # The counts never depend on whether an address belongs to an account.
    parts = [
        f"{report.mailed} invitation{'s' * (report.mailed != 1)} e-mailed",
        f"{report.on_site} {'person' if report.on_site == 1 else 'people'} invited on their "
        "“My courses” page",
    ]
    if report.already_invited:
        parts.append(f"{report.already_invited} already invited (not sent again)")
    if report.already_members:
        parts.append(f"{report.already_members} already in the course")
    if report.declined:
        parts.append(f"{report.declined} declined before (not asked again)")
    messages.success(
        request,
        "Roster read: " + ", ".join(parts) + ". Nobody joins before accepting.",
    )
    for error in report.errors[:MAX_ROSTER_MESSAGES]:
        messages.error(request, error)
    if len(report.errors) > MAX_ROSTER_MESSAGES:
        messages.error(
            request, f"…and {len(report.errors) - MAX_ROSTER_MESSAGES} more rows were skipped."
        )
    return redirect(back)


def _pending_invitation(request: HttpRequest, course_id: int, invitation_id: int) -> Any:
    """A pending invitation of the course that this staff member may change (assistants:
    student invitations only)."""
    course, member = get_course(request, course_id, staff=True)
    invitation = get_object_or_404(
        Invitation.objects.select_related("course", "invitee"),
        pk=invitation_id,
        course=course,
    )
    if invitation.role != Role.STUDENT and member.role != Role.INSTRUCTOR:
        raise PermissionDenied("Only the course's instructors may change staff invitations.")
    return invitation


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, course_id: int, invitation_id: int) -> HttpResponse:
    invitation = _pending_invitation(request, course_id, invitation_id)
    try:
        invitations.revoke(invitation, by=request.user)
    except ClassroomError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Invitation of {invitation.addressee} withdrawn.")
    return redirect(reverse("classroom:course_manage", args=[course_id]) + "#invitations")


@login_required
@require_POST
def invitation_resend(request: HttpRequest, course_id: int, invitation_id: int) -> HttpResponse:
    """A new link by e-mail (the old one stops working)."""
    invitation = _pending_invitation(request, course_id, invitation_id)
    try:
        invitations.resend(invitation, by=request.user, base_url=_base_url(request))
    except ClassroomError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"A new link is on its way to {invitation.email}; the old one no longer works."
        )
    return redirect(reverse("classroom:course_manage", args=[course_id]) + "#invitations")


@login_required
@require_POST
def member_confirm(request: HttpRequest, course_id: int, member_id: int) -> HttpResponse:
    """Confirm or refuse the staff role an accepted invitation asked for (instructors)."""
    course, _ = get_course(request, course_id, instructor=True)
    target = get_object_or_404(
        Membership.objects.select_related("user", "course"), pk=member_id, course=course
    )
    action = request.POST.get("action", "")
    if action not in ("confirm", "refuse"):
        messages.error(request, "Unknown action: nothing changed.")
        return redirect(reverse("classroom:course_manage", args=[course.pk]) + "#members")
    asked = target.pending_role
    try:
        staff_services.settle_pending_role(target, confirm=action == "confirm", by=request.user)
    except ClassroomError as exc:
        messages.error(request, str(exc))
    else:
        name = target.user.get_username()
        label = Role(asked).label.lower()
        messages.success(
            request,
            f"{name} is now {label}."
            if action == "confirm"
            else f"{name} stays a student (not {label}).",
        )
    return redirect(reverse("classroom:course_manage", args=[course.pk]) + "#members")


@login_required
@require_GET
def audit_log(request: HttpRequest, course_id: int) -> HttpResponse:
    """The course's audit log, newest first (instructors)."""
    course, member = get_course(request, course_id, instructor=True)
    page = page_of(request, audit.for_course(course), AUDIT_EVENTS_PER_PAGE)
    context = {"course": course, "member": member, "page": page}
    return render(request, "classroom/staff/audit_log.html", context)


@login_required
@require_POST
def member_role(request: HttpRequest, course_id: int, member_id: int) -> HttpResponse:
    """Change a member's role, or remove them (instructors; never the last instructor)."""
    course, me = get_course(request, course_id, instructor=True)
    target = get_object_or_404(
        Membership.objects.select_related("user"), pk=member_id, course=course
    )
    back = reverse("classroom:course_manage", args=[course.pk]) + "#members"
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose instructor, assistant or student.")
        return redirect(back)
    role = form.cleaned_data["role"]
    name = target.user.get_username()
    try:
        if role == REMOVE:
            staff_services.remove_member(target, by=request.user)
            messages.success(request, f"{name} was removed from the course.")
        else:
            staff_services.change_role(target, role, by=request.user)
            messages.success(request, f"{name} is now {Role(role).label.lower()}.")
    except ClassroomError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if target.pk == me.pk and role == REMOVE:
        return redirect("classroom:courses")
    if target.pk == me.pk and role == Role.STUDENT:
        return redirect("classroom:course", course_id=course.pk)  # no staff pages any more
    return redirect(back)


@login_required
@require_POST
def course_delete(request: HttpRequest, course_id: int) -> HttpResponse:
    """Delete the course with everything in it (instructors, who type its title to confirm)."""
    course, _ = get_course(request, course_id, instructor=True)
    form = DeleteForm(request.POST, title=course.title)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(reverse("classroom:course_manage", args=[course.pk]) + "#delete")
    title = course.title
    staff_services.delete_course(course, by=request.user)
    messages.success(request, f"Course “{title}” deleted, with its assignments and submissions.")
    return redirect("classroom:courses")


# Assignments -----------------------------------------------------------------------------------


def _default_times() -> dict[str, Any]:
    """A new assignment opens now (to the minute: a teacher trying it out need not edit the
    time), and is due a week later."""
    opens = timezone.localtime(timezone.now(), timezone=timezone.get_default_timezone())
    opens = opens.replace(second=0, microsecond=0)
    return {"opens_at": opens, "due_at": opens + timedelta(days=7)}


@login_required
@require_http_methods(["GET", "POST"])
def assignment_new(request: HttpRequest, course_id: int) -> HttpResponse:
    course, member = get_course(request, course_id, staff=True)
    form = AssignmentForm(request.POST or None, initial=_default_times())
    refused = None
    if request.method == "POST" and form.is_valid():
        # Assignments and items share one count of rows made in a day.
        refused = ratelimits.exceeded(request, "items.user")
        if refused is not None:
            form.add_error(None, refused.message)
    if request.method == "POST" and refused is None and form.is_valid():
        assignment: Assignment = form.save(commit=False)
        assignment.course = course
        assignment.save()
        messages.success(request, f"Assignment “{assignment.title}” created: now add its items.")
        return redirect(
            "classroom:assignment_edit", course_id=course.pk, assignment_id=assignment.pk
        )
    context = {"course": course, "member": member, "form": form, "time_zone": site_time_zone()}
    page = render(request, "classroom/staff/assignment_form.html", context)
    return with_refusal(page, refused) if refused is not None else page


@login_required
@require_http_methods(["GET", "POST"])
def assignment_edit(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """The assignment's settings and its items (reordered with POST action=move; deleted by an
    instructor with action=delete and the title typed)."""
    assignment, member = get_assignment(request, course_id, assignment_id, staff=True)
    here = reverse("classroom:assignment_edit", args=[course_id, assignment.pk])
    form = AssignmentForm(instance=assignment)
    delete_form = DeleteForm(title=assignment.title)
    if request.method == "POST":
        action = request.POST.get("action", "save")
        if action == "move":
            item = get_object_or_404(
                Item, pk=object_id(request.POST.get("item")) or 0, assignment=assignment
            )
            staff_services.move_item(item, request.POST.get("direction", ""))
            return redirect(here + "#items")
        if action == "delete":
            if member.role != Role.INSTRUCTOR:
                raise PermissionDenied("Only the course's instructors may delete an assignment.")
            delete_form = DeleteForm(request.POST, title=assignment.title)
            if delete_form.is_valid():
                title = assignment.title
                staff_services.delete_assignment(assignment, by=request.user)
                messages.success(request, f"Assignment “{title}” deleted, with its submissions.")
                return redirect("classroom:course_manage", course_id=course_id)
        else:
            form = AssignmentForm(request.POST, instance=assignment)
            if form.is_valid():
                form.save()
                messages.success(request, "Assignment saved.")
                return redirect(here)
    items = list(
        assignment.items.select_related("key_run", "program", "puzzle")
        .annotate(n_submissions=Count("submissions"))
        .order_by("position", "id")
    )
    hidden = hidden_for(request.user)
    for each in items:
        # What is wrong with a key comes from its real run: not for someone from whom an open
        # assignment hides that program (the answer-key preview's rule).
        each.key_hidden = bool(  # type: ignore[attr-defined]
            hidden.anything
            and guards.refusal(
                request.user,
                Surface.PREVIEW,
                source=each.program.source if each.program is not None else None,
                puzzle_id=each.puzzle_id,
                hidden=hidden,
            )
        )
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "form": form,
        "delete_form": delete_form,
        "items": items,
        "time_zone": site_time_zone(),
        "has_submissions": Submission.objects.filter(item__assignment=assignment).exists(),
    }
    return render(request, "classroom/staff/assignment_form.html", context)


# Items -----------------------------------------------------------------------------------------


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
            return guards.hidden_page(request, refusal)
        ratelimits.hit(request, "item_prepares.user")  # a real run and a model run
        staff_services.prepare_again(item, by=request.user)
        messages.success(request, "The answer key is being prepared again.")
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
    if data is not None and not more and form.is_valid() and form.data_out is not None:
        graded = item.submissions.count() if item is not None else 0
        saved, prepared = staff_services.save_item(
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
        if prepared and graded:
            messages.warning(
                request,
                "1 submission was graded against the old key and keeps its grade: override "
                "it if needed."
                if graded == 1
                else f"{graded} submissions were graded against the old key and keep their "
                "grades: override them if needed.",
            )
        return redirect(back + "#items")
    preview_refused = None
    if item is not None:
        preview_refused = guards.refusal(
            request.user,
            Surface.PREVIEW,
            source=item.program.source if item.program is not None else None,
            puzzle_id=item.puzzle_id,
            hidden=hidden,
        )
    mode = str(form["mode"].value() or Mode.OUTPUT)
    params = {"mode": mode, "q": "", "source": "all"}
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "item": item,
        "form": form,
        "rows": rows,
        "picked": form.picked(),
        "pick_value": form["pick"].value() or "",
        "search": params,
        "preview": _key_preview(item) if item is not None and not preview_refused else None,
        "preview_refusal": preview_refused,
        "modes": Mode,
        "limited": limited.message if limited else "",
        **_library_results(request, mode, "", "all"),
    }
    page = render(request, template, context)
    return with_refusal(page, limited) if limited else page


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
    return guards.refusal(
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
        deleted = staff_services.delete_item(item, by=request.user)
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


@login_required
@require_GET
def item_stats(
    request: HttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    item, member = get_item(request, course_id, assignment_id, item_id, staff=True)
    result = stats.item_stats(item)
    context = {
        "course": item.assignment.course,
        "member": member,
        "assignment": item.assignment,
        "item": item,
        "stats": result,
        "chart": stats.chart(result.bars),
    }
    return render(request, "classroom/staff/item_stats.html", context)


# Extensions, submissions, overrides ------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def extensions(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """Per-student extensions: a later due time and late period for one student."""
    assignment, member = get_assignment(request, course_id, assignment_id, staff=True)
    here = reverse("classroom:extensions", args=[course_id, assignment.pk])
    form = ExtensionForm(assignment=assignment, initial={"due_at": assignment.due_at})
    if request.method == "POST":
        if request.POST.get("action") == "remove":
            extension = get_object_or_404(
                Extension.objects.select_related("student"),
                pk=object_id(request.POST.get("extension")) or 0,
                assignment=assignment,
            )
            extension.delete()
            messages.success(request, f"Extension of {extension.student.get_username()} removed.")
            return redirect(here)
        form = ExtensionForm(request.POST, assignment=assignment)
        if form.is_valid():
            student = form.cleaned_data["student"].user
            staff_services.set_extension(
                assignment=assignment,
                student=student,
                due_at=form.cleaned_data["due_at"],
                late_until=form.cleaned_data["late_until"],
            )
            messages.success(request, f"Extension for {student.get_username()} saved.")
            return redirect(here)
    rows = [
        (ext, assignment.window(ext.student))
        for ext in assignment.extensions.select_related("student").order_by("student__username")
    ]
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "form": form,
        "rows": rows,
        "time_zone": site_time_zone(),
    }
    return render(request, "classroom/staff/extensions.html", context)


@login_required
@require_GET
def submissions(request: HtmxHttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """Every submission to the assignment, newest first, filtered by item and student; the list
    refreshes itself every 2 s (htmx polling of its partial)."""
    assignment, member = get_assignment(request, course_id, assignment_id, staff=True)
    items = list(assignment.items.order_by("position", "id"))
    students = (
        Membership.objects.filter(course_id=course_id, role=Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )
    qs = (
        Submission.objects.filter(item__assignment=assignment)
        .select_related("item", "student", "overridden_by")
        .order_by("-submitted_at", "-id")
    )
    item_id = request.GET.get("item", "")
    student_id = request.GET.get("student", "")
    if (item_pk := object_id(item_id)) is not None:
        qs = qs.filter(item_id=item_pk)
    if (student_pk := object_id(student_id)) is not None:
        qs = qs.filter(student_id=student_pk)
    page = page_of(request, qs, SUBMISSIONS_PER_PAGE)
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "items": items,
        "students": students,
        "item_id": item_id,
        "student_id": student_id,
        "page": page,
        "now": timezone.now(),
    }
    return render(
        request,
        partial_for(request, "classroom/staff/submissions.html", "submission-rows"),
        context,
    )


@login_required
@require_http_methods(["GET", "POST"])
def override(request: HttpRequest, course_id: int, submission_id: int) -> HttpResponse:
    """Set a submission's credit by hand, with a comment for the student (staff), or remove the
    override."""
    course, member = get_course(request, course_id, staff=True)
    submission = get_object_or_404(
        Submission.objects.select_related("item__assignment", "student", "overridden_by"),
        pk=submission_id,
        item__assignment__course=course,
    )
    item = submission.item
    assignment = item.assignment
    back = reverse("classroom:submissions", args=[course.pk, assignment.pk])
    who = f"{submission.student.get_username()} on “{item}” (attempt {submission.attempt})"
    initial = {}
    if submission.override_credit is not None:
        initial = {
            "credit": f"{submission.override_credit * 100:g}%",
            "comment": submission.override_comment,
        }
    form = OverrideForm(initial=initial)
    if request.method == "POST":
        if request.POST.get("action") == "clear":
            staff_services.clear_override(submission)
            messages.success(request, f"Override removed: {who} counts as graded again.")
            return redirect(back)
        form = OverrideForm(request.POST)
        if form.is_valid():
            try:
                services.override(
                    submission,
                    credit=form.cleaned_data["credit"],
                    comment=form.cleaned_data["comment"],
                    by=request.user,
                )
            except ClassroomError as exc:
                form.add_error("credit", str(exc))
            else:
                messages.success(
                    request, f"Credit of {who} set to {form.cleaned_data['credit'] * 100:g}%."
                )
                return redirect(back)
    attempts = Submission.objects.filter(item=item, student=submission.student).order_by("attempt")
    answer = submission.answer
    context = {
        "course": course,
        "member": member,
        "assignment": assignment,
        "item": item,
        "submission": submission,
        "answer_items": sorted(answer.items()) if isinstance(answer, dict) else None,
        "answer_text": answer if isinstance(answer, str) else None,
        "attempts": attempts,
        "form": form,
    }
    return render(request, "classroom/staff/override.html", context)


# Gradebook -------------------------------------------------------------------------------------


def _item_averages(book: Gradebook) -> list[float | None]:
    """Each item's mean credit over all students (no submission counts as 0)."""
    if not book.rows:
        return [None for _ in book.items]
    return [
        sum(row.cells[i].credit or 0.0 for row in book.rows) / len(book.rows)
        for i in range(len(book.items))
    ]


@login_required
@require_GET
def gradebook(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """Every student of the course x every item: the credit that counts (best attempt, overrides
    applied), late marks, the total weighted by points, and the percentage."""
    assignment, member = get_assignment(request, course_id, assignment_id, staff=True)
    book = build(assignment)
    average_percent = sum(r.percent for r in book.rows) / len(book.rows) if book.rows else None
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "book": book,
        "averages": _item_averages(book),
        "average_percent": average_percent,
    }
    return render(request, "classroom/staff/gradebook.html", context)


def _points(value: float) -> str:
    """A number as a spreadsheet reads it: 2.5, 1, 0.3333 (never 1e+06)."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def gradebook_rows(book: Gradebook) -> list[list[str]]:
    """The gradebook as CSV rows: username, email, the points earned per item, total, percent."""
    header = ["username", "email", *(str(item) for item in book.items), "total", "percent"]
    rows = [header]
    for row in book.rows:
        cells = [
            "" if cell.credit is None else _points(cell.credit * item.points)
            for cell, item in zip(row.cells, book.items, strict=True)
        ]
        rows.append([row.username, row.email, *cells, _points(row.total), f"{row.percent:.2f}"])
    return [[spreadsheet_safe(cell) for cell in r] for r in rows]


@login_required
@require_GET
def gradebook_csv(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    assignment, _ = get_assignment(request, course_id, assignment_id, staff=True)
    out = io.StringIO()
    out.write("\ufeff")  # the BOM makes spreadsheets read the file as UTF-8
    csv.writer(out).writerows(gradebook_rows(build(assignment)))
    name = slugify(f"{assignment.course.title} {assignment.title}")[:80].strip("-")
    filename = f"{name or 'assignment'}-gradebook.csv"
    response = HttpResponse(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
