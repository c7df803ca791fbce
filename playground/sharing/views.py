"""Creating and revoking share links (owner only), and the public read-only and embed views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from csp.constants import NONE
from csp.decorators import csp_replace
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import defaults
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_POST, require_safe

from playground.lib import hiding, ratelimits
from playground.lib.htmx import HtmxHttpRequest
from playground.programs.models import Program
from playground.runs.access import get_run_for_user
from playground.runs.cwm_export import cwm_download
from playground.runs.pages import (
    RunUrls,
    finished_page_loader,
    progress_context,
    run_context,
    socket_url,
)
from playground.sharing.models import ExpiredLink, ShareLink


class LinkExpired(Http404):
    """The link's run was deleted by the expiry of anonymous runs (playground/runs/retention.py)."""


def _active_link(token: str) -> ShareLink:
    try:
        return ShareLink.objects.active().select_related("run__program").get(token=token)
    except ShareLink.DoesNotExist:
        if ExpiredLink.objects.filter(token=token).exists():
            raise LinkExpired(expired_message()) from None
        raise Http404("This link does not exist or was revoked.") from None


def expired_message() -> str:
    hours = settings.PLAYGROUND_ANON_RUN_TTL_HOURS
    kept = f"{hours // 24} days" if hours % 24 == 0 else f"{hours} hours"
    return (
        f"This run has expired: runs made without an account are deleted after {kept}. "
        "Sign in before running a program to keep its runs and links."
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The site's 404 page (handler404), which says so when a share link's run expired."""
    if not isinstance(exception, LinkExpired):
        return defaults.page_not_found(request, exception)
    match = request.resolver_match
    embed = match is not None and match.url_name == "embed"
    template = "sharing/expired_embed.html" if embed else "sharing/expired.html"
    response = render(request, template, {"message": str(exception)}, status=404)
    if embed:  # the page that replaces an embedded run must show inside its frame
        response.xframe_options_exempt = True
        response._csp_replace = embed_policy()  # type: ignore[attr-defined]
    return response


LOCKED_MESSAGE = (
    "Staff unpublished this run's program: its runs cannot be shared until they allow it again "
    "(the program's page says why)."
)


@require_POST
def create_link(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request, pk)
    if (
        run.program_id is not None
        and Program.objects.filter(pk=run.program_id, moderation_lock__isnull=False).exists()
    ):
        # Its links would answer 404 to everyone (ShareLink.objects.active): say so now.
        messages.error(request, LOCKED_MESSAGE)
        return redirect(run)
    ratelimits.hit(request, "share_links")
    user = request.user if request.user.is_authenticated else None
    ShareLink.objects.create(run=run, created_by=user)
    return redirect(run)


@require_POST
def revoke_link(request: HttpRequest, pk: int, link_id: int) -> HttpResponse:
    run = get_run_for_user(request, pk)
    link = get_object_or_404(ShareLink, pk=link_id, run=run)
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
    return redirect(run)


def _hidden(request: HttpRequest, link: ShareLink, *, embed: bool = False) -> HttpResponse | None:
    """While an assignment with this run's program or puzzle is open, a share link shows no one
    anything (whoever holds it could be a student): a 404 that says why."""
    visibility = hiding.policy()
    if not visibility.shared_run_hidden(link.run):
        return None
    if embed:
        context = {"message": visibility.shared_hidden_message}
        return render(request, "sharing/hidden_embed.html", context, status=404)
    return visibility.page(request, visibility.shared_hidden_message, status=404)


def _urls(link: ShareLink) -> RunUrls:
    """The run page's addresses through this link (live updates through it too)."""
    return RunUrls(
        page=reverse("sharing:view", args=[link.token]),
        status=reverse("sharing:status", args=[link.token]),
        socket=socket_url(link.run, share_token=link.token),
        shared=True,
    )


@require_safe
def shared_run(request: HttpRequest, token: str) -> HttpResponse:
    link = _active_link(token)
    if (hidden := _hidden(request, link)) is not None:
        return hidden
    standard = request.GET.get("trace") == "standard"  # a rule run's other viewer (runs/pages)
    context = run_context(link.run, _urls(link), step_standard=standard)
    return render(request, "runs/run_detail.html", context)


@require_safe
def shared_status(request: HtmxHttpRequest, token: str) -> HttpResponse:
    """The slow-poll fallback for a shared live run."""
    link = _active_link(token)
    if (hidden := _hidden(request, link)) is not None:
        return hidden
    if link.run.is_finished and request.htmx:
        return HttpResponse(finished_page_loader(reverse("sharing:view", args=[token])))
    return render(request, "runs/run_detail.html#progress", progress_context(link.run, _urls(link)))


@require_safe
def shared_trace_cwm(request: HttpRequest, token: str) -> HttpResponse:
    """The shared run's real trace in CWM's format: whoever may see the shared page."""
    link = _active_link(token)
    if (hidden := _hidden(request, link)) is not None:
        return hidden
    return cwm_download(link.run)


def embed_policy() -> dict[str, Any]:
    """What the embed view's policy replaces in the site's (also on its expired-link page)."""
    return {
        "frame-ancestors": settings.PLAYGROUND_EMBED_FRAME_ANCESTORS,
        "script-src": [NONE],
        "connect-src": [NONE],
        "form-action": [NONE],
    }


def _embed_policy(view: Callable[[HttpRequest, str], HttpResponse]) -> Any:
    """The embed view's own Content-Security-Policy: framed only by the sites that
    PLAYGROUND_EMBED_FRAME_ANCESTORS names (read per request), and no script, fetch or form at
    all, which it does not need."""

    @wraps(view)
    def with_policy(request: HttpRequest, token: str) -> HttpResponse:
        decorate: Any = csp_replace(embed_policy())  # its types know only views without arguments
        response: HttpResponse = decorate(view)(request, token)
        return response

    return with_policy


@require_safe
@xframe_options_exempt
@_embed_policy
def shared_run_embed(request: HttpRequest, token: str) -> HttpResponse:
    """A compact view for iframes (the only page that may be framed)."""
    link = _active_link(token)
    if (hidden := _hidden(request, link, embed=True)) is not None:
        return hidden
    context = run_context(link.run, _urls(link))
    return render(request, "sharing/embed.html", context)
