"""Staff pages of a course's people: the roster upload, invitations (revoke, resend), and members
(confirming an offered role, changing a role).

Its own file because who is in a course, and how they got there, is one topic apart from what
they are given to do. Every view starts from ``access`` (not a member: 404; a student: 403);
changes are POST only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from playground.classroom import invitations, mailing, roster
from playground.classroom.access import get_course
from playground.classroom.errors import ClassroomError
from playground.classroom.forms import REMOVE, RoleForm, RosterForm
from playground.classroom.models import Invitation, Membership, Role
from playground.classroom.views.common import base_url, form_errors
from playground.lib import ratelimits

MAX_ROSTER_MESSAGES = 20


@login_required
@require_POST
def course_roster(request: HttpRequest, course_id: int) -> HttpResponse:
    """Upload a roster: everyone it names is invited (by e-mail, or on their "My courses"
    page); nobody joins before accepting."""
    course, member = get_course(request, course_id, staff=True)
    back = reverse("classroom:course_manage", args=[course.pk]) + "#roster"
    form = RosterForm(request.POST, request.FILES)
    if not form.is_valid():
        form_errors(request, form)
        return redirect(back)
    # Each upload may make up to 5,000 invitations (rows; e-mails have their own daily cap).
    ratelimits.hit(request, "rosters.user")
    try:
        report = roster.import_roster(
            course=course,
            data=form.cleaned_data["file"].read(),
            member=member,
            base_url=base_url(request),
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
        mailing.resend(invitation, by=request.user, base_url=base_url(request))
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
        roster.settle_pending_role(target, confirm=action == "confirm", by=request.user)
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
            roster.remove_member(target, by=request.user)
            messages.success(
                request,
                f"{name} was removed from the course: they no longer see it. Their answers "
                "stay, out of the gradebook, and count again if they are invited back.",
            )
        else:
            roster.change_role(member=target, role=role, by=request.user)
            messages.success(request, f"{name} is now {Role(role).label.lower()}.")
    except ClassroomError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if target.pk == me.pk and role == REMOVE:
        return redirect("classroom:courses")
    if target.pk == me.pk and role == Role.STUDENT:
        return redirect("classroom:course", course_id=course.pk)  # no staff pages any more
    return redirect(back)
