"""Staff pages of assignments: creating one and editing it (its window, attempts, feedback and
reveal rules, with its items listed).

Its own file because an assignment's settings are one form and one topic. Every view starts from
``access`` (not a member: 404; a student: 403); changes are POST only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from playground.classroom import authoring, courses, publishing, visibility
from playground.classroom.access import get_assignment, get_course
from playground.classroom.forms import AssignmentForm, DeleteForm, site_time_zone
from playground.classroom.models import Assignment, Item, Role, Submission
from playground.classroom.visibility import Surface, hidden_for
from playground.classroom.zones import in_course_zone
from playground.lib import ratelimits
from playground.lib.middleware import with_refusal
from playground.lib.params import object_id


def _default_times() -> dict[str, Any]:
    """A new assignment opens now (to the minute: a teacher trying it out need not edit the
    time), and is due a week later."""
    opens = timezone.localtime(timezone.now())  # the course's zone (in_course_zone)
    opens = opens.replace(second=0, microsecond=0)
    return {"opens_at": opens, "due_at": opens + timedelta(days=7)}


@login_required
@require_http_methods(["GET", "POST"])
@in_course_zone
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
@in_course_zone
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
            authoring.move_item(item=item, direction=request.POST.get("direction", ""))
            return redirect(here + "#items")
        if action in ("publish", "unpublish"):
            if member.role != Role.INSTRUCTOR:
                raise PermissionDenied("Only the course's instructors publish results.")
            change = publishing.publish if action == "publish" else publishing.unpublish
            change(assignment=assignment, by=request.user)
            messages.success(
                request,
                "Results published: students see them now."
                if action == "publish"
                else "Results unpublished: students no longer see the results that waited for "
                "publishing.",
            )
            return redirect(here + "#publishing")
        if action == "delete":
            if member.role != Role.INSTRUCTOR:
                raise PermissionDenied("Only the course's instructors may delete an assignment.")
            delete_form = DeleteForm(request.POST, title=assignment.title)
            if delete_form.is_valid():
                title = assignment.title
                courses.delete_assignment(assignment, by=request.user)
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
            and visibility.refusal(
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
