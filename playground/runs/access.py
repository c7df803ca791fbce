"""Who may see a run: whoever started it (account or anonymous session)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from playground.programs.access import anon_token
from playground.runs.models import Run


def runs_of(request: HttpRequest) -> QuerySet[Run]:
    if request.user.is_authenticated:
        return Run.objects.filter(owner=request.user)
    token = anon_token(request)
    if not token:
        return Run.objects.none()
    return Run.objects.filter(owner__isnull=True, anon_owner=token)


def get_run_for_user(request: HttpRequest, pk: int) -> Run:
    """The run, or 404 when it does not exist or belongs to someone else."""
    try:
        return runs_of(request).select_related("program").get(pk=pk)
    except Run.DoesNotExist:
        raise Http404("No such run, or it is not yours.") from None
