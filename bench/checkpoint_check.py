"""Benchmark: how long saving a "predict the trace" item waits for its checkpoint check, a run
of the program on the sandbox worker (Celery queue ``sandbox``) whose answer the item form
waits for, against the same program run by the sandbox directly in this process (the floor).

    .venv/bin/python -m playground.launcher exec -- .venv/bin/python bench/checkpoint_check.py

Needs Redis (the launcher's exec starts it; no database). Starts its own sandbox worker (one
prefork process, as `make run` does per core) and stops it at the end. A CRUXEval-sized
program (a loop over a list, 6 checkpoints' worth of steps), 30 checks after 3 warm-up ones;
median and 95th percentile. The form gives up after the wall limit + 5 s (10 s by default)
and saves the item with a warning.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django  # noqa: E402

django.setup()

from playground import sandbox  # noqa: E402
from playground.classroom import checkpoints  # noqa: E402
from playground.runs.limits import limits_for_run  # noqa: E402

SOURCE = (
    "def f(words):\n    counts = {}\n    for w in words:\n"
    "        counts[w] = counts.get(w, 0) + 1\n"
    "    best = max(counts, key=counts.get)\n    return best, counts[best]\n"
)
CALL = "f(['a', 'b', 'a', 'c', 'a', 'b'])"
CHECKPOINTS = [{"line": 4, "occurrence": n, "variables": ["w", "counts"]} for n in range(1, 7)]
N, WARM = 30, 3


def _times(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


def _report(name: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"{name:<34} median {statistics.median(times) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms")


def main() -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", "sandbox",
         "--pool", "prefork", "--concurrency", "1", "--loglevel", "WARNING"],
        cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:  # the first check that comes back means the worker is up
            check = checkpoints.check_checkpoints(CHECKPOINTS, source=SOURCE, call=CALL)
            if not check.unchecked:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"no sandbox worker answered: {check.unchecked}")
        assert check.problems == (), check.problems

        def through_worker() -> None:
            result = checkpoints.check_checkpoints(CHECKPOINTS, source=SOURCE, call=CALL)
            assert not result.unchecked, result
            assert not result.problems, result

        def direct() -> None:
            sandbox.run(SOURCE, call=CALL, limits=limits_for_run({}))

        _times(through_worker, WARM)
        _report("check on the sandbox worker", _times(through_worker, N))
        _times(direct, WARM)
        _report("sandbox.run in this process", _times(direct, N))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


if __name__ == "__main__":
    main()
