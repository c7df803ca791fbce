"""The score sent to the LMS is one student's grade, computed from that student's submissions
alone (``gradebook.build(assignment, student_id=...)``, so that a regrade of a class of 300 does
not build the whole gradebook 300 times): it must be exactly the whole gradebook's row for them,
in every case the gradebook counts (several attempts, late credit, overrides, partial credit,
answers still being graded, pools, results hidden until the due time, someone not a student)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from playground.classroom import gradebook, visibility
from playground.classroom.models import Assignment, ExamStart, Feedback, Submission
from playground.lti import passback
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    SubmissionFactory,
    staffed_course,
    student_of,
)

pytestmark = pytest.mark.django_db


def _from_whole_book(assignment: Assignment, student_id: int) -> passback.Score:
    """The score as the passback computed it before: the whole gradebook built, one row read."""
    book = gradebook.build(assignment)
    row = next((r for r in book.rows if r.student_id == student_id), None)
    if row is None:
        return passback.Score(0.0, book.possible or 1.0, "NotReady", "Initialized")
    cells = [c for c in row.cells if c.drawn]
    answered = [c for c in cells if c.attempts]
    handed_in = ExamStart.objects.filter(
        assignment=assignment, student_id=student_id, finished_at__isnull=False
    ).exists()
    if handed_in or (cells and len(answered) == len(cells)):
        activity = "Completed"
    else:
        activity = "InProgress" if answered else "Initialized"
    student = get_user_model().objects.get(pk=student_id)
    items = [i for i, c in zip(book.items, row.cells, strict=True) if c.drawn]
    if any(not visibility.results_shown(i, student, timezone.now()) for i in items):
        return passback.Score(None, round(row.possible, 4) or 1.0, "Pending", activity)
    pending = any(c.pending for c in cells)
    return passback.Score(
        round(row.total, 4),
        round(row.possible, 4) or 1.0,
        "Pending" if pending else "FullyGraded",
        activity,
    )


def _class(feedback: str) -> tuple[Assignment, list[Any]]:
    course, teacher = staffed_course(title="Execution 101")
    homework = AssignmentFactory(course=course, title="Loops", feedback=feedback)
    first = ItemFactory(assignment=homework, points=1)
    second = ItemFactory(assignment=homework, points=3)
    pooled = [ItemFactory(assignment=homework, points=p, pool="tracing") for p in (2, 2, 5)]
    people = [student_of(course, name) for name in ("ada", "bob", "cy", "dee", "eve", "fay")]
    ada, bob, _, dee, eve, fay = people
    SubmissionFactory(item=first, student=ada, attempt=1, score=0.0)
    SubmissionFactory(item=first, student=ada, attempt=2, score=1.0)
    SubmissionFactory(item=first, student=ada, attempt=3, score=0.0)  # the best one counts
    SubmissionFactory(item=second, student=ada, attempt=1, score=1.0, credit=0.5, late=True)
    SubmissionFactory(item=first, student=bob, attempt=1, score=0.0, override_credit=0.8)
    SubmissionFactory(item=second, student=bob, attempt=1, score=1.0, credit=0.7, late=True)
    SubmissionFactory(item=second, student=bob, attempt=2, score=1.0, override_credit=0.25)
    SubmissionFactory(item=first, student=dee, attempt=1, score=0.4)  # partial credit
    SubmissionFactory(
        item=second, student=dee, attempt=1, score=None, credit=None,
        status=Submission.Status.PENDING,
    )  # fmt: skip
    # Pools: each answers one of the pool's items (their first answer is their draw).
    for student, item, score in ((eve, pooled[0], 1.0), (fay, pooled[2], 0.6), (ada, pooled[1], 1)):
        SubmissionFactory(item=item, student=student, attempt=1, score=score)
    SubmissionFactory(item=first, student=eve, attempt=1, score=1.0)
    SubmissionFactory(item=second, student=eve, attempt=1, score=1.0)
    SubmissionFactory(item=first, student=teacher, attempt=1, score=1.0)  # not a student
    return homework, [*people, teacher]


@pytest.mark.parametrize("feedback", [Feedback.AFTER_ATTEMPT, Feedback.AFTER_DUE])
def test_one_students_grade_is_the_whole_gradebooks_row_for_them(feedback: str) -> None:
    homework, people = _class(feedback)
    whole = gradebook.build(homework)
    assert len(whole.rows) == 6
    scores = {}
    for person in people:
        one = gradebook.build(homework, student_id=person.pk)
        assert one.items == whole.items
        assert one.possible == whole.possible
        assert one.rows == [r for r in whole.rows if r.student_id == person.pk]
        score = passback.current(homework, person.pk)
        assert score == _from_whole_book(homework, person.pk)
        scores[person.username] = score
    # The cases are what they say (each one would show a difference if the two disagreed).
    if feedback == Feedback.AFTER_DUE:  # hidden until the due time: no score for anyone
        assert {s.given for n, s in scores.items() if n != "teacher"} == {None}
        assert scores["dee"].grading == "Pending"
        return
    assert scores["ada"].given == round(1.0 + 0.5 * 3 + 2, 4)  # best attempt, late half, pool
    assert (scores["ada"].maximum, scores["ada"].activity) == (6.0, "Completed")
    assert scores["bob"].given == round(0.8 + 0.7 * 3, 4)  # an override; the best attempt
    assert (scores["dee"].given, scores["dee"].grading) == (0.4, "Pending")
    assert (scores["cy"].given, scores["cy"].activity) == (0.0, "Initialized")
    assert (scores["fay"].given, scores["fay"].maximum) == (3.0, 9.0)  # 60% of the 5-point draw
    assert scores["eve"].given == 6.0
    assert scores["teacher"] == passback.Score(0.0, whole.possible, "NotReady", "Initialized")
