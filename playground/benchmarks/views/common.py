"""What the evaluation pages share: an evaluation the requester may see (or a 404), and which of
its items the hiding policy hides from them (an open assignment holds the program or puzzle).

Its own file because the page of an evaluation, its exports and the compare page all need both,
and each topic module of this package imports them from here instead of from one another."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest

from playground.benchmarks.access import visible_evaluations
from playground.benchmarks.models import Evaluation, Result
from playground.lib import hiding
from playground.lib.hiding import Hidden, Surface, Verdict
from playground.programs.models import Program


def evaluation_or_404(request: HttpRequest, pk: int) -> Evaluation:
    evaluation = visible_evaluations(request).filter(pk=pk).first()
    if evaluation is None:
        raise Http404("No such evaluation.")
    return evaluation


def hidden_items(request: HttpRequest, evaluation: Evaluation) -> set[int]:
    """The items (by index) of this evaluation whose results are hidden from the requester: a
    student's open assignment holds their program or puzzle (the hiding policy's
    ``EVALUATION`` surface). Their rows show no prediction, verdict, reason or run."""
    hidden = hiding.policy().hidden_for(request.user)
    if not hidden.anything:
        return set()
    refs = dict(
        Result.objects.filter(evaluation=evaluation, sample=0).values_list("index", "item_ref")
    )
    return hidden_of(hidden, refs)


def hidden_of(hidden: Hidden, refs: dict[int, Any]) -> set[int]:
    """Which of these items (index: reference) are hidden; a page or a chunk of rows at a time."""
    if not hidden.anything:
        return set()
    program_ids = {ref["program"] for ref in refs.values() if "program" in ref}
    sources = dict(Program.objects.filter(pk__in=program_ids).values_list("pk", "source"))
    out: set[int] = set()
    for index, ref in refs.items():
        source = sources.get(ref.get("program"))
        verdict = hidden.verdict(Surface.EVALUATION, source=source, puzzle_id=ref.get("puzzle"))
        if verdict is not Verdict.SHOW:
            out.add(index)
    return out
