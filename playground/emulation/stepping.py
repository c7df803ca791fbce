"""``step`` and ``step-free``: the model predicts a run one step at a time, graded at every step
(issue 22, part 1).

The method runs the program for real itself (in the sandbox, under the item's rule) to know its
steps from the call on, in the step format of the ``trace`` method (``{"line": 3, "changed":
{"i": "0"}}``, with ``event``, ``printed``, ``exception``, and the return value as
``changed.__return__``). For each step it asks the model for the NEXT step, given the steps so
far. Every prompt is one fixed prefix (the instructions, the rule's note, the program and the
call, byte-identical across the run's calls) followed by the steps so far, one per line, so
each prompt extends the one before it and an engine's prefix cache applies.

- ``step`` (re-synced): each prediction is graded against the real step, then the REAL step is
  appended (teacher forcing), so every step is measured, not only those before the first error.
- ``step-free``: the model's own step is appended while it is right; at a divergence the real
  step is appended instead (a re-sync), and the re-syncs are counted.

At most ``MAX_CALLS`` model calls per run: the first ``MAX_CALLS - 1`` steps and the step that
ends the call (its return, or the exception leaving it), asked after every real step before it,
so the final value is always predicted; the verdict says how many of how many steps were graded.

Each step is graded in parts: its line (with its event), each changed variable (values read as
literals and compared with ``literals.same_value``, the verdict's rule; a value that is not a
literal, such as an object's repr, must match exactly), the output printed, and the return value
or exception. An answer that cannot be read is wrong in every part, with the reason. Nothing the
model wrote is ever run. The verdict uses judging's statuses: ``correct`` when every graded step
is right, ``wrong`` when some is not, ``unparsable`` when no answer could be read; beside it the
path verdict (``compare.path``'s statuses, from the predicted lines) and the figures: accuracy
per part, by step kind (call, line, return, exception, loop back-edge), against step index.
"""

from __future__ import annotations

from typing import Any

from playground.emulation import prompts
from playground.emulation.base import Emulation, Item, Session
from playground.emulation.literals import NotALiteral, parse_literal, same_value
from playground.emulation.trace import STEP_SCHEMA, StepParser, call_steps, render_step
from playground.llm.client import Refused

MAX_CALLS = 40  # model calls (graded steps) per run at most
MAX_SHOWN = 400  # real steps before the call's end worth showing to ask for it
MAX_ANSWER = 2_000  # characters of one answer kept
KINDS = ("call", "line", "back-edge", "return", "exception")
PARTS = ("line", "variables", "output", "value")

INSTRUCTIONS = """\
You are a Python interpreter. You are shown a program, a call of it, and the steps of the \
call's execution so far, one JSON object per line, one per step:
- {"line": N, "event": "call", "func": NAME, "changed": {...}} when a function is entered \
(changed: its arguments);
- {"line": N, "changed": {...}} each time line N is about to run (changed: the variables the \
PREVIOUS line changed, as Python reprs in strings; leave "changed" out when nothing changed);
- {"line": N, "event": "return", "changed": {"__return__": VALUE}} when the function returns;
- {"line": N, "event": "exception", "exception": "Type: message"} when line N raises an \
exception, or one arrives there from a function it called;
- {"line": N, "event": "unwind", "exception": "Type: message"} when that exception leaves the \
function;
- "printed": TEXT on the step after a line that printed TEXT.
Write only the NEXT step of the execution: one JSON object on one line, then [/STEP]."""


def prefix(item: Item) -> str:
    """What every prompt of the run starts with, byte for byte."""
    return (
        f"{INSTRUCTIONS}\n\n{prompts.rule_note(item.rule)}"
        f"[PYTHON]\n{item.source.rstrip()}\n[/PYTHON]\n[CALL]\n{item.call.strip()}\n[/CALL]\n"
        "[STEPS]\n"
    )


def prompt(item: Item, shown: list[str]) -> list[dict[str, str]]:
    """The prompt for the next step: the prefix and the steps shown so far, one per line."""
    return [{"role": "user", "content": prefix(item) + "".join(f"{s}\n" for s in shown)}]


# -- the real steps ---------------------------------------------------------------------------


def kinds_of(steps: list[dict[str, Any]]) -> list[str]:
    """Each step's kind: call, line, return, exception (and unwind), or back-edge (a line step
    whose line is at or above the line before it in the same frame: a loop going round)."""
    kinds: list[str] = []
    stack: list[int | None] = []  # per frame, the line of its last line step
    for step in steps:
        event = step.get("event", "line")
        if event == "call":
            stack.append(None)
            kinds.append("call")
            continue
        if not stack:
            stack.append(None)
        if event == "line":
            line = step.get("line")
            before = stack[-1]
            back = isinstance(line, int) and before is not None and line <= before
            kinds.append("back-edge" if back else "line")
            stack[-1] = line if isinstance(line, int) else before
        elif event == "return":
            kinds.append("return")
            stack.pop()
        else:
            kinds.append("exception")
            if event == "unwind":
                stack.pop()
    return kinds


def end_of_call(steps: list[dict[str, Any]]) -> int | None:
    """The index of the step that ends the first frame (its return or unwind), if recorded."""
    depth = 0
    for index, step in enumerate(steps):
        event = step.get("event", "line")
        if event == "call":
            depth += 1
        elif event in ("return", "unwind"):
            depth -= 1
            if depth <= 0:
                return index
    return None


def asked(steps: list[dict[str, Any]]) -> list[int]:
    """The indices of the steps the model is asked for: the first ``MAX_CALLS - 1`` and the
    call's end (all of them when there are no more than ``MAX_CALLS``)."""
    if len(steps) <= MAX_CALLS:
        return list(range(len(steps)))
    chosen = list(range(MAX_CALLS - 1))
    end = end_of_call(steps)
    if end is not None and end >= MAX_CALLS - 1 and end <= MAX_SHOWN:
        chosen.append(end)
    return chosen


# -- reading and grading ----------------------------------------------------------------------


def read(text: str) -> dict[str, Any] | None:
    """The first step object in the model's answer, or None."""
    parser = StepParser(max_steps=1)
    parser.feed(text[:MAX_ANSWER])
    return parser.steps[0] if parser.steps else None


def _same(got: str | None, true: str) -> bool:
    """Two reprs by the verdict's rule: as literals with ``same_value``, else the exact text."""
    if got is None:
        return False
    try:
        true_value = parse_literal(true)
    except NotALiteral:
        return got.strip() == true.strip()
    try:
        return same_value(parse_literal(got), true_value)
    except NotALiteral:
        return False


SHOWN_VALUE = 200  # characters of one predicted value kept for the viewer


def shown(step: dict[str, Any]) -> dict[str, Any]:
    """What the viewer shows of a predicted step (values cut to ``SHOWN_VALUE`` characters):
    its line and event, the variables it changes, its output, its return value or exception."""
    changed = step.get("locals") or {}
    out: dict[str, Any] = {
        "line": step.get("line"),
        "event": step.get("event", "line"),
        "changed": {k[:80]: str(v)[:SHOWN_VALUE] for k, v in changed.items() if k != "__return__"},
    }
    if "__return__" in changed:
        out["returns"] = str(changed["__return__"])[:SHOWN_VALUE]
    if step.get("exception"):
        out["exception"] = str(step["exception"])[:SHOWN_VALUE]
    if step.get("stdout"):
        out["printed"] = str(step["stdout"])[:SHOWN_VALUE]
    return out


def grade(index: int, kind: str, real: dict[str, Any], answer: str | None) -> dict[str, Any]:
    """One step's mark: each part right or not, what was wrong, the predicted step as read
    (``predicted``, for the viewer) and the true step (shown where the model was wrong);
    ``status`` correct, wrong or unparsable (with ``why``)."""
    mark: dict[str, Any] = {
        "step": index,
        "real_step": real.get("i", index),
        "kind": kind,
        "line": real.get("line"),
        "answer": None if answer is None else answer[:300],
        "truth": render_step(real),
    }
    got = read(answer) if answer is not None else None
    if got is None:
        why = "no answer" if answer is None else "no step object in the trace format"
        parts = dict.fromkeys(PARTS, False)
        return {**mark, "status": "unparsable", "why": why, "parts": parts, "variables": {}}
    mark["predicted"] = shown(got)
    event = real.get("event", "line")
    true_vars = {k: v for k, v in (real.get("locals") or {}).items() if k != "__return__"}
    got_vars = {k: v for k, v in (got.get("locals") or {}).items() if k != "__return__"}
    variables = {name: _same(got_vars.get(name), value) for name, value in true_vars.items()}
    extra = sorted(set(got_vars) - set(true_vars))
    variables.update(dict.fromkeys(extra, False))
    if event == "return":
        value_right = _same((got.get("locals") or {}).get("__return__"),
                            str((real.get("locals") or {}).get("__return__")))  # fmt: skip
    elif event in ("exception", "unwind"):
        value_right = (
            str(got.get("exception", "")).strip() == str(real.get("exception", "")).strip()
        )
    else:
        value_right = "__return__" not in (got.get("locals") or {}) and "exception" not in got
    parts = {
        "line": got.get("line") == real.get("line") and got.get("event", "line") == event,
        "variables": all(variables.values()),
        "output": got.get("stdout", "") == real.get("stdout", ""),
        "value": value_right,
    }
    wrong = [p for p in PARTS if not parts[p]]
    status = "wrong" if wrong else "correct"
    out = {**mark, "status": status, "parts": parts, "variables": variables}
    if wrong:
        out["wrong"] = wrong
    return out


def _ratio(right: int, total: int) -> float | None:
    return round(right / total, 4) if total else None


def summary(
    marks: list[dict[str, Any]], *, total: int, resyncs: int | None, mode: str, stopped: str = ""
) -> dict[str, Any]:
    """The verdict of a stepping run over its marks (see the module docstring)."""
    graded = len(marks)
    right = sum(1 for m in marks if m["status"] == "correct")
    readable = sum(1 for m in marks if m["status"] != "unparsable")
    of = f"{graded} of the {total} steps" if graded < total else f"all {total} steps"
    if not graded:
        status, text = "unknown", "No step of the call could be asked."
    elif right == graded:
        status, text = "correct", f"Every step predicted right ({of} graded)."
    elif not readable:
        status, text = "unparsable", f"None of the answers could be read ({of} graded)."
    else:
        status, text = "wrong", f"{right} of {graded} steps predicted right ({of} graded)."
    variables = [ok for m in marks for ok in m["variables"].values()]
    accuracy = {p: _ratio(sum(1 for m in marks if m["parts"][p]), graded) for p in PARTS}
    accuracy["step"] = _ratio(right, graded)
    accuracy["each_variable"] = _ratio(sum(variables), len(variables))
    by_kind: dict[str, dict[str, int]] = {}
    for mark in marks:
        row = by_kind.setdefault(mark["kind"], {"graded": 0, "correct": 0})
        row["graded"] += 1
        row["correct"] += mark["status"] == "correct"
    if graded:
        parts = ", ".join(f"{p} {accuracy[p]:.0%}" for p in ("line", "variables", "output"))
        text += f" Per step: {parts}."
    if resyncs is not None:
        text += f" Re-synced {resyncs} time{'s' if resyncs != 1 else ''}."
    if stopped:
        text += f" {stopped}"
    elif graded < total:
        text += f" (At most {MAX_CALLS} model calls a run.)"
    return {
        "status": status,
        "explanation": text,
        "leakage": False,
        "mode": mode,
        "steps": marks,
        "figures": {
            "graded": graded,
            "total": total,
            "cap": MAX_CALLS,
            "correct": right,
            "accuracy": accuracy,
            "by_kind": by_kind,
            "by_index": [1 if m["status"] == "correct" else 0 for m in marks],
            # Counts behind the ratios, for an evaluation's sums (benchmarks/summary.py): each
            # part's right steps, the variables right of those graded, each mark's step index.
            "right": {p: sum(1 for m in marks if m["parts"][p]) for p in PARTS},
            "variables": [sum(variables), len(variables)],
            "at": [m["step"] for m in marks],
            "resyncs": resyncs,
        },
        "path": path_verdict(marks, total=total),
    }


def path_verdict(marks: list[dict[str, Any]], *, total: int) -> dict[str, Any]:
    """``diverges`` at the first graded step whose line (or event) was predicted wrong,
    ``agrees`` when every step's line was right and every step was graded, else ``unknown``."""
    wrong = [m for m in marks if not m["parts"]["line"]]
    if wrong:
        first = wrong[0]
        return {
            "status": "diverges",
            "real_step": first["real_step"],
            "explanation": f"{len(wrong)} of the {len(marks)} graded steps have the wrong next "
            f"line; the first is step {first['step'] + 1} of the call (line {first['line']}).",
        }
    if marks and len(marks) == total:
        return {"status": "agrees", "explanation": f"Every one of the {total} next lines right."}
    if marks:
        why = f"The {len(marks)} graded next lines are right; the other steps were not asked."
        return {"status": "unknown", "explanation": why}
    return {"status": "unknown", "explanation": "No step was graded."}


# -- asking -----------------------------------------------------------------------------------


def _value_of(answer: str | None) -> str | None:
    """The call's value in an answer for its last step: ``changed.__return__`` of a return."""
    step = read(answer) if answer is not None else None
    if step is None or step.get("event") != "return":
        return None
    value = (step.get("locals") or {}).get("__return__")
    return None if value is None else str(value)


def _run(item: Item, session: Session, *, free: bool) -> Emulation:
    mode = "free" if free else "resync"
    session.emit("status", text="Running the program to know its steps…")
    own = session.run(item.source, call=item.call or None, stdin=item.stdin, rule=item.rule)
    steps = call_steps(own.get("steps") or [])
    chosen = asked(steps)
    if not chosen:
        return Emulation(problem=f"The call has no step to predict (its run: {own.get('status')}).")
    kinds = kinds_of(steps)
    shown: list[str] = []
    answers: dict[int, str | None] = {}
    marks: list[dict[str, Any]] = []
    resyncs = 0
    stopped = ""
    sizes: list[int] = []  # each prompt's characters: each is the one before it and a step more
    for number, index in enumerate(chosen):
        while len(shown) < index:  # steps not asked about (past the cap): shown as they ran
            shown.append(render_step(steps[len(shown)]))
        messages = prompt(item, shown)
        try:
            reply = session.chat(
                messages,
                heading=f"Step {index + 1} of {len(steps)} ({kinds[index]})",
                json_schema=STEP_SCHEMA,
                done=lambda text: read(text) is not None,
            )
        except Refused as exc:  # the prompt outgrew the context, or the budget is spent
            if not marks:
                raise
            stopped = f"Stopped before step {index + 1}: {str(exc)[:300]}"
            break
        sizes.append(len(messages[0]["content"]))
        answer = reply.text[:MAX_ANSWER]
        answers[index] = answer
        mark = grade(index, kinds[index], steps[index], answer)
        marks.append(mark)
        own_step = read(answer)
        if free and mark["status"] == "correct" and own_step is not None:
            shown.append(render_step({**own_step, "i": index}))
        else:
            if free:  # a divergence: the real step is given back
                resyncs += 1
            shown.append(render_step(steps[index]))
        session.emit(
            "status",
            text=f"Step {index + 1}: {'right' if mark['status'] == 'correct' else 'wrong'} "
            f"({number + 1} of {len(chosen)} asked)",
        )
    end = end_of_call(steps)
    prediction = _value_of(answers.get(end)) if end is not None else None
    problem = None
    if prediction is None:
        problem = (
            "The model's answer for the call's last step gives no return value."
            if end in answers
            else "The call's last step was not asked."
        )
    return Emulation(
        prediction=prediction,
        problem=problem,
        verdict=summary(
            marks,
            total=len(steps),
            resyncs=resyncs if free else None,
            mode=mode,
            stopped=stopped,
        ),
        details={
            "stepping": {
                "mode": mode,
                "asked": [i for i in chosen if i in answers],
                "answers": [answers[i] for i in chosen if i in answers],
                "stopped": stopped,
                "resyncs": resyncs if free else None,
                "total": len(steps),
                "prefix_chars": len(prefix(item)),
                "prompt_chars": sizes,
                "model_calls": session.calls,
                # The server's count; none where each answer's stream was closed as soon as it
                # was complete, before the usage that ends it.
                "prompt_tokens": session.prompt_tokens or None,
            }
        },
    )


def emulate(item: Item, session: Session) -> Emulation:
    """Re-synced: the real step is given back after every prediction."""
    return _run(item, session, free=False)


def emulate_free(item: Item, session: Session) -> Emulation:
    """Free: the model's own steps are kept while right; re-synced at each divergence."""
    return _run(item, session, free=True)


def judge(real: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """The verdict against the run's real trace (the page's): each stored answer graded again
    against the real step it was asked for."""
    data = details.get("stepping") if isinstance(details, dict) else None
    if not isinstance(data, dict):
        return {"status": "unparsable", "explanation": "No step was answered.", "leakage": False}
    indices, answers = data.get("asked"), data.get("answers")
    if not isinstance(indices, list) or not isinstance(answers, list):
        return {"status": "unparsable", "explanation": "No step was answered.", "leakage": False}
    steps = call_steps(real.get("steps") or [])
    kinds = kinds_of(steps)
    marks = [
        grade(i, kinds[i], steps[i], a if isinstance(a, str) else None)
        for i, a in zip(indices, answers, strict=False)
        if isinstance(i, int) and 0 <= i < len(steps)
    ]
    resyncs = data.get("resyncs")
    verdict = summary(
        marks,
        total=len(steps),
        resyncs=resyncs if isinstance(resyncs, int) else None,
        mode=str(data.get("mode", "resync")),
        stopped=str(data.get("stopped") or "")[:400],
    )
    for name in ("prefix_chars", "model_calls", "prompt_tokens"):
        verdict["figures"][name] = data.get(name)
    sizes = data.get("prompt_chars")
    if isinstance(sizes, list) and all(isinstance(n, int) for n in sizes):
        verdict["figures"]["prompt_chars"] = sum(sizes)
        # Each prompt starts with the whole one before it: what a prefix cache need not compute.
        verdict["figures"]["cached_chars"] = sum(sizes[:-1])
    return verdict
