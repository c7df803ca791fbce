"""Benchmark: the step tracer's cost per step above plain execution, in-process (no sandbox).

    .venv/bin/python bench/tracer_cost.py

No database or sandbox: the tracer (``playground.sandbox.inside.tracer.Execution``) runs in this
process, with the interpreter running the script. Baseline, measured in the same run: plain
execution, ``exec`` of the program then ``eval`` of its call with no trace function. Every
variant compiles the program with the filename ``<program>`` (and the call as ``<call>``) inside
its timed region, as ``Execution.run`` does, so the differences are tracing alone. Cost per step
is (variant - plain) / steps, where steps is the number our tracer records.

Variants, timed program by program in turn, in an order rotated from one program (and run) to
the next, so neither drift nor going first favours any of them:

- bare: a ``sys.settrace`` recorder that only appends ``(event, lineno)`` for ``<program>``
  frames: the floor of any settrace-based tracer;
- ours: ``Execution(...).run()`` with ``emit=steps.extend``;
- ours + JSON: the same with each batch json-encoded as the runner does before writing it out;
- snapshot: every variable at every step (``safe_repr`` of all of the frame's locals at each
  event, as Python Tutor does), in our step format; used to compare trace size: the JSON bytes of
  the steps, encoded as the runner does. Python Tutor's own format also repeats every frame of
  the stack, the globals and a heap at each step, so it is larger than this snapshot.

Two workloads: (a) the 600 CRUXEval programs, each ``f(input)`` (9,500 steps in all, about 16 a
program, so a run's fixed costs, about 20 us, weigh in); (b) one loop of 120,008 steps. Times are
medians over REPEATS runs of the whole workload; garbage collection is off during each run of a
workload (collected between runs). Targets in the issue: at most 9 us per step above plain
execution, and a trace at most a quarter the size of the every-variable-at-every-step one.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.sandbox.inside.saferepr import safe_repr
from playground.sandbox.inside.tracer import PROGRAM, Execution, LimitReached
from playground.sandbox.limits import Limits

DATASET = (
    Path(__file__).resolve().parents[1] / "playground/programs/datasets/cruxeval/cruxeval.jsonl"
)
REPEATS = 7
LOOP_REPEATS = 5
LOOP_SOURCE = (
    "def f(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total\n"
)
LOOP_CALL = "f(60000)"
LOOP_MAX_STEPS = 200_000
TARGET_US = 9.0
TARGET_SIZE = 0.25

Program = tuple[str, str]  # (source, call)
Steps = list[dict[str, Any]]


def load_cruxeval() -> list[Program]:
    programs = []
    with DATASET.open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            programs.append((item["code"], f"f({item['input']})"))
    return programs


def _compile(source: str, call: str) -> tuple[CodeType, CodeType]:
    return (
        compile(source, PROGRAM, "exec", dont_inherit=True),
        compile(call, "<call>", "eval", dont_inherit=True),
    )


def _exec(source: str, call: str) -> None:
    code, call_code = _compile(source, call)
    globals_: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(code, globals_)  # noqa: S102 - the benchmark's own data set
    eval(call_code, globals_)  # noqa: S307


def run_plain(source: str, call: str) -> Steps:
    _exec(source, call)
    return []


def run_bare(source: str, call: str) -> list[tuple[str, int]]:
    events: list[tuple[str, int]] = []
    append = events.append

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        append((event, frame.f_lineno))
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != PROGRAM:
            return None
        append((event, frame.f_lineno))
        return local

    sys.settrace(global_)
    try:
        _exec(source, call)
    finally:
        sys.settrace(None)
    return events


def run_ours(source: str, call: str, max_steps: int = Limits.max_steps) -> Steps:
    steps: Steps = []
    final: dict[str, Any] = {}
    with contextlib.suppress(LimitReached):
        Execution(
            source,
            call,
            max_steps=max_steps,
            max_stdout=Limits.max_stdout,
            emit=steps.extend,
            finish=final.update,
        ).run()
    if final.get("status") != "ok":
        raise RuntimeError(f"traced run ended with {final.get('status')}: {final.get('error')}")
    return steps


def run_ours_json(source: str, call: str, max_steps: int = Limits.max_steps) -> Steps:
    """Ours, plus the runner's encoding of each batch (what it writes to its descriptor)."""
    lines: list[bytes] = []

    def emit(batch: Steps) -> None:
        lines.append(
            json.dumps({"steps": batch}, ensure_ascii=False, separators=(",", ":")).encode()
        )

    final: dict[str, Any] = {}
    Execution(
        source, call, max_steps=max_steps, max_stdout=Limits.max_stdout, emit=emit,
        finish=final.update,
    ).run()  # fmt: skip
    return []


def run_snapshot(source: str, call: str) -> Steps:
    """Every variable at every step: all locals, repr'd afresh at each event."""
    steps: Steps = []
    out = io.StringIO()

    def record(frame: FrameType, event: str, arg: Any) -> None:
        module_level = frame.f_code.co_name == "<module>"
        shown = {
            name: safe_repr(value)
            for name, value in frame.f_locals.items()
            if not (module_level and (name.startswith("__") or type(value).__name__ == "module"))
        }
        step: dict[str, Any] = {
            "i": len(steps),
            "line": frame.f_lineno or frame.f_code.co_firstlineno,
            "event": event,
            "func": frame.f_code.co_name,
            "locals": shown,
            "stdout": out.getvalue(),
            "by": "python",
        }
        out.seek(0)
        out.truncate()
        if event == "return":
            shown["__return__"] = safe_repr(arg)
        elif event == "exception":
            step["exception"] = f"{arg[0].__name__}: {arg[1]}"
        steps.append(step)

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event != "opcode":
            record(frame, event, arg)
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != PROGRAM:
            return None
        record(frame, "call", arg)
        return local

    saved = sys.stdout
    sys.stdout = out
    sys.settrace(global_)
    try:
        _exec(source, call)
    finally:
        sys.settrace(None)
        sys.stdout = saved
    return steps


def _encoded(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def json_bytes(steps: Steps) -> tuple[int, int]:
    """Bytes of the steps as the runner encodes them, and of their ``locals`` objects alone."""
    return _encoded(steps), sum(_encoded(step["locals"]) for step in steps)


Variant = Callable[[str, str], object]


def sweep(programs: list[Program], variants: dict[str, Variant], repeats: int) -> dict[str, float]:
    """Median over ``repeats`` of each variant's total time over all programs (seconds)."""
    totals: dict[str, list[float]] = {name: [] for name in variants}
    clock = time.perf_counter
    names = list(variants)
    for repeat in range(repeats):
        run_totals = dict.fromkeys(variants, 0.0)
        gc.collect()
        gc.disable()
        try:
            for k, (source, call) in enumerate(programs):
                shift = (repeat + k) % len(names)  # rotate the order: no variant always first
                for name in names[shift:] + names[:shift]:
                    fn = variants[name]
                    t0 = clock()
                    fn(source, call)
                    run_totals[name] += clock() - t0
        finally:
            gc.enable()
        for name, value in run_totals.items():
            totals[name].append(value)
    return {name: statistics.median(values) for name, values in totals.items()}


Sizes = tuple[tuple[int, int], tuple[int, int]]  # (whole, locals alone) for ours, snapshot


def report(title: str, times: dict[str, float], steps: int, sizes: Sizes) -> None:
    plain = times["plain"]
    print(f"\n{title}: {steps:,} steps, medians of the whole workload")
    print(f"{'variant':<40} {'time':>10} {'vs plain':>9} {'us/step above plain':>20}")
    labels = {
        "plain": "plain exec + eval (baseline)",
        "bare": "bare settrace recorder (floor)",
        "ours": "ours: Execution.run",
        "ours+json": "ours + runner's JSON encoding",
        "snapshot": "snapshot: all locals at every step",
    }
    for name, seconds in times.items():
        per_step = (seconds - plain) / steps * 1e6
        ratio = seconds / plain
        print(f"{labels[name]:<40} {seconds * 1000:8.1f} ms {ratio:8.1f}x {per_step:17.2f} us")
    ours_us = (times["ours"] - plain) / steps * 1e6
    verdict = "met" if ours_us <= TARGET_US else "MISSED"
    print(f"target: at most {TARGET_US:g} us/step above plain -> {ours_us:.2f} us: {verdict}")
    (ours_b, ours_locals), (snap_b, snap_locals) = sizes
    print(f"{'trace size, steps as JSON':<40} {'ours':>12} {'snapshot':>12} {'ratio':>7}")
    print(f"{'whole steps':<40} {ours_b:>10,} B {snap_b:>10,} B {ours_b / snap_b:7.3f}")
    print(
        f"{'their locals objects alone':<40} {ours_locals:>10,} B {snap_locals:>10,} B "
        f"{ours_locals / snap_locals:7.3f}"
    )
    ours_rest, snap_rest = ours_b - ours_locals, snap_b - snap_locals
    print(f"{'the rest (i, line, event, func, ...)':<40} {ours_rest:>10,} B {snap_rest:>10,} B")
    ratio = ours_b / snap_b
    verdict = "met" if ratio <= TARGET_SIZE else "MISSED"
    print(f"target: a trace at most {TARGET_SIZE:g} the snapshot's size -> {ratio:.3f}: {verdict}")


def main() -> None:
    variants: dict[str, Variant] = {
        "plain": run_plain,
        "bare": run_bare,
        "ours": run_ours,
        "ours+json": run_ours_json,
        "snapshot": run_snapshot,
    }
    programs = load_cruxeval()
    steps = 0
    ours_whole = ours_locals = snap_whole = snap_locals = 0
    for source, call in programs:
        ours = run_ours(source, call)
        snap = run_snapshot(source, call)
        if len(snap) != len(ours):
            raise RuntimeError(f"snapshot recorded {len(snap)} steps, ours {len(ours)}")
        steps += len(ours)
        whole, locals_ = json_bytes(ours)
        ours_whole, ours_locals = ours_whole + whole, ours_locals + locals_
        whole, locals_ = json_bytes(snap)
        snap_whole, snap_locals = snap_whole + whole, snap_locals + locals_
    times = sweep(programs, variants, REPEATS)
    sizes = ((ours_whole, ours_locals), (snap_whole, snap_locals))
    report(f"(a) 600 CRUXEval programs, {REPEATS} runs", times, steps, sizes)

    def ours_loop(source: str, call: str) -> Steps:
        return run_ours(source, call, LOOP_MAX_STEPS)

    def ours_json_loop(source: str, call: str) -> Steps:
        return run_ours_json(source, call, LOOP_MAX_STEPS)

    loop_variants: dict[str, Variant] = {
        **variants,
        "ours": ours_loop,
        "ours+json": ours_json_loop,
    }
    ours = ours_loop(LOOP_SOURCE, LOOP_CALL)
    snap = run_snapshot(LOOP_SOURCE, LOOP_CALL)
    times = sweep([(LOOP_SOURCE, LOOP_CALL)], loop_variants, LOOP_REPEATS)
    report(
        f"(b) one loop, {LOOP_CALL}, {LOOP_REPEATS} runs",
        times,
        len(ours),
        (json_bytes(ours), json_bytes(snap)),
    )
    print(f"\nPython {sys.version.split()[0]}, in-process; gc off during each run of a workload")


if __name__ == "__main__":
    main()
