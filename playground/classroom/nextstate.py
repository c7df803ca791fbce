"""Predict the next state (issue 24): a stepping exercise on the answer key's real run. At the
asked steps the student predicts what happens next (the line, with the kind of step, and the
variables it changes; at a return the value, at an exception its text) before the page shows
it; the steps between asked ones are shown as they ran.

The reveal happens on the server, one step at a time: the page holds the steps before the one
asked and nothing after it. A prediction is graded and stored (``StepPrediction``, once per
step: a second one is refused) before the true step is sent back with the next question, so
reloading continues where the student is. Each step is graded by the ``step`` method's own
``stepping.grade`` (the rule a model is held to); its parts are the line (with the event), each
changed variable (a variable predicted that did not change is a wrong part) and, at a return or
an exception, the value. The item's partial credit rule applies per step (proportional: the
share of its parts; all or nothing: 1 only with every part right); the score is the mean over
the asked steps. The last prediction hands the whole answer to ``submissions.submit``, which
checks the window, the exam clock and the pool again and grades it with ``grade`` below.

Steps are numbered from 1 as the student sees them (step 1 is the call, always shown)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from playground.classroom import exams, grading, keys, pools, progress
from playground.classroom.errors import ClassroomError
from playground.classroom.models import (
    Item,
    Membership,
    PartialCredit,
    Role,
    StepPrediction,
    Submission,
)
from playground.emulation import stepping
from playground.emulation.trace import call_steps

DEFAULT_EVERY = 10
MAX_ASKED = 20  # asked steps per item at most
MAX_SHOWN_AFTER = 400  # steps shown after the last asked one, once the answer is revealed
MAX_VARIABLES = 30
MAX_VALUE = 2_000
EVENTS = {
    "line": "runs line",
    "call": "calls a function, at line",
    "return": "returns, at line",
    "exception": "raises an exception at line",
    "unwind": "lets an exception leave the function, at line",
}


class AlreadyRevealed(ClassroomError):
    """A second prediction of a step whose true state has been shown."""


# -- which steps ------------------------------------------------------------------------------


def parse_choice(text: str) -> dict[str, Any]:
    """The item form's field: "every" or "every 12" (each step after the call, up to that many),
    or step numbers "3, 5, 9" (the call is step 1). Raises ValueError with the reason."""
    words = text.replace(",", " ").split()
    if not words:
        return {"every": DEFAULT_EVERY}
    if words[0].lower() == "every":
        if len(words) == 1:
            return {"every": DEFAULT_EVERY}
        if len(words) != 2 or not words[1].isdigit() or not 1 <= int(words[1]) <= MAX_ASKED:
            raise ValueError(f"Write “every” or “every N” with N from 1 to {MAX_ASKED}.")
        return {"every": int(words[1])}
    if not all(w.isascii() and w.isdigit() for w in words):
        raise ValueError("Write step numbers separated by commas (e.g. 3, 5, 9), or “every N”.")
    numbers = sorted({int(w) for w in words})
    if numbers[0] < 2:
        raise ValueError("Step 1 is the call, which is always shown: ask from step 2 on.")
    if len(numbers) > MAX_ASKED:
        raise ValueError(f"At most {MAX_ASKED} steps.")
    return {"steps": numbers}


def choice_text(choice: Any) -> str:
    """The field's text for a stored choice."""
    choice = choice if isinstance(choice, dict) else {}
    if isinstance(choice.get("steps"), list):
        return ", ".join(str(n) for n in choice["steps"])
    return f"every {choice.get('every', DEFAULT_EVERY)}"


def asked(choice: Any, total: int) -> list[int]:
    """The indices (0: the call) of the asked steps of a call of ``total`` steps."""
    choice = choice if isinstance(choice, dict) else {}
    numbers = choice.get("steps")
    if isinstance(numbers, list):
        found = {n - 1 for n in numbers if type(n) is int and 2 <= n <= total}
        return sorted(found)[:MAX_ASKED]
    every = choice.get("every")
    every = every if type(every) is int and 1 <= every <= MAX_ASKED else DEFAULT_EVERY
    return list(range(1, min(total, every + 1)))


def key_steps(item: Item) -> list[dict[str, Any]]:
    """The real steps of the call (the ``step`` method's), from the item's finished key run."""
    run = item.key_run
    if run is None or not run.is_finished:
        return []
    raw = keys.trace_data(run.real_trace).get("steps")
    return call_steps([s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else [])


def problems(item: Item) -> list[str]:
    """Why the item cannot be answered (keys.key_status asks): no step to ask."""
    steps = key_steps(item)
    if not asked(item.step_choice, len(steps)):
        return [
            f"None of the asked steps exists: the call has {len(steps)} step"
            f"{'s' if len(steps) != 1 else ''}. Ask other steps, or choose a longer call."
        ]
    return []


# -- reading and grading ----------------------------------------------------------------------


def read_prediction(data: Any) -> tuple[dict[str, Any], str]:
    """A prediction from the form (``line``, ``event``, ``changed``: "name = value" lines,
    ``value``), or the reason it cannot be read."""
    line_text = str(data.get("line", "")).strip()
    if not (line_text.isascii() and line_text.isdigit()) or not 1 <= int(line_text) <= 100_000:
        return {}, "Write the number of the line that runs next."
    event = str(data.get("event", "line"))
    if event not in EVENTS:
        return {}, "Choose what kind of step comes next."
    changed: dict[str, str] = {}
    for raw in str(data.get("changed", "")).splitlines():
        if not raw.strip():
            continue
        name, sep, value = raw.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.isidentifier() or not value:
            return {}, f"Write each changed variable as name = value (not “{raw.strip()[:60]}”)."
        if len(value) > MAX_VALUE or "\x00" in value:
            return {}, f"The value of {name} is too long or holds a NUL character."
        changed[name] = value
    if len(changed) > MAX_VARIABLES:
        return {}, f"At most {MAX_VARIABLES} variables."
    value = str(data.get("value", "")).strip()
    if len(value) > MAX_VALUE or "\x00" in value:
        return {}, "The value is too long or holds a NUL character."
    if event == "return" and not value:
        return {}, "Write the value the function returns."
    if event in ("exception", "unwind") and not value:
        return {}, "Write the exception, e.g. ZeroDivisionError: division by zero."
    prediction = {"line": int(line_text), "event": event, "changed": changed}
    if value and event in ("return", "exception", "unwind"):
        prediction["value"] = value
    return prediction, ""


def as_step_text(prediction: dict[str, Any]) -> str:
    """The prediction in the ``step`` method's step format, as a model writes it."""
    event = prediction.get("event", "line")
    out: dict[str, Any] = {"line": prediction.get("line")}
    if event != "line":
        out["event"] = event
    changed = dict(prediction.get("changed") or {})
    if event == "return":
        changed["__return__"] = prediction.get("value", "")
    if event in ("exception", "unwind"):
        out["exception"] = prediction.get("value", "")
    if changed:
        out["changed"] = changed
    return json.dumps(out, ensure_ascii=False)


def mark_step(
    index: int, steps: list[dict[str, Any]], prediction: dict[str, Any]
) -> dict[str, Any]:
    """One asked step's mark: ``stepping.grade``'s, with the parts a student answers (the line,
    each changed variable, the value at a return or an exception) and their count right.
    Printed output is shown, never asked."""
    real = steps[index]
    kind = stepping.kinds_of(steps[: index + 1])[index]
    # stepping.grade reads ``stdout`` as a part; the student is not asked it: give it the same.
    graded = stepping.grade(index, kind, {**real, "stdout": ""}, as_step_text(prediction))
    return counted(index, graded, str(real.get("event", "line")))


def counted(index: int, graded: dict[str, Any], event: str) -> dict[str, Any]:
    """A ``stepping.grade`` mark (a student's, or a model's from its ``step`` run's verdict)
    reduced to the parts a student answers: the line, each changed variable, and the value at
    a return or an exception."""
    raw = graded.get("variables")
    variables = {str(k): bool(v) for k, v in (raw if isinstance(raw, dict) else {}).items()}
    found = graded.get("parts")
    marks: dict[str, Any] = found if isinstance(found, dict) else {}
    parts: dict[str, bool] = {"line": bool(marks.get("line"))}
    if event in ("return", "exception", "unwind"):
        parts["value"] = bool(marks.get("value"))
    right = sum(parts.values()) + sum(variables.values())
    total = len(parts) + len(variables)
    return {"step": index, "parts": parts, "variables": variables, "right": right, "total": total}


def step_score(mark: dict[str, Any], rule: str) -> float:
    """A step's score under the item's partial credit rule."""
    right, total = int(mark.get("right", 0)), int(mark.get("total", 0)) or 1
    if rule == PartialCredit.ALL_OR_NOTHING:
        return 1.0 if right == total else 0.0
    return right / total


def grade(answer: Any, steps: list[dict[str, Any]], choice: Any, rule: str) -> grading.Grade:
    """The whole exercise: ``answer`` is {"steps": {"<index>": prediction}}; each asked step
    graded again from the prediction stored (a regrade gives the same), the score their mean."""
    chosen = asked(choice, len(steps))
    if not chosen:
        return grading.invalid("This item has no step to predict.")
    given = answer.get("steps") if isinstance(answer, dict) else None
    given = given if isinstance(given, dict) else {}
    marks: list[dict[str, Any]] = []
    for index in chosen:
        prediction = given.get(str(index))
        if not isinstance(prediction, dict):
            return grading.invalid(f"Predict step {index + 1} first.")
        mark = mark_step(index, steps, prediction)
        mark["score"] = step_score(mark, rule)
        marks.append(mark)
    score = sum(m["score"] for m in marks) / len(marks)
    full = sum(1 for m in marks if m["right"] == m["total"])
    message = f"{full} of {len(marks)} step{'s' if len(marks) != 1 else ''} fully right."
    if rule == PartialCredit.ALL_OR_NOTHING:
        message += " All or nothing per step: a step counts only with every part right."
    return grading.Grade(score, message, details={"next_steps": marks})


# -- the exercise -----------------------------------------------------------------------------


def predictions(item: Item, student: Any) -> dict[int, StepPrediction]:
    rows = StepPrediction.objects.filter(item_id=item.pk, student_id=student.pk)
    return {p.step: p for p in rows}


def refusal(item: Item, student: Any, now: datetime) -> str:
    """Why this student may not predict a step now: the checks ``submissions.submit`` makes,
    in its order (a student of the course, their pool, the exam clock, the window, the key)."""
    assignment = item.assignment
    if not Membership.objects.filter(
        course_id=assignment.course_id, user_id=student.pk, role=Role.STUDENT
    ).exists():
        return "Only the course's students submit answers."
    if not pools.gets(item, student):
        return "This item is not one of yours: your pool gave you another."
    timed = exams.refusal(assignment, student, now)
    if timed:
        return timed
    due, end = assignment.window(student)
    when = grading.timing(
        now, opens_at=assignment.opens_at, due=due, late_until=end,
        late_credit=assignment.late_credit,
    )  # fmt: skip
    if not when.accepted:
        return when.message
    if Submission.objects.filter(item_id=item.pk, student_id=student.pk).exists():
        return "You have finished this exercise: each step is predicted once."
    return progress.submit_refusal(item, attempts=0, end=end, now=now)


def predict(
    *, item: Item, student: Any, step: int, data: Any, now: datetime | None = None
) -> tuple[StepPrediction | None, str, Submission | None]:
    """Record a student's prediction of ``step`` (an index) and grade it. Returns (prediction,
    "", the submission when it was the last asked step); an unreadable prediction returns
    (None, why, None) and records nothing. Raises ``AlreadyRevealed`` for a step already
    predicted, ``ClassroomError`` when the student may not answer (or not this step now)."""
    now = now or timezone.now()
    refused = refusal(item, student, now)
    if refused:
        raise ClassroomError(refused)
    steps = key_steps(item)
    chosen = asked(item.step_choice, len(steps))
    done = predictions(item, student)
    if step in done:
        raise AlreadyRevealed(
            f"Step {step + 1} was already predicted and shown: a prediction cannot be changed."
        )
    waiting = [i for i in chosen if i not in done]
    if not waiting or step != waiting[0]:
        raise ClassroomError("That step is not the one asked now: reload the page.")
    prediction, problem = read_prediction(data)
    if problem:
        return None, problem, None
    mark = mark_step(step, steps, prediction)
    try:
        with transaction.atomic():
            made = StepPrediction.objects.create(
                item=item, student=student, step=step, answer=prediction, mark=mark,
                answered_at=now,
            )  # fmt: skip
    except IntegrityError:  # the same step sent twice at once: the first one stands
        raise AlreadyRevealed(
            f"Step {step + 1} was already predicted and shown: a prediction cannot be changed."
        ) from None
    if len(waiting) > 1:
        return made, "", None
    from playground.classroom import submissions

    answer = {"steps": {str(i): p.answer for i, p in {**done, step: made}.items()}}
    submission, grade_ = submissions.submit(item=item, student=student, answer=answer, now=now)
    if submission is None:  # cannot happen with every step stored; say so rather than hide it
        raise ClassroomError(grade_.message if grade_ is not None else "Not graded.")
    return made, "", submission


# -- what the page shows ----------------------------------------------------------------------


@dataclass
class Row:
    number: int
    event: str
    line: Any
    changed: list[tuple[str, str]]
    printed: str
    value: str
    asked: bool = False
    prediction: dict[str, Any] | None = None
    mark: dict[str, Any] | None = None


def _row(index: int, step: dict[str, Any]) -> Row:
    changed = step.get("locals") if isinstance(step.get("locals"), dict) else {}
    event = str(step.get("event") or "line")
    value = ""
    if event == "return":
        value = str((changed or {}).get("__return__", ""))
    elif event in ("exception", "unwind"):
        value = str(step.get("exception") or "")
    return Row(
        number=index + 1,
        event=event,
        line=step.get("line") if type(step.get("line")) is int else None,
        changed=[(str(k), str(v)) for k, v in (changed or {}).items() if k != "__return__"][:50],
        printed="" if step.get("stdout") is None else str(step.get("stdout")),
        value=value,
    )


@dataclass
class Exercise:
    """A student's (or, for staff, anyone's) place in the exercise, as the page shows it: the
    steps shown (never one after the asked step), the asked step (None: finished)."""

    rows: list[Row]
    question: int | None  # the index of the asked step
    asked: list[int]
    answered: int
    total: int
    marks_shown: bool

    @property
    def question_number(self) -> int | None:
        return None if self.question is None else self.question + 1

    @property
    def finished(self) -> bool:
        return self.question is None and bool(self.asked)


def exercise(item: Item, student: Any, *, marks_shown: bool, everything: bool = False) -> Exercise:
    """What the page shows of ``student``'s exercise (None: the item itself, for staff): the
    steps up to the one asked now (the asked step itself and every later one are left out);
    once finished, up to the last asked step, and the rest only with ``everything`` (the answer
    may be revealed, or staff)."""
    steps = key_steps(item)
    chosen = asked(item.step_choice, len(steps))
    done = predictions(item, student) if student is not None else {}
    waiting = [i for i in chosen if i not in done] if student is not None else []
    question = waiting[0] if waiting else None
    if question is not None:
        upto = question
    elif everything:
        upto = min(len(steps), (chosen[-1] + 1 if chosen else 0) + MAX_SHOWN_AFTER)
    else:
        upto = chosen[-1] + 1 if chosen else 0
    rows = []
    for index, step in enumerate(steps[:upto]):
        row = _row(index, step)
        if index in chosen:
            row.asked = True
            made = done.get(index)
            if made is not None:
                row.prediction = made.answer if isinstance(made.answer, dict) else {}
                row.mark = made.mark if marks_shown and isinstance(made.mark, dict) else None
        rows.append(row)
    return Exercise(
        rows=rows, question=question, asked=chosen, answered=len(done), total=len(steps),
        marks_shown=marks_shown,
    )  # fmt: skip
