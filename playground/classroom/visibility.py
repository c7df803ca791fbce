"""Keeping answers hidden: the one policy, and what it needs to know about a person.

While an assignment is open (from the moment it opens until its last window, extensions
included, has ended), the real results of its items must not reach its students anywhere: not
on a library page, not in a run of the same code, not through the API, a websocket, an event
stream, a share link, an evaluation's rows or the answer-key preview of a course they teach
themselves. In exam mode the course's students start nothing during their window: no run, no
evaluation, no course, no item and no preview.

``decide`` is that policy, for one surface, one person's role in one assignment and the
assignment's state; it is the only place the rules live, and tests/classroom/test_hiding_policy.py
holds it to a written table. Everything else here works out, for a person, which assignments
matter and in which state they are, and takes the strictest verdict over them.

An assignment that has not opened yet hides nothing: before it opens, nobody should be able to
tell which library items it holds. Hiding is per account: a signed-out visitor (or a second
account) sees what everyone sees, which is why exam rooms should require sign-in to run
(``PLAYGROUND_RUN_REQUIRES_LOGIN``) and proctoring. A program is recognised by its text
(trailing spaces and blank edge lines ignored); an edited copy is a different program, which is
why exam mode exists.

The second half is where the policy meets the rest of the site (what used to be ``guards``):
whether something may start, whether a result may be shown, and the page that says no. Every
surface asks there (or ``Hidden.verdict``), never the assignments directly. The rooms below
``classroom`` (programs, runs, streaming, sharing, benchmarks, the API) reach it only through
``playground.lib.hiding``, which ``ClassroomConfig.ready()`` fills with ``POLICY``.

One file, over the usual ~400 lines, because it is one policy: the rules, what they need to know
about a person, and the answers the site asks for are read together when the policy changes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import dateformat, timezone

from playground.classroom.models import (
    Assignment,
    Extension,
    Item,
    Membership,
    Results,
    Role,
    results_rule,
    source_key,
)
from playground.lib.hiding import Surface, Verdict

# Where the policy's callers (and its table test) have always found these.
__all__ = ["Surface", "Verdict", "source_key"]


class Viewer(enum.Enum):
    """A person's role in the course of one assignment."""

    ANONYMOUS = "anonymous"
    OUTSIDER = "not in the course"
    STUDENT = "student"
    ASSISTANT = "assistant"
    INSTRUCTOR = "instructor"


class State(enum.Enum):
    """An assignment's state, seen from one person (a student's own window, extensions applied)."""

    UPCOMING = "not open yet"
    OPEN = "open"  # before the person's due time
    LATE = "late period"  # after the due time, before the end of the person's late period
    OTHERS = "others still working"  # the person's window has ended, someone's extension has not
    CLOSED = "closed"  # every window has ended


_HIDING = frozenset({State.OPEN, State.LATE, State.OTHERS})
_EXAM_WINDOW = frozenset({State.OPEN, State.LATE})
_ABOUT_THE_THING = frozenset(
    {
        Surface.LIBRARY,
        Surface.RUN,
        Surface.START_RUN,
        Surface.EVALUATION,
        Surface.PREVIEW,
        Surface.SAVE_ITEM,
    }
)
_STARTS_WORK = frozenset(
    {
        Surface.START_RUN,
        Surface.SAVE_ITEM,
        Surface.PREVIEW,
        Surface.START_EVALUATION,
        Surface.NEW_COURSE,
    }
)


def decide(
    surface: Surface,
    viewer: Viewer,
    state: State,
    *,
    exam_mode: bool,
    is_item: bool,
    results: str = Results.NOW,
    published: bool = False,
) -> Verdict:
    """The hiding policy for one assignment: may this ``viewer`` (their role in the
    assignment's course) see or start this ``surface`` while the assignment is in ``state``?
    ``is_item``: the thing on the surface (its program text or puzzle) is an item of the
    assignment. For a student's own results (``Surface.SCORE``): ``results``, the item's rule
    (``models.results_rule``), and ``published``, whether an instructor has published them."""
    if surface is Surface.SCORE:
        return _results(viewer, state, exam_mode, is_item, results, published)
    if surface is Surface.SHARE:
        # A link reaches whoever holds it, students included: nobody, while it hides.
        return Verdict.HIDDEN if is_item and state in _HIDING else Verdict.SHOW
    if viewer is not Viewer.STUDENT:
        return Verdict.SHOW
    if exam_mode and state in _EXAM_WINDOW and surface in _STARTS_WORK:
        return Verdict.EXAM
    if is_item and state in _HIDING and surface in _ABOUT_THE_THING:
        return Verdict.HIDDEN
    return Verdict.SHOW


def _results(
    viewer: Viewer, state: State, exam_mode: bool, is_item: bool, results: str, published: bool
) -> Verdict:
    """A student's own results of an item: never, if the item says so; else once published
    always; before that, never in exam mode, and otherwise as the item's rule says (after the
    due time: once the student's own window, late period and extension included, has ended)."""
    if viewer is not Viewer.STUDENT or not is_item:
        return Verdict.SHOW
    if results == Results.NEVER:
        return Verdict.HIDDEN
    if published:
        return Verdict.SHOW
    if exam_mode or results == Results.PUBLISHED:
        return Verdict.HIDDEN
    if results == Results.DUE and state not in (State.OTHERS, State.CLOSED):
        return Verdict.HIDDEN
    return Verdict.SHOW


def results_shown(
    item: Item, student: Any, now: datetime | None = None, *, state: State | None = None
) -> bool:
    """Whether this student may see their results of this item now (the policy's
    ``Surface.SCORE``, for their own window; ``state``: the assignment's for them, when the
    caller has it already)."""
    now = now or timezone.now()
    assignment = item.assignment
    verdict = decide(
        Surface.SCORE,
        Viewer.STUDENT,
        state if state is not None else state_of(assignment, student, now),
        exam_mode=assignment.exam_mode,
        is_item=True,
        results=results_rule(item),
        published=assignment.is_published(now),
    )
    return verdict is Verdict.SHOW


RESULTS_WAIT: dict[str, str] = {
    Results.PUBLISHED: "Results of this item are shown once your instructor publishes them.",
    Results.NEVER: "Results of this item are not shown to students.",
}
EXAM_RESULTS_WAIT = "Exam: results are shown once your instructor publishes them."


def results_wait(item: Item, end: datetime) -> str:
    """What a student is told while their results of this item are not shown (``end``: the end
    of their window)."""
    rule = results_rule(item)
    if rule != Results.NEVER and item.assignment.exam_mode:
        return EXAM_RESULTS_WAIT
    return RESULTS_WAIT.get(str(rule), f"Results are shown after {site_time(end)}.")


def state_of(assignment: Assignment, person: Any = None, now: datetime | None = None) -> State:
    """The assignment's state for this person (``None``: nobody's own window, e.g. a share
    link's holder; then only "upcoming", "open" and "closed" are told apart)."""
    now = now or timezone.now()
    if now < assignment.opens_at:
        return State.UPCOMING
    if now > assignment.closes_at():
        return State.CLOSED
    if person is None:
        return State.OPEN
    due, end = assignment.window(person)
    if now <= due:
        return State.OPEN
    if now <= end:
        return State.LATE
    return State.OTHERS


@dataclass
class _Seen:
    """One assignment as one student sees it now: its state and what its items are."""

    assignment: Assignment
    state: State
    sources: frozenset[str]
    puzzles: frozenset[int]

    def verdict(
        self, surface: Surface, *, source: str | None = None, puzzle_id: int | None = None
    ) -> Verdict:
        key = source_key(source) if source is not None and self.sources else None
        is_item = (key is not None and key in self.sources) or (
            puzzle_id is not None and puzzle_id in self.puzzles
        )
        return decide(
            surface,
            Viewer.STUDENT,
            self.state,
            exam_mode=self.assignment.exam_mode,
            is_item=is_item,
        )


@dataclass
class Hidden:
    """What one person may not see or start right now: the strictest verdict over the
    assignments of the courses they are a student of."""

    seen: list[_Seen] = field(default_factory=list)

    def verdict(
        self, surface: Surface, *, source: str | None = None, puzzle_id: int | None = None
    ) -> Verdict:
        return max(
            (s.verdict(surface, source=source, puzzle_id=puzzle_id) for s in self.seen),
            default=Verdict.SHOW,
        )

    @property
    def exam(self) -> Assignment | None:
        """The exam-mode assignment whose window this person is in, if any."""
        for s in self.seen:
            if s.verdict(Surface.NEW_COURSE) is Verdict.EXAM:
                return s.assignment
        return None

    @property
    def anything(self) -> bool:
        """Whether anything at all is hidden from this person (most people: no)."""
        return any(s.state in _HIDING for s in self.seen)

    def program(self, source: str) -> bool:
        """Whether results of this program text are hidden (pages, runs, evaluations)."""
        return self.verdict(Surface.RUN, source=source) is not Verdict.SHOW

    def puzzle(self, puzzle_id: int) -> bool:
        return self.verdict(Surface.RUN, puzzle_id=puzzle_id) is not Verdict.SHOW

    def run(self, run: Any) -> bool:
        """Whether this run's results are hidden from this person."""
        if run.puzzle_id is not None:
            return self.puzzle(run.puzzle_id)
        return self.program(run.source)


def _not_closed(now: datetime) -> Q:
    """Assignments that have opened and whose last window may not have ended (a cheap filter
    before ``closes_at``): an upcoming one hides nothing, so it is not even loaded."""
    return Q(opens_at__lte=now) & (
        Q(due_at__gte=now)
        | Q(late_until__gte=now)
        | Q(extensions__due_at__gte=now)
        | Q(extensions__late_until__gte=now)
    )


def _items_by_assignment(ids: Iterable[int]) -> dict[int, list[Item]]:
    by: dict[int, list[Item]] = {}
    items = Item.objects.filter(assignment_id__in=list(ids))
    for item in items.only("assignment_id", "source_key", "puzzle_id"):
        by.setdefault(item.assignment_id, []).append(item)
    return by


def _seen(assignment: Assignment, state: State, items: list[Item]) -> _Seen:
    return _Seen(
        assignment=assignment,
        state=state,
        sources=frozenset(i.source_key for i in items if i.source_key),
        puzzles=frozenset(i.puzzle_id for i in items if i.puzzle_id is not None),
    )


def hidden_for(user: Any) -> Hidden:
    """What is hidden from this user: the assignments of the courses they are a student of,
    each in its state for them. Staff, outsiders and anonymous visitors see everything (the
    policy says so for every surface but share links, which ``shared_run_hidden`` decides)."""
    if not getattr(user, "is_authenticated", False):
        return Hidden()
    now = timezone.now()
    assignments = list(
        Assignment.objects.filter(
            _not_closed(now),
            course__memberships__user=user,
            course__memberships__role=Role.STUDENT,
        )
        .distinct()
        .prefetch_related("extensions")
    )
    states = {a.pk: state_of(a, user, now) for a in assignments}
    live = [a for a in assignments if states[a.pk] in _HIDING]
    items = _items_by_assignment(a.pk for a in live)
    return Hidden([_seen(a, states[a.pk], items.get(a.pk, [])) for a in live])


def in_open_assignment(run: Any) -> bool:
    """Whether a share link of this run must show nothing to anyone: the run is of an item of
    an assignment that has opened, has not closed and has students (whoever holds the link
    could be one of them).

    One query on the items' cached program keys (an index), whatever number of assignments
    exists: ``_not_closed`` and the opening compare the same instants as ``state_of``."""
    if run.puzzle_id is not None:
        items = Item.objects.filter(puzzle_id=run.puzzle_id)
    elif run.program_id is not None or run.source:
        # The same text in another program (a copy) counts: the key, not the program's id.
        items = Item.objects.filter(source_key=source_key(run.source))
    else:
        return False
    now = timezone.now()
    extended = Extension.objects.filter(assignment_id=OuterRef("assignment_id")).filter(
        Q(due_at__gte=now) | Q(late_until__gte=now)
    )
    students = Membership.objects.filter(
        course_id=OuterRef("assignment__course_id"), role=Role.STUDENT
    )
    open_items = items.filter(
        Q(assignment__opens_at__lte=now),
        Q(assignment__due_at__gte=now) | Q(assignment__late_until__gte=now) | Exists(extended),
        Exists(students),
    )
    if not open_items.exists():
        return False
    # What the policy says of a share link of an item of an open assignment.
    verdict = decide(Surface.SHARE, Viewer.ANONYMOUS, State.OPEN, exam_mode=False, is_item=True)
    return verdict is not Verdict.SHOW


HIDDEN_MESSAGE = (
    "This program is part of an assignment that is still open in one of your courses: its "
    "results are hidden until the assignment closes."
)
EXAM_MESSAGE = (
    "Exam mode: until {end}, the students of your course cannot run programs, start "
    "evaluations, or create courses and items."
)


SHARED_HIDDEN_MESSAGE = (
    "This run is hidden while an assignment with its program is open in a course. "
    "The link works again once the assignment has closed."
)
SIGN_IN_MESSAGE = "Sign in to run programs on this site."


def site_time(when: Any, *, seconds: bool = False) -> str:
    """An instant in the active time zone (the site's, or a course's while its pages render),
    as pages show it (e.g. 3 Dec 2026, 17:00 PST; with ``seconds``, 17:00:05)."""
    return dateformat.format(
        timezone.localtime(when), "j M Y, H:i:s T" if seconds else "j M Y, H:i T"
    )


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


class ClassroomPolicy:
    """This policy, as ``playground.lib.hiding`` hands it to the rooms below ``classroom``."""

    hidden_message = HIDDEN_MESSAGE
    shared_hidden_message = SHARED_HIDDEN_MESSAGE

    def hidden_for(self, user: Any) -> Hidden:
        return hidden_for(user)

    def refusal(
        self,
        user: Any,
        surface: Surface,
        *,
        source: str | None = None,
        puzzle_id: int | None = None,
        hidden: Any = None,
    ) -> str | None:
        return refusal(user, surface, source=source, puzzle_id=puzzle_id, hidden=hidden)

    def run_start_refusal(
        self,
        user: Any,
        *,
        source: str | None = None,
        puzzle_id: int | None = None,
        hidden: Any = None,
    ) -> str | None:
        return run_start_refusal(user, source=source, puzzle_id=puzzle_id, hidden=hidden)

    def shared_run_hidden(self, run: Any) -> bool:
        return shared_run_hidden(run)

    def page(self, request: HttpRequest, message: str, *, status: int = 403) -> HttpResponse:
        return hidden_page(request, message, status=status)


POLICY = ClassroomPolicy()
