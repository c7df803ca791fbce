"""Where the hiding rules (``hiding``) meet the rest of the site: whether a run may start, whether
a run's results may be shown, and the pages that say no."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import dateformat, timezone

from playground.classroom.hiding import (
    EXAM_MESSAGE,
    HIDDEN_MESSAGE,
    Hidden,
    hidden_for,
    in_open_assignment,
)
from playground.classroom.models import Assignment

SHARED_HIDDEN_MESSAGE = (
    "This run is hidden while an assignment with its program is open in a course. "
    "The link works again once the assignment has closed."
)


def site_time(when: Any) -> str:
    """An instant in the site's time zone, as pages show it (e.g. 3 Dec 2026, 17:00 PST)."""
    return dateformat.format(timezone.localtime(when), "j M Y, H:i T")


def exam_message(assignment: Assignment, user: Any) -> str:
    return EXAM_MESSAGE.format(end=site_time(assignment.window(user)[1]))


def run_start_refusal(
    user: Any,
    *,
    source: str | None = None,
    puzzle_id: int | None = None,
    hidden: Hidden | None = None,
) -> str | None:
    """Why this person may not start a run of this program text or puzzle now (exam mode: no
    run at all), or None when they may."""
    hidden = hidden if hidden is not None else hidden_for(user)
    if hidden.exam is not None:
        return exam_message(hidden.exam, user)
    if puzzle_id is not None and puzzle_id in hidden.puzzles:
        return HIDDEN_MESSAGE
    if source is not None and hidden.program(source):
        return HIDDEN_MESSAGE
    return None


def run_hidden_from(user: Any, run: Any) -> bool:
    """Whether this run's results are hidden from this person (a student of an open
    assignment with its program or puzzle)."""
    return hidden_for(user).run(run)


def shared_run_hidden(run: Any) -> bool:
    """Whether a share link of this run must show nothing (it could reach a student)."""
    return in_open_assignment(run)


def hidden_page(
    request: HttpRequest, message: str = HIDDEN_MESSAGE, *, status: int = 403
) -> HttpResponse:
    """The page that says what is hidden and why (403 for the person, 404 for a share link)."""
    return render(request, "classroom/hidden.html", {"message": message}, status=status)
