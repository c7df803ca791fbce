"""Keeping answers hidden: while an assignment is open (until its last window, extensions
included, has ended), the real results of its items must not reach its students anywhere: not
on a library page, not in a run of the same code, not through the API, a websocket, an event
stream or a share link. In exam mode the course's students cannot start runs at all during
the window.

A program is recognised by its text (trailing spaces and blank edge lines ignored); an edited
copy is a different program, which is why exam mode exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils import timezone

from playground.classroom.models import Assignment, Item, Role


def source_key(source: str) -> str:
    lines = [line.rstrip() for line in source.replace("\r\n", "\n").split("\n")]
    text = "\n".join(lines).strip("\n")
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Hidden:
    """What one person may not see right now."""

    sources: set[str] = field(default_factory=set)
    puzzles: set[int] = field(default_factory=set)
    exam: Assignment | None = None

    def program(self, source: str) -> bool:
        return bool(self.sources) and source_key(source) in self.sources

    def run(self, run: Any) -> bool:
        """Whether this run's results are hidden from this person."""
        if run.puzzle_id is not None:
            return run.puzzle_id in self.puzzles
        return self.program(run.source)


def _possibly_open(now: Any) -> Q:
    """Assignments whose last window may not have ended (a cheap filter before closes_at)."""
    return (
        Q(due_at__gte=now)
        | Q(late_until__gte=now)
        | Q(extensions__due_at__gte=now)
        | Q(extensions__late_until__gte=now)
    )


def _open_items(assignments: Any) -> list[Item]:
    now = timezone.now()
    open_ids = [a.pk for a in assignments if a.hides_answers(now)]
    if not open_ids:
        return []
    return list(Item.objects.filter(assignment_id__in=open_ids).select_related("program"))


def hidden_for(user: Any) -> Hidden:
    """What is hidden from this user: the items of open assignments in the courses they are a
    student of. Staff and people in no course see everything."""
    if not getattr(user, "is_authenticated", False):
        return Hidden()
    assignments = list(
        Assignment.objects.filter(
            _possibly_open(timezone.now()),
            course__memberships__user=user,
            course__memberships__role=Role.STUDENT,
        )
        .distinct()
        .prefetch_related("extensions")
    )
    hidden = Hidden()
    for item in _open_items(assignments):
        if item.program is not None:
            hidden.sources.add(source_key(item.program.source))
        if item.puzzle_id is not None:
            hidden.puzzles.add(item.puzzle_id)
    now = timezone.now()
    for assignment in assignments:
        if assignment.exam_mode and assignment.opens_at <= now <= assignment.window(user)[1]:
            hidden.exam = assignment
            break
    return hidden


def in_open_assignment(run: Any) -> bool:
    """Whether a run is of an item of any open assignment (share links answer no one then:
    whoever holds the link, it could reach a student)."""
    now = timezone.now()
    if run.puzzle_id is not None:
        candidates = Assignment.objects.filter(items__puzzle_id=run.puzzle_id)
    elif run.program_id is not None:
        candidates = Assignment.objects.filter(
            Q(items__program_id=run.program_id) | Q(items__program__source=run.source)
        )
    else:
        return False
    for assignment in candidates.distinct().prefetch_related("extensions"):
        if assignment.hides_answers(now):
            return True
    key = source_key(run.source) if run.program_id is not None else None
    if key is None:
        return False
    # Same text in another program (a copy): compare by key among open assignments' items.
    candidates = Assignment.objects.filter(_possibly_open(now)).distinct()
    for item in _open_items(candidates.prefetch_related("extensions")):
        if item.program is not None and source_key(item.program.source) == key:
            return True
    return False


HIDDEN_MESSAGE = (
    "This program is part of an assignment that is still open in one of your courses: its "
    "results are hidden until the assignment closes."
)
EXAM_MESSAGE = "Exam mode: running programs is paused for your course until {end}."
