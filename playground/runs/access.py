"""Who may see a run: whoever started it (account or anonymous session)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from playground.programs.access import anon_token
from playground.programs.signals import ANON_TOKEN_KEY
from playground.runs.models import Run


def runs_visible_to(user: Any, token: str | None) -> QuerySet[Run]:
    """The runs of this account, or of this anonymous session's owner token."""
    if getattr(user, "is_authenticated", False):
        return Run.objects.filter(owner=user)
    if not token:
        return Run.objects.none()
    return Run.objects.filter(owner__isnull=True, anon_owner=token)


def runs_of(request: HttpRequest) -> QuerySet[Run]:
    return runs_visible_to(request.user, anon_token(request))


def still_active(user: Any) -> bool:
    """False for an account that was disabled since ``user`` was loaded (a long-lived stream's
    user object is read once, when it opens); True for visitors and active accounts."""
    if user is None or not user.is_authenticated:
        return True
    return get_user_model().objects.filter(pk=user.pk, is_active=True).exists()


def run_for_scope(scope: dict[str, Any], pk: int) -> Run | None:
    """The run if the websocket's user or session may see it (Channels' auth middleware).
    The account is read again each time: one that staff disabled loses its views at the next
    check, though the connection's user object was loaded when it opened."""
    user = scope.get("user")
    if not still_active(user):
        return None
    session = scope.get("session")
    token = session.get(ANON_TOKEN_KEY) if session is not None else None
    return runs_visible_to(user, token).filter(pk=pk).first()


def get_run_for_user(request: HttpRequest, pk: int) -> Run:
    """The run, or 404 when it does not exist or belongs to someone else."""
    try:
        return runs_of(request).select_related("program", "puzzle", "task_example__task").get(pk=pk)
    except Run.DoesNotExist:
        raise Http404("No such run, or it is not yours.") from None
