"""Benchmark: scoring an 800-item x 10-sample CRUXEval import by the official rules, checks per
second, against the official scorer's approach (one fresh process per check), in the same run.

    .venv/bin/python bench/official_scoring.py [--samples 10] [--baseline-checks 400]

No database. The generations are built from the data set itself, deterministically, so that
every kind of outcome occurs: for sample k of an item, k % 5 == 0 a wrong literal, k % 7 == 3 a
generation holding the call ``f(<input>)`` (skipped by the official rule), otherwise the item's
own output (passes). For input prediction the same with ``f(<input>)`` as the right answer.

- **ours**: ``official.score_cruxeval_item`` with ``BatchSandbox(CHECK_LIMITS).run``, what
  ``manage.py bench import`` does: one sandbox, each check a fresh process forked from a
  pre-imported zygote inside it (isolation kept: no check sees another's builtins, ``f`` or
  /tmp; tests/benchmarks/test_official_rules.py tries exactly that);
- **baseline 1, a fresh sandbox per check**: ``sandbox.run(program, limits=CHECK_LIMITS)``, a
  new bubblewrap jail and interpreter for every check: the official one-process-per-check
  isolation, as this site must run untrusted generations;
- **baseline 2, the official harness's own mechanism**: a ``multiprocessing`` process started
  per check on the host, running ``exec`` of the program with the 3 s limit, as
  ``check_correctness`` does (no sandbox: the generations here are built from the data set, not
  untrusted; the site never scores this way).

The baselines are timed on ``--baseline-checks`` checks spread evenly over the same checks
(their per-check rate is what is compared; the whole 8,000 at one process each would take many
minutes), alternated with ours, and every baseline outcome is checked against ours.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playground import sandbox  # noqa: E402
from playground.benchmarks import official  # noqa: E402
from playground.sandbox.batch import BatchSandbox  # noqa: E402

DATASET = ROOT / "playground/programs/datasets/cruxeval/cruxeval.jsonl"
TARGET = 3.0  # the issue: at least 3x the checks per second of one fresh process per check


def items() -> list[dict[str, Any]]:
    with DATASET.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def generations(item: dict[str, Any], samples: int, task: official.Task) -> list[str]:
    right = item["output"] if task == "output" else f"f({item['input']})"
    wrong = "None" if task == "output" else "f(None)"
    skipped = f"f({item['input']})" if task == "output" else "None"
    out = []
    for k in range(samples):
        if k % 5 == 0:
            out.append(wrong)
        elif k % 7 == 3:
            out.append(skipped)
        else:
            out.append(right)
    return out


def score_ours(
    data: list[dict[str, Any]], samples: int, task: official.Task
) -> tuple[float, dict[tuple[int, int], str]]:
    outcomes: dict[tuple[int, int], str] = {}
    batch = BatchSandbox(official.CHECK_LIMITS)
    t0 = time.perf_counter()
    try:
        for i, item in enumerate(data):
            score = official.score_cruxeval_item(
                item["code"], item["input"], item["output"], generations(item, samples, task),
                task, batch.run,
            )  # fmt: skip
            for s, outcome in enumerate(score.outcomes):
                outcomes[(i, s)] = outcome
    finally:
        batch.close()
    return time.perf_counter() - t0, outcomes


def _official_child(program: str) -> None:
    # The official harness swallows what a check prints (its swallow_io); so does this.
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child's to the end
    exec(program, {"__name__": "__main__"})  # noqa: S102 - the data set's own programs


def _host_process(program: str, _call: str | None) -> dict[str, Any]:
    """The official ``check_correctness``: one process per check, killed after 3 s."""
    process = multiprocessing.get_context("fork").Process(target=_official_child, args=(program,))
    process.start()
    process.join(official.CHECK_SECONDS)
    if process.is_alive():
        process.kill()
        process.join()
        return {"status": "time_limit"}
    return {"status": "ok" if process.exitcode == 0 else "exception"}


def _fresh_sandbox(program: str, call: str | None) -> dict[str, Any]:
    return sandbox.run(program, call=call, limits=official.CHECK_LIMITS)


def score_some(
    data: list[dict[str, Any]], picks: list[tuple[int, int]], samples: int,
    task: official.Task, runner: Any,
) -> tuple[float, int, dict[tuple[int, int], str]]:  # fmt: skip
    """Time the checks ``picks`` (item, sample) one by one with ``runner``; skipped ones are
    not checks and cost nothing, as in ours."""
    outcomes: dict[tuple[int, int], str] = {}
    checks = 0
    t0 = time.perf_counter()
    for i, s in picks:
        item = data[i]
        generation = generations(item, samples, task)[s]
        program = official.check_program(
            item["code"], item["input"], item["output"], generation, task
        )
        if program is None:
            outcomes[(i, s)] = "skipped"
            continue
        checks += 1
        trace = runner(program, None)
        outcomes[(i, s)] = "pass" if trace.get("status") == "ok" else "fail"
    return time.perf_counter() - t0, checks, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--baseline-checks", type=int, default=400)
    parser.add_argument("--task", choices=["output", "input"], default="output")
    args = parser.parse_args()
    task: official.Task = "output" if args.task == "output" else "input"
    data = items()
    samples = args.samples
    every = [(i, s) for i in range(len(data)) for s in range(samples)]
    step = max(1, len(every) // args.baseline_checks)
    picks = every[::step][: args.baseline_checks]

    ours_s, ours = score_ours(data, samples, task)
    checks = sum(1 for o in ours.values() if o != "skipped")
    fresh_s, fresh_checks, fresh = score_some(data, picks, samples, task, _fresh_sandbox)
    host_s, host_checks, host = score_some(data, picks, samples, task, _host_process)
    for name, found in (("a fresh sandbox per check", fresh), ("a host process per check", host)):
        differ = [key for key, outcome in found.items() if ours[key] != outcome]
        if differ:
            raise SystemExit(f"{name} disagrees with ours on {len(differ)} checks: {differ[:5]}")

    rate = checks / ours_s
    rows = [
        (f"ours: one sandbox, a forked process per check ({checks:,} checks)", rate),
        (f"baseline 1: a fresh sandbox per check ({fresh_checks} checks)", fresh_checks / fresh_s),
        (
            f"baseline 2: a host process per check, official ({host_checks} checks)",
            host_checks / host_s,
        ),
    ]
    print(f"CRUXEval {task} prediction, {len(data)} items x {samples} samples = {len(every):,} "
          f"generations, {len(every) - checks:,} skipped by the official rule")  # fmt: skip
    print(f"{'':<66} {'checks/s':>9} {'ours vs it':>11}")
    for label, value in rows:
        print(f"{label:<66} {value:9.1f} {rate / value:10.2f}x")
    passed = sum(1 for o in ours.values() if o == "pass")
    print(f"ours: {ours_s:.1f} s for the whole import's checks; {passed:,} passed; "
          f"the baselines' {len(picks)} outcomes all agree with ours")  # fmt: skip
    ratio = rate / (fresh_checks / fresh_s)
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"Target: at least {TARGET:g}x the checks/s of one fresh process per check (a fresh "
          f"sandbox, the isolation kept) -> {ratio:.1f}x: {verdict}")  # fmt: skip
    print(
        f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; one pass of each (each rate "
        "is over hundreds of checks or more)"
    )


if __name__ == "__main__":
    main()
