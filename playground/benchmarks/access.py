"""Who may see an evaluation: anyone the finished ones of the shared data sets (the
leaderboard), and its owner every one of their own. A file of its own, as ``runs/access.py`` and
``programs/access.py`` are, because the evaluation pages and the JSON API's list both apply it."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest

from playground.benchmarks.models import Dataset, Evaluation


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
