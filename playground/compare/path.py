"""The path verdict: whether an emulated run went the real run's way, beside the verdict on its
result ("right answer, wrong execution", issue 20).

The path of a trace is the lines of its ``line`` steps, in order (a call, return, exception or
unwind step is not a line that runs; a called function's lines come where it runs them), from
the call on when ``from_call`` (the leading ``<module>`` steps dropped, as ``compare_traces``
does). The two paths are compared exactly:

- ``agrees``: the same lines in the same order;
- ``diverges``: at the first position where they differ, or where one goes on after the other
  ended (the model ran lines the program never ran, or skipped the rest), with that position;
- ``unknown``: nothing to decide: the real trace was cut (a step or size limit) before any
  difference, or the model's trace stops, unfinished, on the real path (a prefix of it).

Think-and-Execute writes no steps of the program, only what its plan's pseudocode prints:
``compare_prints`` gives its path verdict from those lines, against the pseudocode run for real.

Pure: no Django, nothing of the project imported; the emulated trace was written by a model, so
steps that are not dicts are skipped and a line that is not an int reads as -1.
"""

from __future__ import annotations

import re
from typing import Any

AGREES, DIVERGES, UNKNOWN = "agrees", "diverges", "unknown"


def executed_lines(trace: Any, *, from_call: bool = False) -> list[tuple[int, int]]:
    """(line, step index) of each ``line`` step of the trace, in order."""
    steps = trace.get("steps") if isinstance(trace, dict) else None
    if not isinstance(steps, list):
        return []
    steps = [s for s in steps if isinstance(s, dict)]
    start = 0
    if from_call:
        while start < len(steps) and steps[start].get("func") == "<module>":
            start += 1
    lines: list[tuple[int, int]] = []
    for index in range(start, len(steps)):
        step = steps[index]
        if step.get("event", "line") != "line":
            continue
        line = step.get("line")
        number = step.get("i", index)
        lines.append(
            (
                line if isinstance(line, int) and not isinstance(line, bool) else -1,
                number if isinstance(number, int) else index,
            )
        )
    return lines


def _cut(trace: dict[str, Any]) -> bool:
    """Whether the real trace stops before the program did (a limit, a size cap)."""
    stats = trace.get("stats")
    stats = stats if isinstance(stats, dict) else {}
    return trace.get("status") not in ("ok", "exception") or bool(
        stats.get("capped") or stats.get("truncated")
    )


def compare_paths(
    real: dict[str, Any], emulated: dict[str, Any], *, from_call: bool = False
) -> dict[str, Any]:
    """The path verdict of ``emulated`` against ``real`` (see the module docstring)."""
    real_lines = executed_lines(real, from_call=from_call)
    emulated_lines = executed_lines(emulated, from_call=from_call)
    shared = min(len(real_lines), len(emulated_lines))
    at = next((n for n in range(shared) if real_lines[n][0] != emulated_lines[n][0]), None)
    found: dict[str, Any] = {"lines": len(real_lines), "matched": shared if at is None else at}
    if at is None and len(real_lines) == len(emulated_lines) and not _cut(real):
        why = f"The model ran the same {len(real_lines)} lines in the same order."
        return {**found, "status": AGREES, "explanation": why}
    if at is None and len(emulated_lines) < len(real_lines):
        if emulated.get("status") not in ("ok", "exception"):  # unfinished, not ended there
            why = (
                f"The model's trace stops after {shared} of the {len(real_lines)} lines the "
                "program ran, all of them right so far."
            )
            return {**found, "status": UNKNOWN, "explanation": why}
        at = shared  # it says the run ended there: it skipped the rest
    if at is None and _cut(real):  # the same as far as the real trace goes
        why = f"The real trace was cut after {len(real_lines)} lines; the model's agrees that far."
        return {**found, "status": UNKNOWN, "explanation": why}
    at = shared if at is None else at
    expected = real_lines[at][0] if at < len(real_lines) else None
    got = emulated_lines[at][0] if at < len(emulated_lines) else None
    if expected is None:
        words = f"the program had ended, but the model runs line {got}"
    elif got is None:
        words = f"the program runs line {expected} next, but the model's run has ended"
    else:
        words = f"the program runs line {expected}, the model line {got}"
    return {
        **found,
        "status": DIVERGES,
        "at": at,
        "real_step": real_lines[at][1] if at < len(real_lines) else None,
        "expected": expected,
        "got": got,
        "explanation": f"The paths part after {at} line{'s' if at != 1 else ''}: {words}.",
    }


_FINAL_LINE = re.compile(r"^\s*final answer\s*[:=]", re.IGNORECASE)
_SHOWN = 120  # characters of a printed line quoted in an explanation


def _printed_steps(lines: list[str]) -> list[str]:
    """The intermediate state a plan prints: its non-blank lines before the first "Final
    answer:" line, each with its runs of whitespace made one space."""
    steps: list[str] = []
    for line in lines:
        if _FINAL_LINE.match(line):
            break
        if line.strip():
            steps.append(" ".join(line.split()))
    return steps


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…")


def compare_prints(real_stdout: str, simulated: list[str], *, cut: bool = False) -> dict[str, Any]:
    """The path verdict of a Think-and-Execute simulation: the intermediate lines its plan's
    pseudocode really prints on the instance (``real_stdout``, run in the sandbox; ``cut`` when
    that output was truncated) against the lines the model wrote for them (``simulated``). Only
    the lines before each side's first "Final answer:" count: the answer has its own verdict,
    and the prints are the state the plan exposes step by step (Chae et al., 2024). Compared
    exactly, whitespace runs aside; a plan that prints nothing before its answer has no path."""
    real = _printed_steps(real_stdout.splitlines())
    model = _printed_steps(simulated)
    found: dict[str, Any] = {"lines": len(real), "kind": "prints"}
    if not real and not cut:
        why = (
            "The plan prints no intermediate state before its answer, so there is no path to check."
        )
        return {**found, "matched": 0, "status": UNKNOWN, "explanation": why}
    shared = min(len(real), len(model))
    at = next((n for n in range(shared) if real[n] != model[n]), None)
    if at is None and len(real) == len(model) and not cut:
        why = f"The model simulated the {len(real)} lines its plan prints, all as they really are."
        return {**found, "matched": shared, "status": AGREES, "explanation": why}
    if at is None and cut and len(model) >= len(real):
        why = (
            f"The plan's real output was cut after {len(real)} lines; the model's agrees that far."
        )
        return {**found, "matched": shared, "status": UNKNOWN, "explanation": why}
    at = shared if at is None else at
    if at >= len(real):
        words = f"the plan prints nothing more, but the model wrote {_quoted(model[at])}"
    elif at >= len(model):
        words = f"the plan prints {_quoted(real[at])} next, but the model wrote no more"
    else:
        words = f"the plan prints {_quoted(real[at])}, the model wrote {_quoted(model[at])}"
    return {
        **found,
        "matched": at,
        "status": DIVERGES,
        "at": at,
        "real_step": None,  # the plan's run is not the program's: no step of its trace
        "explanation": f"The simulation parts from the plan's real output after {at} "
        f"line{'s' if at != 1 else ''}: {words}.",
    }
