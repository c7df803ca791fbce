"""Building blocks of the student-side tests: a course with an instructor and two students, an
assignment, items, and answer keys made by hand (for the model modes) or by the sandbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.test import Client
from django.utils import timezone

from playground.classroom.models import Assignment, Course, Item, Membership, Mode, Role
from playground.programs.models import Dataset, Program, Puzzle
from playground.runs.models import Run, Trace
from tests.factories import UserFactory

# A CRUXEval-like program whose result appears nowhere in its text or its call.
SOURCE = "def f(s):\n    return s[::-1]\n"
CALL = "f('1377-qz')"
SECRET = "zq-7731"


def course_world() -> SimpleNamespace:
    """An instructor, two students (s1, s2) and an outsider; the course has no assignment."""
    instructor = UserFactory(username="teacher")
    s1, s2 = UserFactory(username="student1"), UserFactory(username="student2")
    outsider = UserFactory(username="outsider")
    course = Course.objects.create(title="Execution 101", created_by=instructor)
    Membership.objects.create(course=course, user=instructor, role=Role.INSTRUCTOR)
    for student in (s1, s2):
        Membership.objects.create(course=course, user=student, role=Role.STUDENT)
    return SimpleNamespace(instructor=instructor, s1=s1, s2=s2, outsider=outsider, course=course)


def client_for(user: Any) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def library_program(
    source: str = SOURCE, call: str = CALL, expected: str = f"'{SECRET}'", **extra: Any
) -> Program:
    fields = {
        "title": "CRUXEval sample_9001",
        "source": source,
        "call": call,
        "expected_output": expected,
        "dataset": Dataset.CRUXEVAL,
        "external_id": "sample_9001",
        "is_public": True,
        **extra,
    }
    return Program.objects.create(**fields)


def puzzle(sat: str = "def sat(s: str):\n    return s == 'ab' * 3\n", **extra: Any) -> Puzzle:
    fields = {
        "name": "Repeat_0:0",
        "family": "Repeat_0",
        "source_index": 0,
        "sat": sat,
        "ans_type": "str",
        "sol_header": "def sol():",
        "sol_docstring": '"""Repeat ab three times."""',
        "sol_bodies": ["    return 'ab' * 3  # the-reference-solution"],
        "module": "study",
        **extra,
    }
    return Puzzle.objects.create(**fields)


def assignment(course: Course, *, now: datetime | None = None, **fields: Any) -> Assignment:
    """Open since an hour, due in a day (unless told otherwise)."""
    now = now or timezone.now()
    values: dict[str, Any] = {
        "title": "Loops",
        "opens_at": now - timedelta(hours=1),
        "due_at": now + timedelta(days=1),
        **fields,
    }
    return Assignment.objects.create(course=course, **values)


def close(assignment: Assignment) -> None:
    """Move every window into the past."""
    now = timezone.now()
    Assignment.objects.filter(pk=assignment.pk).update(
        opens_at=now - timedelta(days=3),
        due_at=now - timedelta(days=2),
        late_until=now - timedelta(days=1),
    )
    assignment.extensions.update(due_at=now - timedelta(days=2), late_until=None)
    assignment.refresh_from_db()


def hand_made_key(
    item: Item,
    *,
    real: dict[str, Any],
    emulated: dict[str, Any] | None = None,
    prediction: str = "",
    comparison: dict[str, Any] | None = None,
    owner: Any = None,
) -> Run:
    """An answer key stored as the run tasks would store it (no sandbox, no model)."""
    assert item.program is not None
    run = Run.objects.create(
        program=item.program,
        source=item.program.source,
        call=item.program.call,
        method="trace" if item.mode == Mode.DIVERGENCE else "direct",
        model="oracle",
        status=Run.Status.DONE,
        prediction=prediction,
        comparison=comparison,
        emulation_done=True,
        owner=owner,
    )
    Trace.objects.create(run=run, kind=Trace.Kind.REAL, status=real.get("status", "ok"), data=real)
    if emulated is not None:
        Trace.objects.create(
            run=run, kind=Trace.Kind.EMULATED, status=emulated.get("status", "ok"), data=emulated
        )
    Item.objects.filter(pk=item.pk).update(key_run=run)
    item.key_run = run
    return run


def real_trace(result: str, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "schema": 1,
        "status": "ok",
        "result": result,
        "error": None,
        "steps": steps or [],
        "stats": {"steps": len(steps or []), "wall_ms": 1},
    }
