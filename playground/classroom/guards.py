"""Where the hiding policy (``hiding.decide``) meets the rest of the site: whether something may
start, whether a result may be shown, and the pages that say no. Every surface asks here (or
``Hidden.verdict``), never the assignments directly."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import dateformat, timezone

from playground.classroom.hiding import (
    EXAM_MESSAGE,
    HIDDEN_MESSAGE,
    Hidden,
    Surface,
    Verdict,
    hidden_for,
    in_open_assignment,
)
from playground.classroom.models import Assignment

SHARED_HIDDEN_MESSAGE = (
    "This run is hidden while an assignment with its program is open in a course. "
    "The link works again once the assignment has closed."
)
SIGN_IN_MESSAGE = "Sign in to run programs on this site."


def site_time(when: Any) -> str:
    """An instant in the site's time zone, as pages show it (e.g. 3 Dec 2026, 17:00 PST)."""
    return dateformat.format(timezone.localtime(when), "j M Y, H:i T")


def exam_message(assignment: Assignment, user: Any) -> str:
    return EXAM_MESSAGE.format(end=site_time(assignment.window(user)[1]))


def refusal(
    user: Any,
    surface: Surface,
    *,
    source: str | None = None,
    puzzle_id: int | None = None,
    hidden: Hidden | None = None,
) -> str | None:
    """Why this person may not start ``surface`` (a run, an evaluation, a course, an item, a
    preview) of this program text or puzzle now, or None when they may."""
    hidden = hidden if hidden is not None else hidden_for(user)
    verdict = hidden.verdict(surface, source=source, puzzle_id=puzzle_id)
    if verdict is Verdict.EXAM:
        exam = hidden.exam
        assert exam is not None
        return exam_message(exam, user)
    if verdict is Verdict.HIDDEN:
        return HIDDEN_MESSAGE
    return None


def run_start_refusal(
    user: Any,
    *,
    source: str | None = None,
    puzzle_id: int | None = None,
    hidden: Hidden | None = None,
) -> str | None:
    """Why this person may not start a run of this program text or puzzle now (exam mode: no
    run at all; a site that requires sign-in to run: no anonymous run), or None when they may."""
    if settings.PLAYGROUND_RUN_REQUIRES_LOGIN and not getattr(user, "is_authenticated", False):
        return SIGN_IN_MESSAGE
    return refusal(user, Surface.START_RUN, source=source, puzzle_id=puzzle_id, hidden=hidden)


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
    """The page that says what is hidden or refused and why (403 for the person, 404 for a
    share link)."""
    if message == SIGN_IN_MESSAGE:
        title = "Sign in to run"
    elif message.startswith("Exam mode"):
        title = "Exam mode"
    else:
        title = "Hidden for now"
    context = {"message": message, "title": title, "sign_in": message == SIGN_IN_MESSAGE}
    return render(request, "classroom/hidden.html", context, status=status)
