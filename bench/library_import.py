"""Benchmark: importing the built-in library, as ratios against parsing the same files.

    make bench        (or: python -m playground.launcher exec -- python bench/library_import.py)

Runs against a throw-away database (Django's test database) on the configured PostgreSQL server.
The baseline, measured in the same run, is reading and json-decoding every data-set file: the
least work any import must do. Reported: the first import (9,217 rows inserted) and a repeated,
no-op import, each as a multiple of that baseline, plus the absolute seconds.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from playground.programs.library import DATASETS_DIR, import_library  # noqa: E402
from playground.programs.models import Program, Puzzle, TaskExample  # noqa: E402

REPEATS = 5


def parse_only() -> int:
    rows = 0
    for path in sorted(DATASETS_DIR.rglob("*.json*")):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            rows += sum(1 for line in text.splitlines() if json.loads(line))
        else:
            rows += len(json.loads(text)["examples"])
    return rows


def timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def main() -> None:
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        baseline = statistics.median(timed(parse_only) for _ in range(REPEATS))
        first = []
        for _ in range(REPEATS):
            for model in (TaskExample, Program, Puzzle):
                model.objects.all().delete()
            first.append(timed(import_library))
        noop = [timed(import_library) for _ in range(REPEATS)]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    first_s, noop_s = statistics.median(first), statistics.median(noop)
    rows = [
        ("baseline (read + json-decode all files)", baseline),
        ("first import (7,370 rows inserted)", first_s),
        ("repeat import (no-op, every row compared)", noop_s),
    ]
    for label, seconds in rows:
        print(f"{label:<44} {seconds * 1000:8.1f} ms  {seconds / baseline:6.1f}x")
    print(f"medians of {REPEATS} runs; limit in the issue: 30 s for an import")


if __name__ == "__main__":
    main()
