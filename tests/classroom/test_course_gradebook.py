"""The course gradebook (coursebook.py): assignments that have opened, grouped by category, a
category the weighted mean of its assignments, the course grade the weighted mean of the
categories by the instructor's weights; the CSV formula-safe; who may see it and set weights."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.classroom import coursebook, submissions
from playground.classroom.models import Assignment, Item, Membership, Mode, Role
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


def _assignment_with_one_item(w: Any, title: str, category: str, weight: float = 1.0) -> Item:
    a = assignment(w.course, title=title, category=category, weight=weight)
    item = Item.objects.create(
        assignment=a, mode=Mode.OUTPUT, program=library_program(external_id=title)
    )
    hand_made_key(item, real=real_trace("'right'"))
    return item


def _world() -> tuple[Any, list[Item]]:
    w = course_world()
    items = [
        _assignment_with_one_item(w, "HW1", "Homework"),
        _assignment_with_one_item(w, "HW2", "Homework", weight=3.0),
        _assignment_with_one_item(w, "Midterm", "=SUM(A1)"),  # typed by a person: a formula
    ]
    # Not open yet: not in the gradebook.
    later = timezone.now() + timedelta(days=3)
    Assignment.objects.create(
        course=w.course, title="Final", opens_at=later, due_at=later + timedelta(days=1)
    )
    hw1, hw2, mid = items
    submissions.submit(item=hw1, student=w.s1, answer="'right'")  # 100%
    submissions.submit(item=hw2, student=w.s1, answer="'wrong'")  # 0%
    submissions.submit(item=mid, student=w.s1, answer="'right'")  # 100%
    return w, items


def test_categories_and_weights_make_the_course_grade() -> None:
    w, _ = _world()
    book = coursebook.build(w.course)
    assert [a.title for a in book.assignments] == ["HW1", "HW2", "Midterm"]
    assert [(c.name, c.share) for c in book.categories] == [("Homework", 50.0), ("=SUM(A1)", 50.0)]
    rows = {r.username: r for r in book.rows}
    one = rows["student1"]
    assert one.percents == [100.0, 0.0, 100.0]
    assert one.categories == [25.0, 100.0]  # Homework: (1 x 100 + 3 x 0) / 4
    assert one.total == 62.5  # equal weights
    assert rows["student2"].total == 0.0  # nothing submitted counts as 0
    # The instructor weighs Homework 40 and the midterm's category 60.
    w.course.category_weights = {"Homework": 40, "=SUM(A1)": 60}
    w.course.save()
    book = coursebook.build(w.course)
    assert [c.share for c in book.categories] == [40.0, 60.0]
    assert {r.username: r for r in book.rows}["student1"].total == pytest.approx(70.0)


def test_the_page_the_weights_form_and_a_formula_safe_csv() -> None:
    w, _ = _world()
    url = reverse("classroom:course_gradebook", args=[w.course.pk])
    staff = client_for(w.instructor)
    page = staff.get(url).content.decode()
    assert "62.5%" in page
    assert "Final" not in page
    refused = staff.post(url, {"weights": "Homework: lots"})
    assert refused.status_code == 200
    assert "Homework: the weight is a number, e.g. 40." in refused.content.decode()
    assert staff.post(url, {"weights": "Homework: 40\n=SUM(A1): 60"}).status_code == 302
    w.course.refresh_from_db()
    assert w.course.category_weights == {"Homework": 40.0, "=SUM(A1)": 60.0}
    assert "70.0%" in staff.get(url).content.decode()
    w.s1.email = '=HYPERLINK("http://x")@example.com'
    w.s1.save()
    response = staff.get(reverse("classroom:course_gradebook_csv", args=[w.course.pk]))
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "username", "email", "Homework: HW1", "Homework: HW2", "'=SUM(A1): Midterm",
        "Homework (category)", "'=SUM(A1) (category)", "course grade",
    ]  # fmt: skip
    one = next(r for r in rows if r[0] == "student1")
    assert one[1].startswith("'=HYPERLINK")
    assert one[2:] == ["100.00", "0.00", "100.00", "25.00", "100.00", "70.00"]


def test_who_may_see_the_course_gradebook_and_set_its_weights() -> None:
    w, _ = _world()
    assistant = UserFactory(username="assistant")
    Membership.objects.create(course=w.course, user=assistant, role=Role.ASSISTANT)
    page = reverse("classroom:course_gradebook", args=[w.course.pk])
    sheet = reverse("classroom:course_gradebook_csv", args=[w.course.pk])
    people = [None, w.s1, w.outsider, assistant, w.instructor]
    expected = {page: ["login", 403, 404, 200, 200], sheet: ["login", 403, 404, 200, 200]}
    for url, want in expected.items():
        got = []
        for person in people:
            response = client_for(person).get(url)
            login = response.status_code == 302 and "login" in response.headers["Location"]
            got.append("login" if login else response.status_code)
        assert got == want, url
    # Weights: instructors only.
    assert client_for(assistant).post(page, {"weights": "Homework: 9"}).status_code == 403
    assert client_for(w.s1).post(page, {"weights": "Homework: 9"}).status_code == 403
    w.course.refresh_from_db()
    assert w.course.category_weights == {}
