"""Grading a student's answer against the real execution. Pure functions (no Django, no code
run): an answer is read with ``ast.literal_eval`` only; a puzzle's ``sat(answer)`` runs in the
sandbox, in ``marking`` (judged by the puzzle method's ``check_sat``).

Every grader returns a ``Grade``: ``score`` in [0, 1], or ``invalid`` with a message when the
answer cannot be graded at all (malformed: it does not count as an attempt).

One file of a little over 400 lines because it is the rule book of every item mode side by side:
a change to how one mode gives partial credit is checked against the others here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from playground.compare import same_repr
from playground.emulation import probes
from playground.emulation.literals import NotALiteral, literal_source, parse_literal, same_value
from playground.sandbox.schema import FRAME_EXITS

MAX_ANSWER = 20_000


@dataclass(frozen=True)
class Grade:
    score: float
    message: str
    invalid: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def invalid(message: str) -> Grade:
    return Grade(0.0, message, invalid=True)


PROPORTIONAL, ALL_OR_NOTHING = "proportional", "all"
ALL_OR_NOTHING_NOTE = "All or nothing: the credit needs every part right."


def partial_credit(grade: Grade, rule: str) -> Grade:
    """A multi-part answer's grade (checkpoints, probes) under the item's partial credit rule:
    proportional (the share of parts right, as graded) or all or nothing (1 only when every part
    is right, else 0; the share is kept in the details and the message)."""
    if rule != ALL_OR_NOTHING or grade.invalid or grade.score >= 1.0:
        return grade
    details = {**grade.details, "proportional": grade.score}
    return Grade(0.0, f"{grade.message} {ALL_OR_NOTHING_NOTE}", details=details)


def read_literal(text: str) -> tuple[Any, Grade | None]:
    """The answer's value, or the Grade that says why it cannot be read (never evaluated)."""
    if len(text) > MAX_ANSWER:
        return None, invalid(f"The answer is longer than {MAX_ANSWER:,} characters.")
    try:
        return parse_literal(text), None
    except NotALiteral as exc:
        return None, invalid(f"Write the value as a Python literal, e.g. [1, 2] or 'abc' ({exc}).")


def grade_output(answer: str, real_result: str | None, error_type: str | None = None) -> Grade:
    """Predict the output: the value, compared by value (``1 == 1.0``, ``[1] != (1,)``). When the
    real call raised, the expected answer is the exception's name (e.g. ZeroDivisionError)."""
    if real_result is None:
        name = answer.strip()
        if error_type and name == error_type:
            return Grade(1.0, f"Right: the call raises {error_type}.")
        if not name:
            return invalid("Write the value, or the exception's name if the call raises.")
        raised = f"raises {error_type}" if error_type else "does not return a value"
        return Grade(0.0, f"Wrong: the call {raised}.", details={"expected": error_type})
    value, problem = read_literal(answer)
    if problem is not None:
        return problem
    try:
        actual = parse_literal(real_result)
    except NotALiteral:
        ok = same_repr(real_result, answer)
        return Grade(1.0 if ok else 0.0, "Right." if ok else f"Wrong: it is {real_result}.")
    if same_value(value, actual):
        return Grade(1.0, "Right.", details={"expected": real_result})
    return Grade(0.0, f"Wrong: the call returns {real_result}.", details={"expected": real_result})


def real_frames(steps: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Each step with the variables of its frame once the step is applied, the frames rebuilt as
    the viewer does: a ``call`` step, or any step met with no frame, starts one; a step's
    ``locals`` (the changed names) update it; it ends after a return or an unwind step (an
    exception leaving it)."""
    stack: list[dict[str, str]] = []
    for step in steps:
        event = step.get("event", "line")
        if event == "call" or not stack:
            stack.append({})
        locals_ = step.get("locals")
        stack[-1].update(locals_ if isinstance(locals_, dict) else {})
        yield step, stack[-1]
        if event in FRAME_EXITS:
            stack.pop()


def checkpoint_values(
    steps: list[dict[str, Any]], checkpoints: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """For each checkpoint ({"line", "occurrence", "variables"}), the real values of its variables
    on arrival at the n-th execution of that line (None where the line ran fewer times), with
    ``names``, the variables that exist there, and ``times``, how often the line ran (when it
    did not run that many times)."""
    found: list[dict[str, Any]] = []
    for cp in checkpoints:
        line, occurrence = int(cp["line"]), int(cp.get("occurrence", 1))
        names = list(cp.get("variables", []))
        seen = 0
        values: dict[str, str | None] | None = None
        there: list[str] = []
        for step, frame in real_frames(steps):
            if step.get("event", "line") == "line" and step.get("line") == line:
                seen += 1
                if seen == occurrence:
                    values = {name: frame.get(name) for name in names}
                    there = sorted(n for n in frame if n != "__return__")
                    break
        found.append(
            {"line": line, "occurrence": occurrence, "values": values, "names": there,
             "times": seen}
        )  # fmt: skip
    return found


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def checkpoint_problems(found: list[dict[str, Any]], *, complete: bool = True) -> list[str]:
    """Why checkpoints (``checkpoint_values`` of the real trace) cannot be answered: a line that
    never runs that many times, a variable that has no value there. ``complete``: the real run
    finished (was not stopped by a limit), so "never" is certain."""
    problems: list[str] = []
    for number, cp in enumerate(found, start=1):
        where = f"Checkpoint {number}: line {cp['line']}"
        times = int(cp.get("times") or 0)
        if cp.get("values") is None:
            if times == 0:
                ran = "never runs"
            else:
                ran = f"runs only {times} time{'s' if times != 1 else ''}"
            ran += f", so there is no {ordinal(cp['occurrence'])} time"
            if not complete:
                ran += " before the run stopped at its limit"
            problems.append(f"{where} {ran}.")
            continue
        missing = [name for name, value in cp["values"].items() if value is None]
        if missing:
            names = cp.get("names") or []
            exist = (
                f"the variables there are {', '.join(names)}"
                if names
                else "no variable has a value there yet"
            )
            which = ", ".join(missing)
            verb = "has" if len(missing) == 1 else "have"
            problems.append(
                f"{where} ({ordinal(cp['occurrence'])} time): {which} {verb} no value when the "
                f"line is about to run; {exist}."
            )
    return problems


def grade_trace(
    answers: dict[str, Any], steps: list[dict[str, Any]], checkpoints: list[dict[str, Any]]
) -> Grade:
    """Predict the trace: ``answers`` maps "<checkpoint index>.<variable>" to the value the
    student wrote; each checkpoint scores the fraction of its variables right."""
    if not checkpoints:
        return invalid("This item has no checkpoints.")
    truth = checkpoint_values(steps, checkpoints)
    per_checkpoint: list[dict[str, Any]] = []
    for index, cp in enumerate(truth):
        names = list(checkpoints[index].get("variables", []))
        results: dict[str, bool] = {}
        for name in names:
            written = answers.get(f"{index}.{name}")
            if not isinstance(written, str) or not written.strip():
                return invalid(f"Fill in {name} at checkpoint {index + 1}.")
            if len(written) > MAX_ANSWER:
                return invalid(f"The value of {name} is too long.")
            expected = (cp["values"] or {}).get(name)
            results[name] = expected is not None and same_repr(expected, written.strip())
        score = sum(results.values()) / len(names) if names else 1.0
        per_checkpoint.append(
            {
                "line": cp["line"],
                "occurrence": cp["occurrence"],
                "right": results,
                "expected": cp["values"],
                "score": score,
            }
        )
    total = sum(c["score"] for c in per_checkpoint) / len(per_checkpoint)
    right = sum(1 for c in per_checkpoint if c["score"] == 1.0)
    return Grade(
        total,
        f"{right} of {len(per_checkpoint)} checkpoint{'s' if len(per_checkpoint) != 1 else ''} "
        "fully right.",
        details={"checkpoints": per_checkpoint},
    )


# Spot the divergence ----------------------------------------------------------------------------
#
# The rule, stated to the students on the item page before they answer (item.html) and applied
# here, and nowhere else: the model's steps are numbered from 1, and its step k is compared with
# the k-th step Python really takes (from the call on, for a trace the model wrote of the call).
# Step k is a mistake when it is at another line, or is another kind of step (call, line,
# return...), than Python's step k; when a variable it shows has another value than the real one
# at that moment (or does not exist there); or when output it shows is not what the program
# prints there. What a step leaves out (the arguments of a call, a changed variable, printed
# text) is not a mistake. If every step is right but Python goes on after the model's last
# step, the trace "stops early"; if every step is right and it ends where Python ends, there is
# no mistake ("none").

NONE, EARLY = "none", "early"
_NONE_WORDS = frozenset({"none", "no", "no mistake"})
_EARLY_WORDS = frozenset({"early", "stops early", "it stops early"})


@dataclass(frozen=True)
class Mistake:
    """The answer key of a spot-the-divergence item: the first wrong step (1-based), or the
    trace stops early, or neither (no mistake). ``undecided``: the real run was cut off (a
    limit) before the model's trace ends, so its later steps cannot be checked."""

    step: int | None
    early: bool = False
    reason: str = ""
    undecided: bool = False

    @property
    def answer(self) -> str:
        return str(self.step) if self.step is not None else EARLY if self.early else NONE


def model_steps(emulated: dict[str, Any] | None, *, from_call: bool) -> list[dict[str, Any]]:
    """The model's steps a student numbers and marks: the dict steps of its trace (without the
    module's own leading steps when the model traced only the call)."""
    raw = emulated.get("steps") if isinstance(emulated, dict) else None
    steps = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
    return _from_call(steps) if from_call else steps


def _from_call(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start = 0
    while start < len(steps) and steps[start].get("func") == "<module>":
        start += 1
    return steps[start:]


def _place(step: dict[str, Any]) -> tuple[Any, str]:
    event = step.get("event")
    return step.get("line"), "line" if event is None else str(event)


def _where(step: dict[str, Any]) -> str:
    line, event = _place(step)
    if event == "line":
        return f"line {line}"
    if event in ("exception", "unwind"):
        raised = str(step.get("exception") or "an exception")
        func = str(step.get("func") or "<module>")
        left = "the program" if func == "<module>" else f"{func}()"
        doing = "raised" if event == "exception" else f"leaving {left}"
        return f"{raised} {doing} at line {line}"
    article = "an" if event[:1] in ("a", "e", "i", "o", "u") else "a"
    return f"{article} {event} at line {line}"


def first_mistake(
    real_steps: list[dict[str, Any]],
    emulated: dict[str, Any] | None,
    *,
    from_call: bool,
    real_complete: bool = True,
) -> Mistake:
    """The model's first mistake by the rule above. ``real_complete``: the real trace holds
    every step the program took (not cut off by a limit)."""
    real = _from_call([s for s in real_steps if isinstance(s, dict)]) if from_call else real_steps
    shown = model_steps(emulated, from_call=from_call)
    frames = real_frames(real)  # Python's step k with its frame's variables
    for number, step in enumerate(shown, start=1):
        if number > len(real):
            if not real_complete:
                return Mistake(None, reason="The real run was cut off here.", undecided=True)
            return Mistake(number, reason="Python has finished; the model goes on.")
        truth, frame = next(frames)
        if _place(step) != _place(truth):
            return Mistake(
                number, reason=f"Python is at {_where(truth)}; the model says {_where(step)}."
            )
        shows = step.get("locals")
        for name, value in (shows if isinstance(shows, dict) else {}).items():
            real_value = frame.get(str(name))
            if real_value is None:
                return Mistake(number, reason=f"{name} does not exist there.")
            if not same_repr(real_value, str(value)):
                return Mistake(number, reason=f"{name} is {_short(real_value)} there.")
        printed = step.get("stdout")
        if printed and _output(printed) != _output(truth.get("stdout") or ""):
            return Mistake(number, reason="The program does not print that there.")
    if len(shown) < len(real):
        return Mistake(None, early=True, reason=f"Python goes on after step {len(shown)}.")
    return Mistake(None)


def _output(text: Any) -> str:
    return "\n".join(line.rstrip() for line in str(text).split("\n")).rstrip()


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_divergence_answer(answer: str, steps: int) -> tuple[str, Grade | None]:
    """A student's mark: a step number from 1 to ``steps``, "none" or "early"; anything else
    (a number out of range included) is refused and uses no attempt."""
    text = " ".join(answer.strip().lower().split())
    if text in _NONE_WORDS:
        return NONE, None
    if text in _EARLY_WORDS:
        return EARLY, None
    choices = f"a step number from 1 to {steps}" if steps else "no step number (the trace is empty)"
    usage = f"Mark {choices}, “none” if every step is right, or “early” if it stops too early."
    if not (text.isascii() and text.isdigit()):
        return "", invalid(usage)
    if len(text) > 9 or not 1 <= int(text) <= steps:
        shown = text if len(text) <= 12 else text[:11] + "…"
        what = "steps are numbered from 1" if text.strip("0") == "" else f"it has {steps}"
        return "", invalid(f"There is no step {shown} in the model's trace ({what}). {usage}")
    return str(int(text)), None


def grade_divergence(answer: str, key: Mistake, steps: int) -> Grade:
    """Spot the divergence: the model's first wrong step, "none" or "early", by the rule above."""
    marked, problem = read_divergence_answer(answer, steps)
    if problem is not None:
        return problem
    expected = key.answer
    details = {"expected": expected, "reason": key.reason}
    if marked == expected:
        return Grade(1.0, "Right.", details=details)
    if key.step is not None:
        where = f"first goes wrong at step {key.step}: {key.reason}"
    elif key.early:
        where = f"makes no mistake in its steps, but stops early: {key.reason}"
    else:
        where = "makes no mistake."
    return Grade(0.0, f"Wrong: the model {where}", details=details)


def grade_beat_model(
    answer: str,
    real_result: str | None,
    model_prediction: str | None,
    error_type: str | None = None,
    *,
    model_asked: bool = True,
) -> Grade:
    """Beat the model: graded on the truth; the details say how the model did.
    ``model_asked``: False when Chain of Code ran the program in Python without asking the
    model; Python's value is then no answer of the model's, right or wrong."""
    grade = grade_output(answer, real_result, error_type)
    if grade.invalid:
        return grade
    model_right = (
        model_asked
        and real_result is not None
        and model_prediction is not None
        and same_repr(real_result, model_prediction)
    )
    student_right = grade.score == 1.0
    verdict = (
        "The model was never asked: Python ran this program by itself."
        if not model_asked
        else "You beat the model."
        if student_right and not model_right
        else "You and the model both got it."
        if student_right
        else "The model beat you."
        if model_right
        else "Neither you nor the model got it."
    )
    return Grade(
        grade.score,
        f"{grade.message} {verdict}",
        details={
            **grade.details,
            "model_prediction": model_prediction if model_asked else None,
            "model_right": model_right,
            "model_asked": model_asked,
            "beat_model": model_asked and student_right and not model_right,
        },
    )


@dataclass(frozen=True)
class Timing:
    accepted: bool
    late: bool
    factor: float
    message: str = ""


def timing(
    submitted_at: datetime,
    *,
    opens_at: datetime,
    due: datetime,
    late_until: datetime,
    late_credit: int,
) -> Timing:
    """Whether a submission at this instant is accepted, late, and with what credit factor.
    Due and late limits are inclusive (a submission at exactly the due time is on time)."""
    if submitted_at < opens_at:
        return Timing(False, False, 0.0, "The assignment is not open yet.")
    if submitted_at <= due:
        return Timing(True, False, 1.0)
    if submitted_at <= late_until:
        return Timing(True, True, max(0, min(late_credit, 100)) / 100)
    return Timing(False, True, 0.0, "The assignment is closed.")


def read_call(text: str, function: str) -> tuple[str, Grade | None]:
    """A "predict the input" answer: a call of ``function`` whose arguments are Python literals
    (``f([1, 2], key='a')``), written back from their values so that it can never be code; or
    the Grade that says why it cannot be read (never evaluated)."""
    if len(text) > MAX_ANSWER:
        return "", invalid(f"The answer is longer than {MAX_ANSWER:,} characters.")
    example = f"Write a call of {function} with literal arguments, e.g. {function}([1, 2], 'a')."
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return "", invalid(f"That is not a call. {example}")
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return "", invalid(example)
    if node.func.id != function:
        return "", invalid(f"Call {function}, not {node.func.id}. {example}")
    parts: list[str] = []
    for arg in [*node.args, *node.keywords]:
        value_node = arg.value if isinstance(arg, ast.keyword | ast.Starred) else arg
        if isinstance(arg, ast.Starred) or (isinstance(arg, ast.keyword) and arg.arg is None):
            return "", invalid(f"Write each argument out, without * or **. {example}")
        try:
            value = parse_literal(ast.unparse(value_node))
        except NotALiteral as exc:
            return "", invalid(f"Each argument must be a Python literal ({exc}).")
        source = literal_source(value)
        parts.append(f"{arg.arg}={source}" if isinstance(arg, ast.keyword) else source)
    return f"{function}({', '.join(parts)})", None


def grade_input(call: str, called: dict[str, Any], output: str) -> Grade:
    """Predict the input: the student's ``call``, run in the sandbox (``called``, its trace),
    must return the real output (by value, as "predict the output" compares)."""
    status = called.get("status")
    if status != "ok":
        error = called.get("error") or {}
        how = (
            f"raises {error.get('type', 'an exception')}"
            if status == "exception"
            else f"does not finish ({str(status).replace('_', ' ')})"
        )
        return Grade(0.0, f"Wrong: {call} {how}.", details={"returned": None})
    returned = str(called.get("result"))
    try:
        same = same_value(parse_literal(returned), parse_literal(output))
    except NotALiteral:
        same = returned == output
    if same:
        return Grade(1.0, f"Right: {call} returns {output}.", details={"returned": returned})
    return Grade(
        0.0, f"Wrong: {call} returns {returned}, not {output}.", details={"returned": returned}
    )


# Answer the probes ------------------------------------------------------------------------------
#
# The questions are the probe method's (emulation/probes.py), generated from the answer key's
# real run; each answer is marked by the probe method's own ``probes.grade`` (a coverage answer
# is True or False, a state's type counts, a path is a line number or None...). The score is the
# share of questions answered right; the details keep each question's mark (with its true answer,
# which the student sees only once the answer may be revealed), the marks per kind and REval's
# incremental consistency.


def grade_probes(answers: dict[str, Any], questions: list[probes.Probe]) -> Grade:
    """Answer the probes: ``answers`` maps each question's index ("0", "1"...) to what the
    student wrote; an empty or unreadable answer is refused (no attempt used) naming its
    question, every other is right or wrong."""
    if not questions:
        return invalid("This item has no questions.")
    marks: list[dict[str, Any]] = []
    for index, probe in enumerate(questions):
        written = answers.get(str(index))
        if not isinstance(written, str) or not written.strip():
            return invalid(f"Answer question {index + 1}.")
        if len(written) > MAX_ANSWER:
            return invalid(f"The answer to question {index + 1} is too long.")
        mark = probes.grade(probe, written)
        if mark["status"] == "unparsable":
            usage = (
                "answer True or False"
                if probe.kind == "coverage"
                else "write a Python literal, e.g. 3, 'abc', [1, 2] or None"
            )
            return invalid(f"Question {index + 1}: {usage} ({mark.get('why', 'unreadable')}).")
        marks.append(mark)
    correct = [m["status"] == "correct" for m in marks]
    right = sum(correct)
    ic = probes.consistency(marks)
    per_kind = probes.scores(marks)
    message = f"{right} of {len(marks)} question{'s' if len(marks) != 1 else ''} right."
    parts = [f"{kind} {row['correct']}/{row['asked']}" for kind, row in per_kind.items()]
    message += " " + ", ".join(parts) + "."
    kept = ("kind", "line", "k", "variable", "length", "chain", "truth", "step")
    return Grade(
        right / len(marks),
        message,
        details={
            "probes": [
                {**{k: m[k] for k in kept if m.get(k) is not None}, "right": ok}
                for m, ok in zip(marks, correct, strict=True)
            ],
            "scores": per_kind,
            "consistency": ic,
        },
    )
