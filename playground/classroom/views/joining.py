"""The classroom's way in and out for everyone signed in: my courses, joining with a code,
answering invitations (on my page or from an e-mailed link), and leaving a course.

Its own file because membership, gained or given up, is one topic apart from the work inside a
course."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from playground.classroom import access, invitations, joining
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Membership, Role
from playground.lib import ratelimits
from playground.lib.htmx import HtmxHttpRequest
from playground.lib.middleware import with_refusal

_MAX_CODE = 100


def _member_of(request: HttpRequest) -> Any:
    """The signed-in user (every view here is behind login_required)."""
    return request.user


def _courses_page(
    request: HtmxHttpRequest, *, code: str = "", error: str = "", status: int = 200
) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=_member_of(request))
        .select_related("course")
        .order_by("course__title", "course_id")
    )
    context = {
        "memberships": memberships,
        "invitations": invitations.pending_for(request.user),
        "code": code,
        "error": error,
    }
    template = "classroom/student/my_courses.html"
    if request.htmx and request.method == "POST":
        template += "#join"
    return render(request, template, context, status=status)


@login_required
def my_courses(request: HtmxHttpRequest) -> HttpResponse:
    """The courses I am in, with my role; invitations waiting for my answer; joining with a
    code. Nothing here makes me a member by itself."""
    return _courses_page(request, code=request.GET.get("code", "").strip()[:_MAX_CODE])


@login_required
@require_http_methods(["GET", "POST"])
def join(request: HtmxHttpRequest) -> HttpResponse:
    """Join a course with its code (a GET, e.g. from a link with ?code=, fills in the form)."""
    if request.method == "GET":
        code = request.GET.get("code", "").strip()[:_MAX_CODE]
        query = f"?{urlencode({'code': code})}" if code else ""
        return redirect(reverse("classroom:courses") + query)
    code = request.POST.get("code", "").strip()
    if not code:
        return _courses_page(request, error="Enter the course's join code.")
    if len(code) > _MAX_CODE or "\x00" in code:
        shown = code[:_MAX_CODE].replace("\x00", "")
        return _courses_page(request, code=shown, error="That is not a join code.")
    # Every code tried counts, right or wrong: join codes must not be guessed in a loop.
    refused = ratelimits.exceeded(request, "course_joins.user")
    if refused is not None:
        return with_refusal(
            _courses_page(request, code=code, error=refused.message, status=429), refused
        )
    already = Membership.objects.filter(
        user=_member_of(request), course__join_code__iexact=code
    ).first()
    try:
        membership = joining.join_course(user=request.user, code=code)
    except ClassroomError as exc:
        return _courses_page(request, code=code, error=str(exc))
    course = membership.course
    _joined_message(request, membership, created=already is None)
    if request.htmx:
        return HttpResponseClientRedirect(course.get_absolute_url())
    return redirect(course)


def _joined_message(request: HttpRequest, membership: Membership, created: bool) -> None:
    course = membership.course
    if not created:
        messages.info(request, f"You are already in “{course.title}”.")
        return
    text = f"You joined “{course.title}” as student."
    if membership.pending_role:
        text += (
            f" The role of {Role(membership.pending_role).label.lower()} it offers waits for an "
            "instructor's confirmation."
        )
    messages.success(request, text)


@login_required
@require_POST
def invitation_answer(request: HttpRequest, invitation_id: int) -> HttpResponse:
    """Accept or decline an invitation shown on my "My courses" page (only mine: 404 else)."""
    invitation = invitations.pending_for(request.user).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    action = request.POST.get("action", "")
    try:
        if action == "accept":
            membership, created = joining.accept(invitation=invitation, user=request.user)
            _joined_message(request, membership, created)
            return redirect(membership.course)
        if action == "decline":
            joining.decline(invitation=invitation, user=request.user)
            messages.info(request, f"You declined the invitation to “{invitation.course.title}”.")
        else:
            messages.error(request, "Choose accept or decline: nothing changed.")
    except ClassroomError as exc:
        messages.error(request, str(exc))
    return redirect("classroom:courses")


@require_http_methods(["GET", "POST"])
def invitation_link(request: HttpRequest, token: str) -> HttpResponse:
    """The page an e-mailed link opens: the course, and accept or decline. Opening it changes
    nothing (mail scanners open links); accepting needs an account and a POST, declining only
    the link."""
    invitation, problem = invitations.resolve(token)
    if problem is not None:
        return render(
            request,
            "classroom/student/invitation.html",
            {"problem": problem.message, "invitation": invitation},
            status=problem.status,
        )
    assert invitation is not None
    here = request.path
    login_url = f"{reverse('login')}?{urlencode({'next': here})}"
    context: dict[str, Any] = {
        "invitation": invitation,
        "course": invitation.course,
        "role": Role(invitation.role).label.lower(),
        "here": here,
        "signed_in": request.user.is_authenticated,
        "login_url": login_url,
        "signup_url": f"{reverse('signup')}?{urlencode({'next': here})}",
    }
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "accept" and request.user.is_authenticated:
                membership, created = joining.accept(invitation=invitation, user=request.user)
                _joined_message(request, membership, created)
                return redirect(membership.course)
            if action == "accept":
                return redirect(login_url)
            if action == "decline":
                user = request.user if request.user.is_authenticated else None
                joining.decline(invitation=invitation, user=user)
                context["declined"] = True
                return render(request, "classroom/student/invitation.html", context)
            context["error"] = "Choose accept or decline: nothing changed."
            return render(request, "classroom/student/invitation.html", context, status=400)
        except ClassroomError as exc:
            context["error"] = str(exc)
            return render(request, "classroom/student/invitation.html", context, status=409)
    return render(request, "classroom/student/invitation.html", context)


@login_required
@require_POST
def leave(request: HttpRequest, course_id: int) -> HttpResponse:
    """Leave a course I am in (404 for a course I am not in)."""
    the_course, _ = access.get_course(request, course_id)
    try:
        joining.leave_course(user=request.user, course=the_course)
    except ClassroomError as exc:
        messages.error(request, str(exc))
        return redirect(the_course)
    messages.success(request, f"You left “{the_course.title}”.")
    return redirect("classroom:courses")
