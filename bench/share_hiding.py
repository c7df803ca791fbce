"""Benchmark: whether a share link of a run is hidden (``in_open_assignment``, asked by every
share view, embed, status poll and websocket recheck) with many open assignments.

    python -m playground.launcher exec -- python bench/share_hiding.py [--assignments 1000]

Runs against a throw-away database (Django's test database) on the configured PostgreSQL server.
Builds one course with a student and ``--assignments`` open assignments, each holding one item
with a program of its own (about 1.5 kB of source, as CRUXEval's), then times the check for a
run of a program that is in none of them (the common case: nothing to hide) and for a run of the
last one's program (hidden), and counts the queries of one check.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from playground.classroom.models import Assignment, Course, Item, Membership, Mode, Role  # noqa: E402
from playground.classroom.visibility import in_open_assignment  # noqa: E402
from playground.programs.models import Program  # noqa: E402
from playground.runs.models import Run  # noqa: E402

BODY = "".join(f"    total = total + {i} * x  # step {i} of the loop body\n" for i in range(30))


def build(n: int) -> tuple[Run, Run]:
    users = get_user_model().objects
    teacher, student = users.create(username="teacher"), users.create(username="student")
    course = Course.objects.create(title="Big course", created_by=teacher)
    Membership.objects.create(course=course, user=teacher, role=Role.INSTRUCTOR)
    Membership.objects.create(course=course, user=student, role=Role.STUDENT)
    now = timezone.now()
    last = None
    for i in range(n):
        source = f"def f(x):\n    total = {i}\n{BODY}    return total\n"
        program = Program.objects.create(source=source, call="f(1)", owner=teacher)
        assignment = Assignment.objects.create(
            course=course,
            title=f"Assignment {i}",
            opens_at=now - timedelta(hours=1),
            due_at=now + timedelta(days=30),
        )
        Item.objects.create(assignment=assignment, mode=Mode.OUTPUT, program=program)
        last = program
    assert last is not None
    free = Program.objects.create(source="def f(x):\n    return x\n", call="f(1)", owner=student)
    runs = [Run.objects.create(program=p, source=p.source, owner=student) for p in (free, last)]
    return runs[0], runs[1]


def timed(run: Run, repeat: int) -> tuple[float, float, bool, int]:
    hidden = in_open_assignment(run)
    with CaptureQueriesContext(connection) as queries:
        in_open_assignment(run)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        in_open_assignment(run)
        times.append(time.perf_counter() - t0)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    return statistics.median(times), p95, hidden, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignments", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        t0 = time.perf_counter()
        free, hidden = build(args.assignments)
        print(f"built {args.assignments} open assignments in {time.perf_counter() - t0:.1f} s")
        for label, run in (("run of no item", free), ("run of an item", hidden)):
            median, p95, is_hidden, queries = timed(run, args.repeat)
            print(
                f"{label:16} hidden={is_hidden!s:5}  median {median * 1000:8.1f} ms  "
                f"p95 {p95 * 1000:8.1f} ms  queries {queries}"
            )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
