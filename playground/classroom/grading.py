"""Grading a student's answer against the real execution. Pure functions (no Django, no code
run): an answer is read with ``ast.literal_eval`` only; a puzzle's ``sat(answer)`` runs in the
sandbox, in ``services``.

Every grader returns a ``Grade``: ``score`` in [0, 1], or ``invalid`` with a message when the
answer cannot be graded at all (malformed: it does not count as an attempt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from playground.compare import same_repr
from playground.emulation.values import NotALiteral, parse_literal, same_value
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


def checkpoint_values(
    steps: list[dict[str, Any]], checkpoints: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """For each checkpoint ({"line", "occurrence", "variables"}), the real values of its variables
    on arrival at the n-th execution of that line (None where the line ran fewer times)."""
    found: list[dict[str, Any]] = []
    for cp in checkpoints:
        line, occurrence = int(cp["line"]), int(cp.get("occurrence", 1))
        names = list(cp.get("variables", []))
        stack: list[dict[str, str]] = []
        pop = False
        seen = 0
        values: dict[str, str | None] | None = None
        for step in steps:
            if pop:
                stack.pop()
                pop = False
            event = step.get("event", "line")
            if event == "call" or not stack:
                stack.append({})
            stack[-1].update(step.get("locals", {}))
            if event == "line" and step.get("line") == line:
                seen += 1
                if seen == occurrence:
                    values = {name: stack[-1].get(name) for name in names}
                    break
            if event in FRAME_EXITS:  # a return, or an exception unwinding the frame
                pop = True
        found.append({"line": line, "occurrence": occurrence, "values": values})
    return found


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


def grade_divergence(answer: str, comparison: dict[str, Any] | None) -> Grade:
    """Spot the divergence: the number of the model's first wrong step, or "none"."""
    text = answer.strip().lower()
    if comparison is None:
        return invalid("The model's trace is not ready yet.")
    divergence = comparison.get("first_divergence")
    expected = None if divergence is None else divergence.get("emulated_step")
    if text in ("none", "no", ""):
        marked = None
    elif text.isdigit():
        marked = int(text)
    else:
        return invalid("Mark a step number, or 'none' if the model made no mistake.")
    if divergence is not None and expected is None:
        # The model stopped early: its first wrong step is the one after its last.
        expected = int(comparison.get("emulated_steps", 0))
    if marked == expected:
        return Grade(1.0, "Right.", details={"expected": expected})
    where = "makes no mistake" if expected is None else f"first goes wrong at step {expected}"
    return Grade(0.0, f"Wrong: the model {where}.", details={"expected": expected})


def grade_beat_model(
    answer: str,
    real_result: str | None,
    model_prediction: str | None,
    error_type: str | None = None,
) -> Grade:
    """Beat the model: graded on the truth; the details say how the model did."""
    grade = grade_output(answer, real_result, error_type)
    if grade.invalid:
        return grade
    model_right = (
        real_result is not None
        and model_prediction is not None
        and same_repr(real_result, model_prediction)
    )
    student_right = grade.score == 1.0
    verdict = (
        "You beat the model."
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
            "model_prediction": model_prediction,
            "model_right": model_right,
            "beat_model": student_right and not model_right,
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
