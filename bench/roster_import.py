"""Benchmark: how long a roster upload holds its request (parse, look up, create the
invitations and their audit events in one transaction; the mails go to a Celery task after the
commit, so they are not part of it).

    .venv/bin/python -m playground.launcher exec -- .venv/bin/python bench/roster_import.py

Runs against the database of `make services` (migrated first) inside a transaction that is
rolled back: nothing is kept, no task is queued. Rosters of e-mail addresses and of usernames
(every one an existing account), 500 and 5,000 rows (the limit), median of 3.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from playground.classroom import courses, roster  # noqa: E402
from playground.classroom.models import Membership  # noqa: E402


class _Rollback(Exception):
    pass


def _once(kind: str, rows: int) -> float:
    try:
        with transaction.atomic():
            User = get_user_model()
            teacher = User.objects.create(username="bench-teacher")
            course = courses.create_course(title="Bench", instructor=teacher)
            member = Membership.objects.get(course=course, user=teacher)
            if kind == "username":
                User.objects.bulk_create(User(username=f"bench-{i}") for i in range(rows))
                lines = [f"bench-{i}" for i in range(rows)]
            else:
                lines = [f"student{i}@example.edu" for i in range(rows)]
            data = ("\n".join(lines) + "\n").encode()
            start = time.perf_counter()
            report = roster.import_roster(
                course=course, data=data, member=member, base_url="http://bench"
            )
            took = time.perf_counter() - start
            assert report.mailed + report.on_site == rows, report
            raise _Rollback
    except _Rollback:
        return took


def main() -> None:
    call_command("migrate", verbosity=0)
    settings.PLAYGROUND_INVITATION_MAILS_PER_DAY = 10**6
    for kind in ("e-mail", "username"):
        for rows in (500, 5000):
            times = [_once(kind, rows) for _ in range(3)]
            print(f"{kind:8} {rows:5} rows: {statistics.median(times):6.2f} s (median of 3)")


if __name__ == "__main__":
    main()
