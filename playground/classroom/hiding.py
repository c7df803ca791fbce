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
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from playground.classroom.models import (
    Assignment,
    Extension,
    Item,
    Membership,
    Role,
    source_key,
)

__all__ = ["source_key"]  # where the policy's callers have always found it


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
    # About nothing in particular (exam mode):
    START_EVALUATION = "start evaluation"
    NEW_COURSE = "new course"


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


class Verdict(enum.IntEnum):
    """Ordered: the strictest verdict over several assignments wins."""

    SHOW = 0
    HIDDEN = 1  # show nothing of the result; refuse to start with HIDDEN_MESSAGE; share link: 404
    EXAM = 2  # refuse with the exam message


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
    surface: Surface, viewer: Viewer, state: State, *, exam_mode: bool, is_item: bool
) -> Verdict:
    """The hiding policy for one assignment: may this ``viewer`` (their role in the
    assignment's course) see or start this ``surface`` while the assignment is in ``state``?
    ``is_item``: the thing on the surface (its program text or puzzle) is an item of the
    assignment."""
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
