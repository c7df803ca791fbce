"""Pools (pools.py): items sharing a pool label are one slot; each student draws one (stable,
seeded by assignment, label and student), sees and answers only that one; the staff see the draw;
the gradebook counts only the drawn item and an item's statistics only the students who drew
it."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground.classroom import gradebook, pools, stats, submissions
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Item, Membership, Mode, Role, Submission
from tests.classroom.student_world import (
    assignment,
    client_for,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _world() -> tuple[Any, Any, Item, Item, Item, list[Any]]:
    """An assignment with a plain item and a pool "A" of two items; eight students."""
    w = course_world()
    a = assignment(w.course)
    plain = Item.objects.create(
        assignment=a, mode=Mode.OUTPUT, program=library_program(), title="Plain", position=0
    )
    hand_made_key(plain, real=real_trace("'zq-7731'"))
    pooled = []
    for n, (source, value) in enumerate(
        [("def f(s):\n    return s * 2\n", "'ABAB'"), ("def f(s):\n    return s + 'Q'\n", "'ABQ'")]
    ):
        program = library_program(source=source, call="f('AB')", external_id=f"pool-{n}")
        item = Item.objects.create(
            assignment=a, mode=Mode.OUTPUT, program=program, title=f"Pooled {n + 1}",
            position=n + 1, pool="A", points=2.0,
        )  # fmt: skip
        hand_made_key(item, real=real_trace(value))
        pooled.append(item)
    students = [w.s1, w.s2]
    for _ in range(6):
        user = UserFactory()
        Membership.objects.create(course=w.course, user=user, role=Role.STUDENT)
        students.append(user)
    return w, a, plain, pooled[0], pooled[1], students


def _drawn(a: Any, student: Any) -> Item:
    return next(i for i in pools.items_for(a, student) if i.pool == "A")


def test_each_student_draws_one_item_of_the_pool_and_keeps_it() -> None:
    _w, a, plain, one, two, students = _world()
    for student in students:
        mine = pools.items_for(a, student)
        assert [i.pool for i in mine] == ["", "A"]  # the plain item and one of the pool
        assert mine[0].pk == plain.pk
        assert all(_drawn(a, student).pk == mine[1].pk for _ in range(3))  # stable
    # Eight students: both items are drawn (all on one: 1 in 2 ** 7).
    assert {_drawn(a, s).pk for s in students} == {one.pk, two.pk}
    # Once answered, the draw stays even if the pool grows.
    student = students[0]
    theirs = _drawn(a, student)
    submissions.submit(item=theirs, student=student, answer="'nope'")
    for n in range(5):
        extra = Item.objects.create(
            assignment=a, mode=Mode.OUTPUT, program=library_program(external_id=f"x{n}"),
            pool="A", position=10 + n,
        )  # fmt: skip
        hand_made_key(extra, real=real_trace("'x'"))
    assert _drawn(a, student).pk == theirs.pk


def test_a_student_sees_and_answers_only_their_draw() -> None:
    w, a, _plain, one, two, students = _world()
    student = next(s for s in students if _drawn(a, s).pk == one.pk)
    client = client_for(student)
    page = client.get(a.get_absolute_url()).content.decode()
    assert "Pooled 1" in page
    assert "Pooled 2" not in page
    assert client.get(one.get_absolute_url()).status_code == 200
    assert client.get(two.get_absolute_url()).status_code == 404
    url = reverse("classroom:submit", args=[w.course.pk, a.pk, two.pk])
    assert client.post(url, {"answer": "'ABQ'"}).status_code == 404
    with pytest.raises(ClassroomError, match="not one of yours"):
        submissions.submit(item=two, student=student, answer="'ABQ'")
    assert not Submission.objects.filter(item=two).exists()


def test_the_staff_see_each_students_draw_and_the_gradebook_counts_only_it() -> None:
    w, a, plain, one, two, students = _world()
    got_one = next(s for s in students if _drawn(a, s).pk == one.pk)
    got_two = next(s for s in students if _drawn(a, s).pk == two.pk)
    submissions.submit(item=one, student=got_one, answer="'ABAB'")  # right: 2 points
    submissions.submit(item=plain, student=got_one, answer="'zq-7731'")  # right: 1 point
    book = gradebook.build(a)
    rows = {r.student_id: r for r in book.rows}
    row = rows[got_one.pk]
    assert [c.drawn for c in row.cells] == [True, True, False]
    assert (row.total, row.possible, row.percent) == (3.0, 3.0, 100.0)
    assert [c.drawn for c in rows[got_two.pk].cells] == [True, False, True]
    assert book.possible == 3.0  # one item of the pool per student, not both
    staff = client_for(w.instructor)
    page = staff.get(reverse("classroom:gradebook", args=[w.course.pk, a.pk])).content.decode()
    assert "not drawn" in page
    listing = staff.get(
        reverse("classroom:submissions", args=[w.course.pk, a.pk]) + f"?student={got_two.pk}"
    ).content.decode()
    assert "What this student got" in listing
    assert "Pooled 1" in listing.split("What this student got")[1].split("not drawn")[0]


def test_statistics_count_only_the_students_who_drew_the_item() -> None:
    w, a, _plain, one, two, students = _world()
    drew_one = [s for s in students if _drawn(a, s).pk == one.pk]
    drew_two = [s for s in students if _drawn(a, s).pk == two.pk]
    for s in drew_one:
        submissions.submit(item=one, student=s, answer="'ABAB'")
    # A student who drew the other item, answered it, and has an answer to this one on record
    # all the same (the site refuses it; say, written in the database): it does not count.
    other = drew_two[0]
    submissions.submit(item=two, student=other, answer="'ABQ'")
    Submission.objects.create(
        item=one, student=other, attempt=1, answer="'wrong'", score=0.0, credit=0.0,
        status=Submission.Status.GRADED,
    )  # fmt: skip
    result = stats.item_stats(Item.objects.get(pk=one.pk))
    assert result.drew == len(drew_one)
    assert (result.best.right, result.best.total) == (len(drew_one), len(drew_one))
    assert result.wrong == []  # the other student's wrong answer is not among them
    page = client_for(w.instructor).get(
        reverse("classroom:item_stats", args=[w.course.pk, a.pk, one.pk])
    )
    assert f"{len(drew_one)}: only they count here" in page.content.decode()
