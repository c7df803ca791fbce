"""The hook through which exam and assignment hiding reaches the rooms below ``classroom``.

The policy lives in ``playground/classroom/visibility.py``; programs, runs, streaming, sharing,
benchmarks and the API must obey it but sit below ``classroom``, so they ask ``policy()`` here and
``ClassroomConfig.ready()`` calls ``register``. Its own small file so that the arrows point down.

Nothing registered is a fault, never "nothing hidden": ``policy()`` raises ``PolicyMissing``, so
a page fails instead of showing an answer that an open assignment hides (a classroom site would
leak; tests/lib/test_hiding_hook.py holds this).
"""

from __future__ import annotations

import enum
from typing import Any, Protocol

from django.http import HttpRequest, HttpResponse


class Surface(enum.Enum):
    """Where a result (or a way to get one) could reach a person."""

    # About one program or puzzle ("the thing"), which may or may not be an item:
    LIBRARY = "library page"  # its page: expected result, reference solutions, the run form
    RUN = "run"  # a run of it: page, status, trace.json, API, event stream, websocket, my runs
    START_RUN = "start run"  # starting a run of it (pages, API, an evaluation over a list)
    EVALUATION = "evaluation rows"  # its rows in evaluations: detail, JSON, CSV, compare
    PREVIEW = "answer-key preview"  # the key preview of an item with it, in a course one teaches
    SAVE_ITEM = "save item"  # creating or saving an item with it (the key is a real run)
    SHARE = "share link"  # a share link or embed of a run of it, whoever holds the link
    # A student's own results of an item (score, marks, the answer once revealed): the item's
    # results rule (at once, after the due time, once published, never) and exam mode decide.
    SCORE = "own results"
    # About nothing in particular (exam mode):
    START_EVALUATION = "start evaluation"
    NEW_COURSE = "new course"


class Verdict(enum.IntEnum):
    """Ordered: the strictest verdict over several assignments wins."""

    SHOW = 0
    HIDDEN = 1  # show nothing of the result; refuse to start with HIDDEN_MESSAGE; share link: 404
    EXAM = 2  # refuse with the exam message


class Hidden(Protocol):
    """What one person may not see or start right now."""

    @property
    def anything(self) -> bool: ...
    def verdict(
        self, surface: Surface, *, source: str | None = None, puzzle_id: int | None = None
    ) -> Verdict: ...
    def program(self, source: str) -> bool: ...
    def puzzle(self, puzzle_id: int) -> bool: ...
    def run(self, run: Any) -> bool: ...


class Policy(Protocol):
    """What the rooms below ``classroom`` ask of the hiding policy."""

    hidden_message: str  # a result is hidden from this person
    shared_hidden_message: str  # a share link shows nothing for now

    def hidden_for(self, user: Any) -> Hidden: ...
    def refusal(
        self,
        user: Any,
        surface: Surface,
        *,
        source: str | None = None,
        puzzle_id: int | None = None,
        hidden: Any = None,
    ) -> str | None: ...
    def run_start_refusal(
        self,
        user: Any,
        *,
        source: str | None = None,
        puzzle_id: int | None = None,
        hidden: Any = None,
    ) -> str | None: ...
    def shared_run_hidden(self, run: Any) -> bool: ...
    def page(self, request: HttpRequest, message: str, *, status: int = 403) -> HttpResponse: ...


class PolicyMissing(RuntimeError):
    """No hiding policy is registered (the classroom app is not installed or not ready)."""


_registered: list[Policy] = []


def register(policy: Policy) -> None:
    """Make ``policy`` the site's hiding policy (``ClassroomConfig.ready()``; again: replaced)."""
    _registered[:] = [policy]


def policy() -> Policy:
    """The registered hiding policy; ``PolicyMissing`` when there is none (fail closed)."""
    if not _registered:
        raise PolicyMissing("no hiding policy is registered: is playground.classroom installed?")
    return _registered[0]
