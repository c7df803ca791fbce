"""Staff pages of a course itself: creating one, its manage page, its join code, its audit log,
deleting it.

Its own file because the course as a whole is one topic apart from its roster, assignments and
grades. Every view starts from ``access`` (not a member: 404; a student: 403); changes are POST
only."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground.classroom import audit, courses, invitations, visibility
from playground.classroom.access import get_course
from playground.classroom.forms import CourseForm, DeleteForm, RosterForm, zone_choices
from playground.classroom.models import Invitation, Membership, Role
from playground.classroom.views.common import form_errors
from playground.classroom.visibility import Surface
from playground.classroom.zones import in_course_zone
from playground.lib import ratelimits
from playground.lib.middleware import with_refusal
from playground.lib.pagination import page_of

_ROLE_ORDER = {Role.INSTRUCTOR: 0, Role.ASSISTANT: 1, Role.STUDENT: 2}
AUDIT_EVENTS_PER_PAGE = 100


@login_required
@require_http_methods(["GET", "POST"])
def course_new(request: HttpRequest) -> HttpResponse:
    """Anyone signed in may create a course, and becomes its instructor (not a student in an
    exam window: a course of one's own would preview any code's real run)."""
    refusal = visibility.refusal(request.user, Surface.NEW_COURSE)
    if refusal is not None:
        return visibility.hidden_page(request, refusal)
    form = CourseForm(request.POST or None)
    refused = None
    if request.method == "POST" and form.is_valid():
        refused = ratelimits.exceeded(request, "courses.user")
        if refused is None:
            course = courses.create_course(
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                instructor=request.user,
                time_zone=form.cleaned_data.get("time_zone") or "",
            )
            messages.success(request, f"Course “{course.title}” created: you are its instructor.")
            return redirect("classroom:course_manage", course_id=course.pk)
        form.add_error(None, refused.message)
    page = render(request, "classroom/staff/course_new.html", {"form": form})
    return with_refusal(page, refused) if refused is not None else page


@login_required
@require_POST
def course_zone(request: HttpRequest, course_id: int) -> HttpResponse:
    """An instructor sets the course's time zone (its dates keep their instants: they are shown
    in the new zone)."""
    course, _ = get_course(request, course_id, instructor=True)
    form = CourseForm({"title": course.title, "time_zone": request.POST.get("time_zone", "")})
    form.is_valid()
    if form.has_error("time_zone"):
        form_errors(request, form)
    else:
        course.time_zone = form.cleaned_data.get("time_zone") or ""
        course.save(update_fields=["time_zone"])
        zone = course.time_zone or f"the site's ({timezone.get_default_timezone_name()})"
        messages.success(request, f"Time zone set: {zone}.")
    return redirect(reverse("classroom:course_manage", args=[course.pk]) + "#time-zone")


@login_required
@require_GET
@in_course_zone
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
        "zone_name": timezone.get_current_timezone_name(),
        "zone_choices": zone_choices() if is_instructor else [],
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
@require_GET
def audit_log(request: HttpRequest, course_id: int) -> HttpResponse:
    """The course's audit log, newest first (instructors)."""
    course, member = get_course(request, course_id, instructor=True)
    page = page_of(request, audit.for_course(course), AUDIT_EVENTS_PER_PAGE)
    context = {"course": course, "member": member, "page": page}
    return render(request, "classroom/staff/audit_log.html", context)


@login_required
@require_POST
def course_delete(request: HttpRequest, course_id: int) -> HttpResponse:
    """Delete the course with everything in it (instructors, who type its title to confirm)."""
    course, _ = get_course(request, course_id, instructor=True)
    form = DeleteForm(request.POST, title=course.title)
    if not form.is_valid():
        form_errors(request, form)
        return redirect(reverse("classroom:course_manage", args=[course.pk]) + "#delete")
    title = course.title
    courses.delete_course(course, by=request.user)
    messages.success(request, f"Course “{title}” deleted, with its assignments and submissions.")
    return redirect("classroom:courses")
