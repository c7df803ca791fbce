"""Benchmark: the expiry of anonymous runs (playground/runs/retention.py) on a table of runs.

    python -m playground.launcher exec -- python bench/retention.py [--runs 10000]

Runs against a throw-away database (Django's test database) on the configured PostgreSQL server.
Builds ``--runs`` expired anonymous runs (each with a real trace of about 4 KB, one in ten with a
share link) interleaved with as many runs of a signed-in user that must stay, then times the task
(batches of 500) and a second, no-op call.
"""

from __future__ import annotations

import argparse
import os
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
from django.utils import timezone  # noqa: E402

from playground.programs.models import Program  # noqa: E402
from playground.runs.models import Run, Trace  # noqa: E402
from playground.runs.retention import expire_anonymous_runs  # noqa: E402
from playground.sharing.models import ShareLink  # noqa: E402

STEP = {"i": 0, "event": "line", "line": 3, "func": "f", "depth": 1,
        "locals": {"x": "1", "acc": "[1, 2, 3]"}, "stdout": ""}  # fmt: skip
TRACE = {"schema": 1, "status": "ok", "steps": [dict(STEP, i=i) for i in range(40)],
         "stdout": "", "result": "2", "error": None, "stats": {"steps": 40, "wall_ms": 1.0},
         "source": "real", "method": "real"}  # fmt: skip


def build(n: int) -> None:
    user = get_user_model().objects.create(username="keeper")
    program = Program.objects.create(source="def f(x):\n    return x\n", call="f(1)", owner=user)
    old = timezone.now() - timedelta(days=30)
    for start in range(0, n, 1000):
        runs = []
        for i in range(start, min(n, start + 1000)):
            common = {"program": program, "source": program.source, "status": Run.Status.DONE}
            runs.append(Run(anon_owner=f"visitor-{i}", **common))
            runs.append(Run(owner=user, **common))
        Run.objects.bulk_create(runs)
        Trace.objects.bulk_create(
            [Trace(run=r, kind="real", status="ok", step_count=40, data=TRACE) for r in runs]
        )
        ShareLink.objects.bulk_create([ShareLink(run=r) for r in runs[::20]])
    Run.objects.update(created_at=old)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        t0 = time.perf_counter()
        build(args.runs)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = expire_anonymous_runs()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = expire_anonymous_runs()
        second = time.perf_counter() - t0
        assert result["runs"] == args.runs, result
        assert again["runs"] == 0
        assert Run.objects.count() == args.runs  # the signed-in user's runs stay
        print(f"built {2 * args.runs} runs with traces in {built:.1f} s")
        print(
            f"expired {result['runs']} runs ({args.runs // 10} share links remembered) in "
            f"{first:.2f} s: {result['runs'] / first:.0f} runs/s"
        )
        print(f"second call (nothing to do, {args.runs} runs kept): {second * 1000:.0f} ms")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
