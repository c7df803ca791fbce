"""Benchmark: what the LMS score task costs to read one student's grade, for a class of 300.

    .venv/bin/python -m playground.launcher exec -- .venv/bin/python bench/lti_passback.py

A regrade of an assignment (or publishing its results) queues one ``send_score`` task per
student, and each reads that student's grade (``passback.current``). Before, it built the whole
assignment's gradebook (every student's submissions) and kept one row: 300 students, 300 full
builds. Now it builds the one student's row (``gradebook.build(..., student_id=...)``).

Both are run in the same process on the same data, interleaved student by student (so that the
machine's load falls on both alike), each answer checked equal: an assignment of 10 items (one
pool of 2), 300 students, 3 attempts each per answered item (8,100 submissions: the pool's
second item unanswered), some late, some overridden. The old way is timed on every 10th student
(30 full builds; its cost does not depend on which student), the new one on all 300. Inside a
transaction that is rolled back: nothing is kept. Printed: milliseconds per score (median),
before and after, and their ratio.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django  # noqa: E402

django.setup()

from datetime import timedelta  # noqa: E402

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from playground.classroom import gradebook  # noqa: E402
from playground.classroom.models import (  # noqa: E402
    Assignment,
    Course,
    Item,
    Membership,
    Mode,
    Role,
    Submission,
)
from playground.lti import passback  # noqa: E402
from playground.programs.models import Dataset, Program  # noqa: E402

STUDENTS = 300
ITEMS = 10
ATTEMPTS = 3


class _Rollback(Exception):
    pass


def _class() -> tuple[Assignment, list[int]]:
    User = get_user_model()
    now = timezone.now()
    teacher = User.objects.create(username="bench-lti-teacher")
    course = Course.objects.create(title="Bench 300", created_by=teacher)
    Membership.objects.create(course=course, user=teacher, role=Role.INSTRUCTOR)
    homework = Assignment.objects.create(
        course=course, title="Regraded", opens_at=now - timedelta(days=1), due_at=now
    )
    program = Program.objects.create(
        title="bench", source="def f(x):\n    return x\n", call="f(1)", dataset=Dataset.USER
    )
    items = [
        Item.objects.create(
            assignment=homework, mode=Mode.OUTPUT, program=program, position=i,
            points=1 + i % 3, pool="pair" if i >= ITEMS - 2 else "",
        )
        for i in range(ITEMS)
    ]  # fmt: skip
    users = User.objects.bulk_create(User(username=f"bench-lti-{i:03}") for i in range(STUDENTS))
    Membership.objects.bulk_create(
        Membership(course=course, user=u, role=Role.STUDENT) for u in users
    )
    subs = []
    for n, user in enumerate(users):
        for item in items[: ITEMS - 1]:  # the pool's first item: everyone's draw
            for attempt in range(1, ATTEMPTS + 1):
                score = ((n + item.pk + attempt) % 5) / 4
                late = (n + attempt) % 7 == 0
                subs.append(
                    Submission(
                        item=item, student=user, attempt=attempt, answer="1",
                        status=Submission.Status.GRADED, score=score,
                        credit=score * (0.5 if late else 1.0), late=late,
                        override_credit=0.9 if (n + item.pk) % 11 == 0 else None,
                    )
                )  # fmt: skip
    Submission.objects.bulk_create(subs, batch_size=2000)
    return homework, [u.pk for u in users]


def _whole_book(assignment: Assignment, *, student_id: int | None = None) -> Any:
    return _build(assignment)  # the old way: every student's row, whoever is asked for


_build = gradebook.build


def main() -> None:
    call_command("migrate", verbosity=0)
    before: list[float] = []
    after: list[float] = []
    try:
        with transaction.atomic():
            homework, students = _class()
            for n, student in enumerate(students):
                if n % 10 == 0:
                    gradebook.build = _whole_book
                    try:
                        start = time.perf_counter()
                        old = passback.current(homework, student)
                        before.append(time.perf_counter() - start)
                    finally:
                        gradebook.build = _build
                start = time.perf_counter()
                new = passback.current(homework, student)
                after.append(time.perf_counter() - start)
                if n % 10 == 0:
                    assert new == old, (student, new, old)
            raise _Rollback
    except _Rollback:
        pass
    b, a = statistics.median(before), statistics.median(after)
    subs = STUDENTS * (ITEMS - 1) * ATTEMPTS
    print(f"class of {STUDENTS}, {ITEMS} items, {subs} submissions")
    print(f"before (whole gradebook): {1000 * b:7.1f} ms per score, median of {len(before)}")
    print(f"after (the student's row): {1000 * a:6.1f} ms per score, median of {len(after)}")
    print(f"ratio before/after: {b / a:.1f}x; grade reads for a regrade of {STUDENTS}: "
          f"{STUDENTS * b:.1f} s before, {STUDENTS * a:.1f} s after")  # fmt: skip


if __name__ == "__main__":
    main()
