"""The LTI 1.3 routes: the tool's key set, the OIDC login initiation, the launch, the
deep-linking picker, and the staff page of scores sent back (with a resend).

Every refusal is a page that says why (templates/lti/error.html, escaped), never a 500."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground.classroom.access import get_course
from playground.classroom.models import Assignment, Role
from playground.lib import ratelimits
from playground.lti import keys, launch, passback, protocol
from playground.lti.middleware import origin_of
from playground.lti.models import LtiContext, Platform, ScoreSend
from playground.lti.protocol import LaunchRefused

log = logging.getLogger(__name__)

# The most assignments one deep-linking response may carry (each is a gradebook column).
MAX_PICKED = 50


def _refused(request: HttpRequest, exc: LaunchRefused) -> HttpResponse:
    log.info("LTI launch refused: %s", exc.message)
    return render(request, "lti/error.html", {"message": exc.message}, status=exc.status)


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """The tool's public keys, for platforms verifying what it signs."""
    response = JsonResponse(keys.jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def oidc_login(request: HttpRequest) -> HttpResponse:
    """Third-party login initiation: the LMS sends the browser here first."""
    ratelimits.hit(request, "lti_launches.ip")
    params = request.POST if request.method == "POST" else request.GET
    try:
        start = launch.begin_login(
            params, launch_url=request.build_absolute_uri(reverse("lti:launch"))
        )
    except LaunchRefused as exc:
        return _refused(request, exc)
    response = redirect(start.url)
    secure = request.is_secure()
    # The launch comes back as a cross-site POST from the LMS: only SameSite=None reaches it
    # then, which browsers take over HTTPS only (over plain HTTP, Lax: same-site set-ups).
    response.set_cookie(
        launch.state_cookie_name(start.state),
        start.state,
        max_age=launch.STATE_TTL_S,
        path=reverse("lti:launch"),
        secure=secure,
        httponly=True,
        samesite="None" if secure else "Lax",
    )
    return response


@csrf_exempt
@never_cache
@require_POST
def launch_view(request: HttpRequest) -> HttpResponse:
    """The id_token's form post: verified, mapped, the person signed in and sent on."""
    ratelimits.hit(request, "lti_launches.ip")
    state = str(request.POST.get("state") or "")
    if request.POST.get("error"):
        return _refused(
            request,
            LaunchRefused(f"The LMS refused the launch: {str(request.POST.get('error'))[:200]}."),
        )
    try:
        platform, claims = launch.verify(
            state=state,
            id_token=str(request.POST.get("id_token") or ""),
            state_cookie=request.COOKIES.get(launch.state_cookie_name(state)),
        )
        done = launch.complete(platform, claims)
    except LaunchRefused as exc:
        return _refused(request, exc)
    if request.user.is_authenticated and request.user.pk != done.user.pk:
        log.info("LTI launch replaces the signed-in account %s", request.user.pk)
    login(request, done.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session["lti"] = {"platform": platform.pk, "origins": platform.origins()}
    if done.deep_link:
        target = reverse("lti:deep_link", args=[done.deep_link])
    elif done.link is not None and done.link.assignment is not None:
        target = done.link.assignment.get_absolute_url()
    elif done.role == Role.STUDENT:
        target = reverse("classroom:course", args=[done.course.pk])
    else:
        target = reverse("classroom:course_manage", args=[done.course.pk])
    response = redirect(target)
    response.delete_cookie(launch.state_cookie_name(state), path=reverse("lti:launch"))
    return response


def _deep_link_settings(request: HttpRequest, token: str) -> dict[str, Any]:
    saved = cache.get(f"lti:deeplink:{token}") if len(token) < 100 else None
    if not isinstance(saved, dict) or saved.get("user") != request.user.pk:
        raise Http404(
            "This deep-linking request is unknown or expired: start it again from the LMS."
        )
    return saved


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def deep_link(request: HttpRequest, token: str) -> HttpResponse:
    """The instructor picks assignments of the linked course; the signed answer is posted back
    to the LMS by the form this page shows."""
    saved = _deep_link_settings(request, token)
    course, member = get_course(request, saved["course"], staff=True)
    assignments = list(Assignment.objects.filter(course=course).order_by("opens_at", "id"))
    error = ""
    if request.method == "POST":
        ratelimits.hit(request, "lti_deep_links.user")
        wanted = {v for v in request.POST.getlist("assignment") if v.isdigit()}
        picked = [a for a in assignments if str(a.pk) in wanted]
        if not picked:
            error = "Pick at least one assignment."
        elif len(picked) > MAX_PICKED or (len(picked) > 1 and not saved["multiple"]):
            limit = MAX_PICKED if saved["multiple"] else 1
            error = f"The LMS takes at most {limit} assignment{'s' if limit > 1 else ''} here."
        else:
            platform = Platform.objects.get(pk=saved["platform"])
            launch_url = request.build_absolute_uri(reverse("lti:launch"))
            items = [_content_item(a, launch_url) for a in picked]
            jwt_ = protocol.deep_linking_response(
                platform=platform,
                key=keys.signing_key(),
                deployment_id=saved["deployment_id"],
                data=saved["data"],
                items=items,
            )
            cache.delete(f"lti:deeplink:{token}")
            response = render(
                request,
                "lti/deep_link_return.html",
                {
                    "return_url": saved["return_url"],
                    "jwt": jwt_,
                    "picked": picked,
                    "course": course,
                },
            )
            # The form goes to the LMS: this one response may post to its origin.
            response._csp_update = {"form-action": [origin_of(saved["return_url"])]}  # type: ignore[attr-defined]
            return response
    return render(
        request,
        "lti/deep_link.html",
        {"course": course, "member": member, "assignments": assignments, "error": error},
        status=400 if error else 200,
    )


def _content_item(assignment: Assignment, launch_url: str) -> dict[str, Any]:
    possible = sum(i.points for i in assignment.items.all()) or 1.0
    return {
        "type": "ltiResourceLink",
        "title": assignment.title,
        "url": launch_url,
        "custom": {"assignment_id": str(assignment.pk)},
        "lineItem": {
            "scoreMaximum": possible,
            "label": assignment.title,
            "resourceId": f"assignment-{assignment.pk}",
            "tag": "grade",
        },
    }


@login_required
@require_GET
def scores(request: HttpRequest, course_id: int) -> HttpResponse:
    """What was sent to the LMS for this course's students (staff only)."""
    course, member = get_course(request, course_id, staff=True)
    rows = (
        ScoreSend.objects.filter(link__context__course=course)
        .select_related("student", "link__assignment", "link__context__platform")
        .prefetch_related("log")
        .order_by("link__assignment__title", "student__username")
    )
    contexts = LtiContext.objects.filter(course=course).select_related("platform")
    return render(
        request,
        "lti/scores.html",
        {"course": course, "member": member, "rows": rows, "contexts": contexts},
    )


@login_required
@require_POST
def resend(request: HttpRequest, course_id: int, pk: int) -> HttpResponse:
    course, _ = get_course(request, course_id, staff=True)
    row = (
        ScoreSend.objects.filter(pk=pk, link__context__course=course).select_related("link").first()
    )
    if row is None:
        raise Http404("No such score.")
    ratelimits.hit(request, "lti_resends.user")
    if row.link.assignment_id is not None:
        passback.queue(
            assignment_id=row.link.assignment_id,
            student_id=row.student_id,
            by=request.user.get_username(),
        )
    messages.success(request, "The score is queued to be sent again.")
    return redirect("lti:scores", course_id=course.pk)
