"""Marking a submission against its item: most modes at once, from the answer key's stored
traces (``grade_now``); a puzzle by running ``sat(answer)`` in the sandbox (``grade_puzzle``,
judged by the puzzle method's ``check_sat``) and a "predict the input" call by running it there
(``grade_input``), both in the Celery task (``grade_later``).
The rules of each mode are the pure functions of ``grading``; this module reads the key and
records the grade on the submission. Its own file so that the task imports it without
importing ``submissions``, which queues the task."""

from __future__ import annotations

import dataclasses
from typing import Any

from playground.classroom import grading, keys, signals
from playground.classroom.models import Item, Mode, Submission
from playground.emulation.judging import NO_MODEL, needed_no_model
from playground.emulation.puzzle import check_sat
from playground.runs.models import Run


def record_grade(submission: Submission, grade: grading.Grade, factor: float) -> None:
    submission.score = grade.score
    submission.credit = round(grade.score * factor, 4)
    submission.status = Submission.Status.GRADED
    submission.feedback = {
        "message": grade.message,
        "details": grade.details,
        "late_factor": factor,
    }
    submission.save(update_fields=["score", "credit", "status", "feedback"])
    signals.announce_grade(submission)


def _key(item: Item) -> tuple[dict[str, Any], Run]:
    run = item.key_run
    assert run is not None
    return keys.trace_data(run.real_trace), run


def grade_now(item: Item, answer: Any) -> grading.Grade:
    """Grade an answer that needs no code run (every mode but puzzles)."""
    real, run = _key(item)
    error = real.get("error") or {}
    result = real.get("result") if real.get("status") == "ok" else None
    if item.mode in (Mode.OUTPUT, Mode.RULE):  # under a rule, the key is the run under it
        if not isinstance(answer, str):
            return grading.invalid("Write the value of the call.")
        return grading.grade_output(answer, result, error.get("type"))
    if item.mode == Mode.PROBES:
        if not isinstance(answer, dict):
            return grading.invalid("Answer each question.")
        return grading.partial_credit(
            grading.grade_probes(answer, keys.questions(item)), item.partial_credit
        )
    if item.mode == Mode.TRACE:
        if not isinstance(answer, dict):
            return grading.invalid("Fill in the variables at each checkpoint.")
        grade = grading.grade_trace(answer, real.get("steps", []), item.checkpoints)
        return grading.partial_credit(grade, item.partial_credit)
    if item.mode == Mode.NEXT_STATE:
        from playground.classroom import nextstate

        return nextstate.grade(
            answer, nextstate.key_steps(item), item.step_choice, item.partial_credit
        )
    if item.mode == Mode.DIVERGENCE:
        if not isinstance(answer, str):
            return grading.invalid("Mark a step number.")
        mistake, steps = keys.divergence_key(run)
        return grading.grade_divergence(answer, mistake, len(steps))
    if item.mode == Mode.BEAT_MODEL:
        if not isinstance(answer, str):
            return grading.invalid("Write the value of the call.")
        asked = (run.verdict or {}).get("status") != NO_MODEL and not needed_no_model(
            run.method, run.model_calls
        )
        return grading.grade_beat_model(
            answer, result, run.prediction or None, error.get("type"), model_asked=asked
        )
    raise ValueError(item.mode)


# The modes graded by running the answer in the sandbox (a Celery task, queue ``sandbox``).
RUNS_THE_ANSWER = frozenset({Mode.PUZZLE, Mode.INPUT})


def grade_later(submission: Submission) -> None:
    """Grade an answer that must run in the sandbox (the body of the grading task)."""
    if submission.item.mode == Mode.INPUT:
        grade_input(submission)
    else:
        grade_puzzle(submission)


def input_function(item: Item) -> str:
    """The function a "predict the input" item's answer calls: the one its program's call
    calls (``f`` for ``f([3, 1])``)."""
    from playground.emulation.input_prediction import function_of

    return function_of(item.program.call if item.program is not None else "") or "f"


def grade_input(submission: Submission) -> None:
    """Predict the input: run the student's call (literal arguments only, written back from
    their values) on the item's program in the sandbox, and compare what it returns with the
    answer key's real output."""
    from playground import sandbox
    from playground.runs.limits import limits_for_run

    item = submission.item
    program = item.program
    assert program is not None
    factor = float(submission.feedback.get("late_factor", 1.0))
    call, problem = grading.read_call(str(submission.answer), input_function(item))
    if problem is not None:
        record_grade(submission, grading.Grade(0.0, problem.message), factor)
        return
    real, _ = _key(item)
    if real.get("status") != "ok":
        record_grade(
            submission,
            grading.Grade(0.0, "This item's program has no output to find an input for."),
            factor,
        )
        return
    limits = dataclasses.replace(limits_for_run({}), keep_running=True)
    called = sandbox.run(program.source, call=call, stdin=program.stdin, limits=limits)
    record_grade(submission, grading.grade_input(call, called, str(real.get("result"))), factor)


def grade_puzzle(submission: Submission) -> None:
    """Judge the answer with the puzzle method's own ``check_sat`` (``sat(answer)`` in the
    sandbox, exactly ``True``, an answer of the puzzle's type) and record the grade (the Celery
    task's body)."""
    from playground import sandbox
    from playground.runs.limits import limits_for_run

    item = submission.item
    assert item.puzzle is not None
    value, problem = grading.read_literal(str(submission.answer))
    factor = float(submission.feedback.get("late_factor", 1.0))
    if problem is not None:
        record_grade(submission, grading.Grade(0.0, problem.message), factor)
        return
    limits = dataclasses.replace(limits_for_run({}), keep_running=True)
    check = check_sat(
        item.puzzle.sat,
        value,
        ans_type=item.puzzle.ans_type,
        run=lambda source, call: sandbox.run(source, call=call, limits=limits),
    )
    if check.solved:
        grade = grading.Grade(1.0, f"Right: {check.why}")
    else:
        grade = grading.Grade(0.0, f"Wrong: {check.why}")
    record_grade(submission, grade, factor)
