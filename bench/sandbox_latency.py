"""Benchmark: end-to-end latency of one sandboxed run, as ratios against starting a bare Python.

    .venv/bin/python bench/sandbox_latency.py

No database. Times ``playground.sandbox.run(SOURCE, call=CALL)`` from the request to the
validated trace (status ok, result "2"), for a two-line program, RUNS times each:

- warm: with the default warm pool of one pre-started sandbox (PLAYGROUND_SANDBOX_POOL=1);
  each run follows a pause of PAUSE_S so the pool has refilled (a pre-started sandbox is only
  useful once its interpreter has started and imported the runner); runs that still found the
  pool empty are counted;
- cold: with PLAYGROUND_SANDBOX_POOL=0, in a child process of this script that sets it before
  importing the sandbox, so every run starts bubblewrap and the interpreter itself; same pauses.

Baseline, measured in the same run and interleaved with the warm runs: starting a bare
``/usr/bin/python3 -I -S -c pass`` (the sandbox's interpreter) with ``subprocess.run``, the least
any run in a fresh process can cost. Reported: p50 and p95 of each, and each as a multiple of
the baseline's. Target in the issue: p50 at most 10 ms with a warm sandbox.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PLAYGROUND_SANDBOX_POOL", "1")

from playground import sandbox
from playground.sandbox.warm_pool import pool

SOURCE = "def f(x):\n    return x + 1\n"
CALL = "f(1)"
RUNS = 200
PAUSE_S = 0.1
BARE = ["/usr/bin/python3", "-I", "-S", "-c", "pass"]
TARGET_MS = 10.0


def timed_run() -> float:
    """One sandboxed run, request to validated trace, in ms; fails loudly on a wrong trace."""
    t0 = time.perf_counter()
    trace = sandbox.run(SOURCE, call=CALL)
    elapsed = (time.perf_counter() - t0) * 1000
    if trace["status"] != "ok" or trace["result"] != "2":
        raise RuntimeError(f"unexpected trace: {trace['status']} {trace.get('error')}")
    return elapsed


def timed_bare() -> float:
    t0 = time.perf_counter()
    subprocess.run(BARE, check=True)
    return (time.perf_counter() - t0) * 1000


def p50_p95(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[-1]


def cold_child() -> None:
    """Run in a child process whose PLAYGROUND_SANDBOX_POOL is 0: print the times as JSON."""
    assert os.environ["PLAYGROUND_SANDBOX_POOL"] == "0"
    times = []
    for _ in range(RUNS):
        time.sleep(PAUSE_S)
        times.append(timed_run())
    print(json.dumps(times))


def main() -> None:
    if os.environ["PLAYGROUND_SANDBOX_POOL"] != "1":
        raise SystemExit("run without PLAYGROUND_SANDBOX_POOL set (the warm case uses 1)")
    timed_run()  # starts the pool's thread and its first sandbox
    bare: list[float] = []
    warm: list[float] = []
    misses = 0
    for _ in range(RUNS):
        time.sleep(PAUSE_S)
        bare.append(timed_bare())
        time.sleep(PAUSE_S)
        misses += not pool.idle
        warm.append(timed_run())
    pool.drain()
    child = subprocess.run(
        [sys.executable, __file__, "--cold"],
        env={**os.environ, "PLAYGROUND_SANDBOX_POOL": "0"},
        check=True,
        capture_output=True,
        text=True,
    )
    cold: list[float] = json.loads(child.stdout)

    base50, base95 = p50_p95(bare)
    print(f"{'':<44} {'p50':>8} {'p95':>8} {'p50 vs':>7} {'p95 vs':>7}")
    for label, values in (
        ("baseline: bare python3 -I -S -c pass", bare),
        ("sandbox.run, warm pool (1 pre-started)", warm),
        ("sandbox.run, cold (PLAYGROUND_SANDBOX_POOL=0)", cold),
    ):
        p50, p95 = p50_p95(values)
        print(f"{label:<44} {p50:5.1f} ms {p95:5.1f} ms {p50 / base50:6.2f}x {p95 / base95:6.2f}x")
    warm50 = statistics.median(warm)
    verdict = "met" if warm50 <= TARGET_MS else "MISSED"
    print(f"{RUNS} runs each, {PAUSE_S * 1000:.0f} ms pause before each; warm runs that found the")
    print(f"pool empty: {misses}.")
    print(f"Target: warm p50 at most {TARGET_MS:g} ms -> {warm50:.1f} ms: {verdict}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--cold"]:
        cold_child()
    else:
        main()
