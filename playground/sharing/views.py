"""Creating and revoking share links (owner only), and the public read-only and embed views."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from playground.classroom import guards
from playground.runs.access import get_run_for_user
from playground.runs.views import progress_context, run_context
from playground.sharing.models import ShareLink


def _active_link(token: str) -> ShareLink:
    try:
        return ShareLink.objects.active().select_related("run__program").get(token=token)
    except ShareLink.DoesNotExist:
        raise Http404("This link does not exist or was revoked.") from None


@require_POST
def create_link(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request, pk)
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
    if not guards.shared_run_hidden(link.run):
        return None
    if embed:
        context = {"message": guards.SHARED_HIDDEN_MESSAGE}
        return render(request, "sharing/hidden_embed.html", context, status=404)
    return guards.hidden_page(request, guards.SHARED_HIDDEN_MESSAGE, status=404)


def shared_run(request: HttpRequest, token: str) -> HttpResponse:
    link = _active_link(token)
    if (hidden := _hidden(request, link)) is not None:
        return hidden
    context = run_context(link.run, shared_token=link.token)
    return render(request, "runs/run_detail.html", context)


def shared_status(request: HttpRequest, token: str) -> HttpResponse:
    """The slow-poll fallback for a shared live run."""
    link = _active_link(token)
    if (hidden := _hidden(request, link)) is not None:
        return hidden
    if link.run.is_finished and request.htmx:  # type: ignore[attr-defined]
        return HttpResponseClientRefresh()
    return render(
        request, "runs/run_detail.html#progress", progress_context(link.run, shared_token=token)
    )


@xframe_options_exempt
def shared_run_embed(request: HttpRequest, token: str) -> HttpResponse:
    """A compact view for iframes (the only page that may be framed)."""
    link = _active_link(token)
    if (hidden := _hidden(request, link, embed=True)) is not None:
        return hidden
    context = run_context(link.run, shared_token=link.token)
    return render(request, "sharing/embed.html", context)
