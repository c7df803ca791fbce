"""Benchmark: CPU and wall-clock time of one cold sandboxed run, for one or more source trees.

    .venv/bin/python bench/sandbox_cpu.py [TREE ...]      # default: this checkout

Each TREE is a checkout of the project (e.g. ``git archive <commit> | tar -x -C /tmp/old``), so a
change to the sandbox can be compared with the code before it on the same machine, alternated
round by round (ROUNDS rounds of RUNS runs each). A round is a child process of its own with
PLAYGROUND_SANDBOX_POOL=0: every run starts bubblewrap and the interpreter. Reported per tree:
the median over rounds of the per-round medians of wall-clock ms and of CPU ms (this process and
every reaped descendant: bubblewrap, its init, the runner), which a busy machine disturbs less
than the wall clock.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 5
RUNS = 40
PAUSE_S = 0.05
SOURCE = "def f(x):\n    return x + 1\n"


def _cpu_ms() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime) * 1000


def child(tree: str) -> None:
    """One round, in a fresh process: print [median wall ms, median CPU ms] as JSON."""
    sys.path.insert(0, tree)
    from playground import sandbox

    sandbox.run("pass\n")  # per-process preparation (the runner, the filter) is not a run's
    walls, cpus = [], []
    for _ in range(RUNS):
        time.sleep(PAUSE_S)
        cpu0, t0 = _cpu_ms(), time.perf_counter()
        trace = sandbox.run(SOURCE, call="f(1)")
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append(_cpu_ms() - cpu0)
        if trace["result"] != "2":
            raise RuntimeError(f"unexpected trace: {trace['status']} {trace.get('error')}")
    print(json.dumps([statistics.median(walls), statistics.median(cpus)]))


def main(trees: list[str]) -> None:
    results: dict[str, list[list[float]]] = {tree: [] for tree in trees}
    env = {**os.environ, "PLAYGROUND_SANDBOX_POOL": "0"}
    for _ in range(ROUNDS):
        for tree in trees:
            done = subprocess.run(
                [sys.executable, __file__, "--child", tree],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[tree].append(json.loads(done.stdout))
    print(f"{'tree':50} {'wall p50':>9} {'CPU p50':>9}   ({ROUNDS} rounds x {RUNS} cold runs)")
    for tree, rounds in results.items():
        wall = statistics.median(r[0] for r in rounds)
        cpu = statistics.median(r[1] for r in rounds)
        print(f"{tree:50} {wall:7.1f} ms {cpu:7.1f} ms")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main([str(Path(t).resolve()) for t in sys.argv[1:]] or [str(Path(__file__).parents[1])])
