"""Benchmark: the work one request to the evaluation pages does, as the data grows.

    .venv/bin/python -m playground.launcher exec -- .venv/bin/python bench/evaluation_pages.py

Runs against a throw-away database (Django's test database) on the launcher's PostgreSQL. Two
sizes of the same shape, so that what grows with the data shows: "small" is 10 finished public
evaluations of 50 results each plus one of 500 results; "large" is 100 of 50 plus one of 5,000
(every result of the big one has its run, with a 600-character source and 2,000 characters of
model text, as a real evaluation has). Pages are requested as an anonymous visitor through
Django's test client (the whole middleware stack, no network); a streamed export is read to its
end inside the timing. Per page: SQL queries, median wall time of REPEATS requests (after two
untimed requests), the largest Python allocation seen during one request (tracemalloc, in a
separate pass, since it slows everything down) and the bytes sent.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from playground.benchmarks.models import Evaluation, Result  # noqa: E402
from playground.programs.models import Program  # noqa: E402
from playground.runs.models import Run  # noqa: E402

REPEATS = 5
SIZES = {"small": (10, 50, 500), "large": (100, 50, 5_000)}  # evaluations, results, big one's
SOURCE = "def f(xs):\n" + "".join(f"    y{i} = [x * {i} for x in xs]\n" for i in range(18))
SOURCE += "    return y0\n"
MODEL_TEXT = ("The loop doubles each value; " * 70)[:2000]


def _evaluation(rng: random.Random, results: int, *, runs: bool, title: str) -> Evaluation:
    now = timezone.now()
    evaluation = Evaluation.objects.create(
        title=title, dataset="cruxeval", method=rng.choice(["direct", "cot", "trace"]),
        model=rng.choice(["smollm2-135m", "coder"]), status=Evaluation.Status.DONE,
        total=results, finished_at=now,
    )  # fmt: skip
    made: list[Run | None] = [None] * results
    if runs:
        program = Program.objects.create(title="f", source=SOURCE, call="f([1, 2, 3])",
                                         is_public=True)  # fmt: skip
        made = list(Run.objects.bulk_create(
            [Run(program=program, source=SOURCE, call="f([1, 2, 3])", method=evaluation.method,
                 model=evaluation.model, emulated_text=MODEL_TEXT, prediction="[1, 2, 3]",
                 status=Run.Status.DONE) for _ in range(results)],
            batch_size=1000,
        ))  # fmt: skip
    Result.objects.bulk_create(
        (
            Result(
                evaluation=evaluation, index=i, sample=0, item_key=f"sample_{i}",
                item_ref={"program": i}, status=Result.Status.DONE, run=made[i],
                passed=(passed := rng.random() < 0.4), leakage=rng.random() < 0.05,
                score_status=rng.choice(["pass" if passed else "fail"] * 30 + ["error"]),
                reason="" if passed else "The prediction differs from the real output." * 3,
                prediction=repr([rng.randrange(100) for _ in range(8)]),
                lines=rng.randrange(2, 40), steps=rng.randrange(1, 300),
                divergence_step=rng.choice([None, rng.randrange(0, 80)]),
                scored_at=now - timedelta(seconds=results - i),
            )
            for i in range(results)
        ),
        batch_size=1000,
    )  # fmt: skip
    return evaluation


def _fill(evaluations: int, results: int, big: int) -> Evaluation:
    rng = random.Random(13)  # noqa: S311 - test data, not a secret
    for n in range(evaluations):
        _evaluation(rng, results, runs=False, title=f"Evaluation {n}")
    return _evaluation(rng, big, runs=True, title="The big one")


def _get(client: Client, url: str) -> int:
    response: Any = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if response.streaming:
        return sum(len(bytes(part)) for part in response.streaming_content)
    return len(response.content)


def _measure(url: str) -> dict[str, Any]:
    client = Client()
    # Warm: templates compiled, the connection open, and (after the change) the figures of the
    # evaluations kept, which the leaderboard does 100 evaluations a request, once after deploy.
    for _ in range(2):
        _get(client, url)
    with CaptureQueriesContext(connection) as queries:
        size = _get(client, url)
    count = len(queries.captured_queries)  # now: the next request clears the log
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        _get(client, url)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    _get(client, url)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"queries": count, "ms": statistics.median(times) * 1000,
            "peak_kib": peak / 1024, "bytes": size}  # fmt: skip


def main() -> None:
    setup_test_environment(debug=False)  # as served: no query log, no template debugging
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"{'size':<6} {'page':<18} {'queries':>8} {'median ms':>10} {'peak KiB':>10} "
              f"{'bytes':>11}")  # fmt: skip
        for size, (evaluations, results, big) in SIZES.items():
            Evaluation.objects.all().delete()
            Run.objects.all().delete()
            Program.objects.all().delete()
            evaluation = _fill(evaluations, results, big)
            pages = {
                "leaderboard": reverse("benchmarks:leaderboard"),
                "detail": evaluation.get_absolute_url(),
                "results.json": reverse("benchmarks:export_json", args=[evaluation.pk]),
                "results.csv": reverse("benchmarks:export_csv", args=[evaluation.pk]),
            }
            for page, url in pages.items():
                m = _measure(url)
                print(f"{size:<6} {page:<18} {m['queries']:>8} {m['ms']:>10.1f} "
                      f"{m['peak_kib']:>10.0f} {m['bytes']:>11,}")  # fmt: skip
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"medians of {REPEATS} requests; sizes: {SIZES}")


if __name__ == "__main__":
    main()
