"""One evaluation's results as a JSON or CSV file, streamed a chunk of rows at a time (to an
ASGI server too), with the rows hidden from the requester blanked but their key.

Its own file because streaming has machinery of its own (chunked queries, the JSON written by
parts, a CSV writer that hands its lines back, the async iterator) that no page needs."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from playground.benchmarks import paired
from playground.benchmarks.access import visible_evaluations
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.summary import summarise
from playground.benchmarks.views.common import evaluation_or_404, hidden_of
from playground.lib import hiding
from playground.lib.hiding import Hidden
from playground.lib.spreadsheet import spreadsheet_safe

EXPORT_CHUNK = 500
EXPORT_FIELDS = ("id", "evaluation_id", "index", "sample", "item_key", "item_ref", "passed",
                 "leakage", "score_status", "reason", "prediction", "run_id", "lines", "steps",
                 "divergence_step", "path", "prior", "changed")  # fmt: skip
CSV_FIELDS = ["index", "sample", "item", "passed", "leakage", "status", "reason",
              "prediction", "run", "lines", "steps", "divergence_step", "path",
              "prior", "changed"]  # fmt: skip
HIDDEN_ROW = "hidden while an assignment is open"


def _row(result: Result, hidden: set[int]) -> dict[str, Any]:
    """A result as the exports show it, with nothing of a hidden item but its key."""
    row = result.as_dict()
    if result.index in hidden:
        row.update(passed=None, leakage=None, status="hidden", reason=HIDDEN_ROW,
                   prediction="", run=None, divergence_step=None, path="",
                   prior=None, changed=None)  # fmt: skip
    return row


def _export_rows(evaluation: Evaluation, hidden: Hidden) -> Iterator[list[dict[str, Any]]]:
    """Every result as the exports show it, EXPORT_CHUNK at a time in the evaluation's order:
    each chunk one query after the last row of the one before, so that no query, and no more
    than a chunk in memory, grows with the evaluation."""
    after: tuple[int, int] | None = None
    while True:
        rows = Result.objects.filter(evaluation=evaluation).only(*EXPORT_FIELDS)
        if after is not None:
            rows = rows.filter(Q(index__gt=after[0]) | Q(index=after[0], sample__gt=after[1]))
        chunk = list(rows.order_by("index", "sample")[:EXPORT_CHUNK])
        if not chunk:
            return
        hidden_now = hidden_of(hidden, {r.index: r.item_ref for r in chunk})
        yield [_row(result, hidden_now) for result in chunk]
        if len(chunk) < EXPORT_CHUNK:
            return
        after = (chunk[-1].index, chunk[-1].sample)


def _dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _json_parts(summary: dict[str, Any], chunks: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    """The text of ``{"summary": ..., "results": [...]}``, exactly as one ``json.dumps`` of it
    would write it, a chunk of results at a time."""
    yield '{"summary": ' + _dumps(summary) + ', "results": ['
    separator = ""
    for chunk in chunks:
        yield separator + ", ".join(_dumps(row) for row in chunk)
        separator = ", "
    yield "]}"


class _Line:
    """What ``csv.writer`` writes to: each line is handed back rather than stored."""

    def write(self, line: str) -> str:
        return line


def _csv_parts(chunks: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(CSV_FIELDS)
    for chunk in chunks:
        yield "".join(
            writer.writerow([spreadsheet_safe(row[f]) for f in CSV_FIELDS]) for row in chunk
        )


async def _async_parts(parts: Iterator[str]) -> AsyncIterator[str]:
    """The same parts for an ASGI server, each made in the thread that holds the database
    connection (Django would otherwise read a sync iterator to its end before sending)."""
    while (part := await sync_to_async(_next)(parts)) is not None:
        yield part


def _next(parts: Iterator[str]) -> str | None:
    return next(parts, None)


def _streamed(
    request: HttpRequest, parts: Iterator[str], content_type: str
) -> StreamingHttpResponse:
    content = _async_parts(parts) if isinstance(request, ASGIRequest) else parts
    return StreamingHttpResponse(content, content_type=content_type)


def export_json(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    evaluation = evaluation_or_404(request, pk)
    chunks = _export_rows(evaluation, hiding.policy().hidden_for(request.user))
    summary = summarise(evaluation)
    # Under a rule against its standard twin (or, for a standard one, each rule's): counts only.
    summary["paired"] = paired.figures(evaluation, visible_evaluations(request))
    return _streamed(request, _json_parts(summary, chunks), "application/json")


def export_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    evaluation = evaluation_or_404(request, pk)
    chunks = _export_rows(evaluation, hiding.policy().hidden_for(request.user))
    response = _streamed(request, _csv_parts(chunks), "text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{evaluation.pk}.csv"'
    return response


def _generation_parts(evaluation: Evaluation, hidden: Hidden) -> Iterator[str]:
    """``{"sample_0": ["...", ...], ...}`` (CRUXEval's generations format: each item's
    predictions in sample order), written a chunk of results at a time; a pending sample (an
    evaluation still running) is ``""``, which the official scorer fails."""
    yield "{"
    key: str | None = None
    generations: list[str] = []
    first = True
    for chunk in _export_rows(evaluation, hidden):
        for row in chunk:
            if row["item"] != key:
                if key is not None:
                    yield ("" if first else ", ") + _dumps(key) + ": " + _dumps(generations)
                    first = False
                key, generations = row["item"], []
            generations.append(row["prediction"] or "")
    if key is not None:
        yield ("" if first else ", ") + _dumps(key) + ": " + _dumps(generations)
    yield "}"


def export_generations(request: HttpRequest, pk: int) -> HttpResponse | StreamingHttpResponse:
    """A CRUXEval evaluation's predictions in CRUXEval's own generations format, which
    ``manage.py bench import`` reads back (to the same scores, under the official rules)."""
    evaluation = evaluation_or_404(request, pk)
    if evaluation.dataset != Dataset.CRUXEVAL:
        return HttpResponse(
            "Only a CRUXEval evaluation has an export in CRUXEval's generations format; the "
            "JSON and CSV exports have every evaluation's predictions.",
            status=404, content_type="text/plain; charset=utf-8",
        )  # fmt: skip
    hidden = hiding.policy().hidden_for(request.user)
    refs = dict(
        Result.objects.filter(evaluation=evaluation, sample=0).values_list("index", "item_ref")
    )
    if hidden_of(hidden, refs):
        return HttpResponse(
            "Some of this evaluation's items belong to an assignment that is open for you: its "
            "generations file is complete only once the assignment has closed. The JSON and CSV "
            "exports have the other rows now.",
            status=409, content_type="text/plain; charset=utf-8",
        )  # fmt: skip
    parts = _generation_parts(evaluation, hidden)
    response = _streamed(request, parts, "application/json")
    name = f"evaluation-{evaluation.pk}-{evaluation.task}-generations.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
