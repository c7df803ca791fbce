"""Who may see an evaluation: anyone the finished ones of the shared data sets (the
leaderboard), and its owner every one of their own; and which programs an evaluation may list.
A file of its own, as ``runs/access.py`` and ``programs/access.py`` are, because the evaluation
pages, the JSON API's list, the form and the batch worker all apply it."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest

from playground.benchmarks.models import Dataset, Evaluation
from playground.programs.models import Program


def public_evaluations() -> QuerySet[Evaluation]:
    """Finished evaluations of the shared data sets: the leaderboard. An evaluation of a list
    of programs stays its owner's (the list may hold their private programs; one made from the
    command line has no owner and is nobody's to read on the site)."""
    return (
        Evaluation.objects.filter(status=Evaluation.Status.DONE)
        .exclude(dataset=Dataset.PROGRAMS)
        .select_related("owner")  # the leaderboard names each row's owner
    )


def visible_evaluations(request: HttpRequest) -> QuerySet[Evaluation]:
    """Finished public evaluations, and every evaluation of the requester's own."""
    mine = Evaluation.objects.none()
    if request.user.is_authenticated:
        mine = Evaluation.objects.filter(owner_id=request.user.pk)
    return public_evaluations() | mine


def listable_programs(owner: Any) -> Any:
    """The programs an evaluation may list: the owner's own and public ones (the command line,
    with no owner, is the operator: every program)."""
    if owner is None:
        return Program.objects.all()
    if not getattr(owner, "pk", None):
        return Program.objects.none()
    return Program.objects.filter(Q(owner_id=owner.pk) | Q(is_public=True))
