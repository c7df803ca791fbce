"""A run's real trace as a download in CWM's trace format (``compare/cwm.py``): for the run's
owner here, for a share link's holder in ``sharing/views.py``, with the trace JSON's access
rules (and hidden while an assignment hides the run)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from playground.compare import cwm
from playground.lib import hiding
from playground.runs.access import get_run_for_user
from playground.runs.models import Run


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def cwm_download(run: Run) -> HttpResponse:
    """The run's real trace in CWM's format, as a text attachment (404 without one)."""
    trace = run.real_trace
    if trace is None:
        return _text("This run has no real trace (yet).", 404)
    text = cwm.export(trace.data, run.source, call=run.call)
    response = _text(text, 200)
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-trace.cwm.txt"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
def run_trace_cwm(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner's download (``/runs/<id>/trace.cwm.txt``): whoever may read trace.json."""
    run = get_run_for_user(request, pk)
    visibility = hiding.policy()
    if visibility.hidden_for(request.user).run(run):
        return _text(visibility.hidden_message, 403)
    return cwm_download(run)
