"""Grading through submissions.submit, per mode: right, wrong, malformed (no attempt used) and
malicious answers (never evaluated); the attempt limit; late credit at the exact limits, with
an extension, and the same instants written in two time zones."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from playground.classroom import authoring, grading, marking, submissions
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Extension, Item, Mode, Submission
from playground.runs.models import Run
from tests.classroom.student_world import (
    SECRET,
    assignment,
    course_world,
    hand_made_key,
    library_program,
    puzzle,
    real_trace,
)

pytestmark = pytest.mark.django_db

LOOP = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"


@pytest.fixture
def marker() -> Iterator[str]:
    """A file that a malicious answer would create if it were ever evaluated."""
    path = f"/tmp/classroom-marker-{uuid.uuid4().hex}"
    yield path
    if os.path.exists(path):
        os.remove(path)


@pytest.fixture
def keyed(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Item]:
    """An item whose answer key is the real run in the sandbox (the tasks run at once)."""

    def make(mode: str, program: Any, a: Any, **fields: Any) -> Item:
        item = Item.objects.create(assignment=a, mode=mode, program=program, **fields)
        with django_capture_on_commit_callbacks(execute=True):
            authoring.prepare_item(item, by=a.course.created_by)
        item.refresh_from_db()
        assert item.key_run is not None
        assert item.key_run.status == Run.Status.DONE
        return item

    return make


def _score(item: Item, student: Any, answer: str) -> float | None:
    sub, grade = submissions.submit(item=item, student=student, answer=answer)
    assert sub is not None, grade
    return sub.score


def _attempts(item: Item, student: Any) -> int:
    return Submission.objects.filter(item=item, student=student).count()


def _submitted(
    item: Item, student: Any, answer: str, capture: Callable[..., Any]
) -> tuple[Submission | None, Any]:
    """Submit with the grading task run at once (a puzzle's, a "predict the input" call's)."""
    with capture(execute=True):
        sub, grade = submissions.submit(item=item, student=student, answer=answer)
    if sub is not None:
        sub.refresh_from_db()
    return sub, grade


# -- Predict the output ------------------------------------------------------------------------


def test_output_right_wrong_and_malformed(keyed: Callable[..., Item]) -> None:
    w = course_world()
    item = keyed(Mode.OUTPUT, library_program(), assignment(w.course))
    sub, grade = submissions.submit(item=item, student=w.s1, answer="'abc'")
    assert sub is not None
    assert grade is not None
    assert (sub.score, sub.credit, sub.attempt) == (0.0, 0.0, 1)
    assert SECRET in grade.message  # the feedback says what it returns

    sub, grade = submissions.submit(item=item, student=w.s1, answer=f"  '{SECRET}'  ")
    assert sub is not None
    assert (sub.score, sub.credit, sub.attempt) == (1.0, 1.0, 2)

    sub, grade = submissions.submit(item=item, student=w.s1, answer="[1, 2")
    assert sub is None
    assert grade is not None
    assert grade.invalid
    assert "Python literal" in grade.message
    assert _attempts(item, w.s1) == 2  # a malformed answer uses no attempt


def test_output_answer_is_never_evaluated(keyed: Callable[..., Item], marker: str) -> None:
    w = course_world()
    item = keyed(Mode.OUTPUT, library_program(), assignment(w.course))
    attack = f"__import__('os').system('touch {marker}')"
    sub, grade = submissions.submit(item=item, student=w.s1, answer=attack)
    assert sub is None
    assert grade is not None
    assert grade.invalid
    assert not os.path.exists(marker)
    assert _attempts(item, w.s1) == 0


def test_output_of_a_call_that_raises_is_the_exception_name(keyed: Callable[..., Item]) -> None:
    w = course_world()
    program = library_program(source="def f(x):\n    return 1 // x\n", call="f(0)", expected="")
    item = keyed(Mode.OUTPUT, program, assignment(w.course))
    sub, _ = submissions.submit(item=item, student=w.s1, answer="ZeroDivisionError")
    assert sub is not None
    assert sub.score == 1.0
    sub, _ = submissions.submit(item=item, student=w.s1, answer="ValueError")
    assert sub is not None
    assert sub.score == 0.0


# -- Predict the trace -------------------------------------------------------------------------


def test_trace_checkpoints_score_each_variable(keyed: Callable[..., Item]) -> None:
    w = course_world()
    checkpoints = [
        {"line": 4, "occurrence": 3, "variables": ["i", "total"]},
        {"line": 5, "occurrence": 1, "variables": ["total"]},
    ]
    program = library_program(source=LOOP, call="f(4)", expected="6")
    item = keyed(Mode.TRACE, program, assignment(w.course), checkpoints=checkpoints)

    right = {"0.i": "2", "0.total": "1", "1.total": "6"}
    sub, grade = submissions.submit(item=item, student=w.s1, answer=right)
    assert sub is not None, grade
    assert sub.score == 1.0, grade

    half = {"0.i": "2", "0.total": "3", "1.total": "7"}
    sub, grade = submissions.submit(item=item, student=w.s1, answer=half)
    assert sub is not None
    assert sub.score == pytest.approx(0.25)
    assert grade is not None
    assert grade.details["checkpoints"][0]["right"] == {
        "i": True,
        "total": False,
    }

    sub, grade = submissions.submit(item=item, student=w.s1, answer={"0.i": "2", "0.total": "1"})
    assert sub is None
    assert grade is not None
    assert grade.invalid
    assert "Fill in total at checkpoint 2" in grade.message
    assert _attempts(item, w.s1) == 2


# -- Predict the input (the student's call runs in the sandbox, by a task) ---------------------

REVERSE = "def f(text, n):\n    return text[::-1] * n\n"


def test_input_calls_are_run_in_the_sandbox_and_judged_by_their_value(
    keyed: Callable[..., Item], django_capture_on_commit_callbacks: Callable[..., Any], marker: str
) -> None:
    w = course_world()
    own = library_program(source=REVERSE, call="f('ab', 2)", expected="", dataset="user",
                          is_public=False, external_id="")  # fmt: skip
    item = keyed(Mode.INPUT, own, assignment(w.course))
    assert authoring_key_ready(item)

    def submit(answer: str) -> tuple[Submission | None, Any]:
        return _submitted(item, w.s1, answer, django_capture_on_commit_callbacks)

    sub, _ = submit("f('ab', 2)")  # the program's own call
    assert sub is not None
    assert (sub.status, sub.score) == (Submission.Status.GRADED, 1.0)
    assert sub.feedback["message"] == "Right: f('ab', 2) returns 'baba'."
    sub, _ = submit("f(n=1, text='abab')")  # another input with the same output counts
    assert sub is not None
    assert sub.score == 1.0
    sub, _ = submit("f('ba', 2)")
    assert sub is not None
    assert sub.score == 0.0
    assert sub.feedback["message"] == "Wrong: f('ba', 2) returns 'abab', not 'baba'."
    sub, _ = submit("f(3, 2)")
    assert sub is not None
    assert sub.feedback["message"] == "Wrong: f(3, 2) raises TypeError."
    assert _attempts(item, w.s1) == 4

    # Unreadable answers use no attempt, and code is never run anywhere.
    for bad, says in [
        ("'baba'", "Write a call of f"),
        ("g('ab', 2)", "Call f, not g"),
        ("f(*['ab', 2])", "without * or **"),
        (f"f(__import__('os').system('touch {marker}'), 1)", "must be a Python literal"),
        ("f('ab',", "That is not a call"),
    ]:
        sub, grade = submit(bad)
        assert sub is None, bad
        assert grade.invalid
        assert says in grade.message, (bad, grade.message)
    assert _attempts(item, w.s1) == 4
    assert not os.path.exists(marker)


def authoring_key_ready(item: Item) -> bool:
    from playground.classroom import keys

    return keys.key_status(item, refresh=True).state == keys.READY


def test_an_input_item_needs_a_call_with_a_value_and_warns_of_a_public_program(
    keyed: Callable[..., Item],
) -> None:
    from playground.classroom import keys

    w = course_world()
    raising = library_program(source=REVERSE, call="f(1, 2)", dataset="user", is_public=False,
                              external_id="")  # fmt: skip
    item = keyed(Mode.INPUT, raising, assignment(w.course))
    status = keys.key_status(item, refresh=True)
    assert status.state == keys.PROBLEM
    assert "no output to find an input for" in status.problems[0]
    public = keyed(Mode.INPUT, library_program(), assignment(w.course))
    status = keys.key_status(public, refresh=True)
    assert status.state == keys.READY
    assert "its own page shows the call that is the answer" in status.warnings[0]


# -- Solve the puzzle (graded in the sandbox by a task) ----------------------------------------


def test_puzzle_answers_are_checked_by_sat_in_the_sandbox(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any], marker: str
) -> None:
    w = course_world()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.PUZZLE, puzzle=puzzle())

    def submit(answer: str) -> tuple[Submission | None, Any]:
        return _submitted(item, w.s1, answer, django_capture_on_commit_callbacks)

    sub, _ = submit("'ababab'")
    assert sub is not None
    assert sub.status == Submission.Status.GRADED
    assert sub.score == 1.0
    sub, _ = submit("'abab'")
    assert sub is not None
    assert sub.score == 0.0
    assert sub.feedback["message"] == "Wrong: sat(answer) returned False, not True."

    sub, grade = submit("[1, 2")
    assert sub is None
    assert grade.invalid
    attack = f"__import__('os').system('touch {marker}')"
    sub, grade = submit(attack)
    assert sub is None
    assert grade.invalid
    # As a string literal it is only ever a value: sat('<that text>') is False.
    sub, _ = submit(repr(attack))
    assert sub is not None
    assert sub.score == 0.0
    assert not os.path.exists(marker)
    assert _attempts(item, w.s1) == 3


def test_a_puzzle_answer_waits_for_its_grading_task(eager: None) -> None:
    w = course_world()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.PUZZLE, puzzle=puzzle())
    sub, grade = submissions.submit(item=item, student=w.s1, answer="'ababab'")
    assert grade is None
    assert sub is not None
    assert sub.status == Submission.Status.PENDING
    marking.grade_puzzle(sub)
    sub.refresh_from_db()
    assert (sub.status, sub.score) == (Submission.Status.GRADED, 1.0)


def test_a_puzzle_answer_is_judged_as_the_puzzle_method_judges_it(eager: None) -> None:
    """The classroom grades with the method's check_sat: an answer of another type than the
    puzzle's (the student page names it) is wrong, and is not run."""
    w = course_world()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.PUZZLE, puzzle=puzzle())
    sub, _ = submissions.submit(item=item, student=w.s1, answer="6")
    assert sub is not None
    marking.grade_puzzle(sub)
    sub.refresh_from_db()
    assert sub.score == 0.0
    assert sub.feedback["message"] == "Wrong: The answer has the wrong type: expected str, got int."


# -- The model modes (keys made by hand: the model is not what is tested here) -----------------


def test_divergence_marks_the_models_first_wrong_step() -> None:
    w = course_world()
    item = Item.objects.create(
        assignment=assignment(w.course), mode=Mode.DIVERGENCE, program=library_program()
    )
    real = [
        {"i": 0, "line": 1, "func": "f", "event": "call", "locals": {"s": "'1377-qz'"}},
        {"i": 1, "line": 2, "func": "f"},
        {"i": 2, "line": 2, "func": "f", "event": "return", "locals": {"__return__": "'x'"}},
    ]
    wrong_return = [*real[:2], {**real[2], "locals": {"__return__": "'nope'"}}]
    hand_made_key(
        item,
        real=real_trace(f"'{SECRET}'", real),
        emulated=real_trace("'nope'", wrong_return),
    )
    assert _score(item, w.s1, "3") == 1.0  # steps count from 1: the return is step 3
    assert _score(item, w.s1, "none") == 0.0
    sub, grade = submissions.submit(item=item, student=w.s1, answer="step three")
    assert sub is None
    assert grade is not None
    assert grade.invalid
    assert _attempts(item, w.s1) == 2


def test_beat_the_model_says_how_the_model_did() -> None:
    w = course_world()
    item = Item.objects.create(
        assignment=assignment(w.course), mode=Mode.BEAT_MODEL, program=library_program()
    )
    hand_made_key(item, real=real_trace(f"'{SECRET}'"), prediction="'qz-1377'")
    sub, grade = submissions.submit(item=item, student=w.s1, answer=f"'{SECRET}'")
    assert sub is not None
    assert sub.score == 1.0
    assert grade is not None
    assert "You beat the model." in grade.message
    assert grade.details["model_right"] is False
    sub, grade = submissions.submit(item=item, student=w.s1, answer="'x'")
    assert sub is not None
    assert sub.score == 0.0
    assert grade is not None
    assert "Neither you nor the model" in grade.message


# -- Attempts and time ---------------------------------------------------------------------------


def _output_item(w: Any, **fields: Any) -> Item:
    """An output item with a hand-made key (fast: timing is what these tests are about)."""
    item = Item.objects.create(
        assignment=assignment(w.course, **fields), mode=Mode.OUTPUT, program=library_program()
    )
    hand_made_key(item, real=real_trace("3"))
    return item


def test_the_attempt_limit() -> None:
    w = course_world()
    item = _output_item(w, max_attempts=2)
    submissions.submit(item=item, student=w.s1, answer="1")
    submissions.submit(item=item, student=w.s1, answer="[1")  # malformed: not counted
    submissions.submit(item=item, student=w.s1, answer="2")
    with pytest.raises(ClassroomError, match="No attempts left"):
        submissions.submit(item=item, student=w.s1, answer="3")
    assert _attempts(item, w.s1) == 2
    assert submissions.submit(item=item, student=w.s2, answer="3")[0] is not None  # per student


T = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def _timed_item(w: Any, due: datetime, late_until: datetime | None) -> Item:
    return _output_item(
        w, opens_at=due - timedelta(days=1), due_at=due, late_until=late_until, late_credit=40
    )


def _credit(item: Item, student: Any, now: datetime) -> tuple[bool, float]:
    sub, _ = submissions.submit(item=item, student=student, answer="3", now=now)
    assert sub is not None
    assert sub.credit is not None
    return sub.late, sub.credit


def test_late_credit_at_the_exact_limits() -> None:
    w = course_world()
    item = _timed_item(w, T, T + timedelta(hours=1))
    assert _credit(item, w.s1, T) == (False, 1.0)  # exactly at the due time: on time
    assert _credit(item, w.s1, T + SECOND) == (True, 0.4)
    assert _credit(item, w.s1, T + timedelta(hours=1)) == (True, 0.4)  # exactly the end: late
    with pytest.raises(ClassroomError, match="closed"):
        submissions.submit(item=item, student=w.s1, answer="3", now=T + timedelta(hours=1) + SECOND)
    with pytest.raises(ClassroomError, match="not open"):
        submissions.submit(item=item, student=w.s1, answer="3", now=T - timedelta(days=2))


def test_without_a_late_period_the_due_time_closes() -> None:
    w = course_world()
    item = _timed_item(w, T, None)
    assert _credit(item, w.s1, T) == (False, 1.0)
    with pytest.raises(ClassroomError, match="closed"):
        submissions.submit(item=item, student=w.s1, answer="3", now=T + SECOND)


def test_an_extension_moves_both_limits_for_that_student_only() -> None:
    w = course_world()
    item = _timed_item(w, T, T + timedelta(hours=1))
    Extension.objects.create(
        assignment=item.assignment,
        student=w.s1,
        due_at=T + timedelta(hours=2),
        late_until=T + timedelta(hours=3),
    )
    assert _credit(item, w.s1, T + timedelta(hours=2)) == (False, 1.0)
    assert _credit(item, w.s1, T + timedelta(hours=2) + SECOND) == (True, 0.4)
    assert _credit(item, w.s1, T + timedelta(hours=3)) == (True, 0.4)
    with pytest.raises(ClassroomError, match="closed"):
        submissions.submit(item=item, student=w.s1, answer="3", now=T + timedelta(hours=3) + SECOND)
    # The other student keeps the course's window.
    assert _credit(item, w.s2, T + SECOND) == (True, 0.4)
    with pytest.raises(ClassroomError, match="closed"):
        submissions.submit(item=item, student=w.s2, answer="3", now=T + timedelta(hours=1) + SECOND)


@pytest.mark.parametrize("stored_in", ["UTC", "America/Los_Angeles"])
@pytest.mark.parametrize("asked_in", ["UTC", "America/Los_Angeles"])
def test_one_instant_in_two_time_zones_grades_the_same(stored_in: str, asked_in: str) -> None:
    """17:00 UTC is 10:00 in Los Angeles (PDT, on 10 March 2026): whichever way the limits and
    the submission time are written, exactly the due time is on time and a second later late."""
    w = course_world()
    due = T.astimezone(ZoneInfo(stored_in))
    item = _timed_item(w, due, due + timedelta(hours=1))
    at = T.astimezone(ZoneInfo(asked_in))
    assert _credit(item, w.s1, at) == (False, 1.0)
    assert _credit(item, w.s1, at + SECOND) == (True, 0.4)
    assert _credit(item, w.s2, at + timedelta(hours=1)) == (True, 0.4)
    with pytest.raises(ClassroomError, match="closed"):
        submissions.submit(
            item=item, student=w.s2, answer="3", now=at + timedelta(hours=1, seconds=1)
        )
    # The pure rule agrees, wall-clock readings notwithstanding.
    la = T.astimezone(ZoneInfo("America/Los_Angeles"))
    assert la.hour == 10
    rule = {"opens_at": T - timedelta(days=1), "late_until": T + timedelta(hours=1)}
    assert grading.timing(la, due=T, late_credit=40, **rule) == grading.timing(
        T, due=la, late_credit=40, **rule
    )
    assert grading.timing(la + SECOND, due=T, late_credit=40, **rule).factor != 1.0


def test_only_students_of_the_course_submit() -> None:
    w = course_world()
    item = _output_item(w)
    for who in (w.instructor, w.outsider):
        with pytest.raises(ClassroomError, match="Only the course's students"):
            submissions.submit(item=item, student=who, answer="3")
    assert not Submission.objects.exists()
