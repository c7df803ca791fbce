"""A timed exam with a varied item and a pool in a real browser (issue 24): two students get
different calls of the same item and different items of the pool (each sees only their draw; the
other's is a 404), one answers their own call and is graded against their own key, the other runs
out of time and is refused by the server; the instructor sees each student's variant and draw,
publishes, and the first student sees their result."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.classroom import pools, variants
from playground.classroom.models import ExamStart, Item, Mode, Submission, Variant
from playground.runs.models import Run
from tests.classroom.student_world import (
    assignment,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/playground-e2e")
SOURCE = "def f(n):\n    return 'vq' + str(n * 111) + 'zk'\n"
NUMBERS = (3, 5, 7)


def _value(n: int) -> str:
    return f"'vq{n * 111}zk'"


def _varied_exam(w: Any) -> tuple[Any, Item]:
    """A timed exam-mode assignment with one varied item of three variants (their keys stored
    as the task stores them), seeded so that student1 and student2 get different ones."""
    exam = assignment(w.course, title="Midterm", time_limit=20, exam_mode=True)
    program = library_program(source=SOURCE, call="f(1)", expected=_value(1))
    item = Item.objects.create(assignment=exam, mode=Mode.OUTPUT, program=program, title="Varied")
    hand_made_key(item, real=real_trace(_value(1)), owner=w.instructor)
    seed = next(
        s
        for s in range(100)
        if variants.index_for(item.pk, w.s1.pk, s, 3) != variants.index_for(item.pk, w.s2.pk, s, 3)
    )
    item.variation = {"args": [{"index": 0, "range": [2, 9]}], "count": 3, "seed": seed}
    item.save(update_fields=["variation"])
    key = variants.spec_key(item)
    for number, n in enumerate(NUMBERS):
        run = Run.objects.create(
            program=program, source=SOURCE, call=f"f({n})", status=Run.Status.DONE,
            owner=w.instructor, sent_as_tasks=False,
        )  # fmt: skip
        run.traces.create(kind="real", status="ok", data=real_trace(_value(n)))
        Variant.objects.create(
            item=item, spec=key, number=number, call=f"f({n})", run=run, status="valid"
        )
    return exam, item


def _pool(w: Any, exam: Any) -> dict[int, tuple[Item, Item]]:
    """A pool of two items after the varied one, labelled so that student1 and student2 draw
    different items: each student's (drawn, not drawn)."""
    label = next(
        f"P{n}"
        for n in range(100)
        if pools.index_for(exam.pk, f"P{n}", w.s1.pk, 2)
        != pools.index_for(exam.pk, f"P{n}", w.s2.pk, 2)
    )
    pooled = []
    for n, (source, value) in enumerate(
        [("def f(s):\n    return s * 2\n", "'ABAB'"), ("def f(s):\n    return s + 'Q'\n", "'ABQ'")]
    ):
        program = library_program(source=source, call="f('AB')", external_id=f"exam-pool-{n}")
        pooled_item = Item.objects.create(
            assignment=exam, mode=Mode.OUTPUT, program=program, title=f"Pooled {n + 1}",
            position=n + 1, pool=label,
        )  # fmt: skip
        hand_made_key(pooled_item, real=real_trace(value), owner=w.instructor)
        pooled.append(pooled_item)
    got = {}
    for student in (w.s1, w.s2):
        (drawn,) = [i for i in pools.items_for(exam, student) if i.pool == label]
        got[student.pk] = (drawn, next(i for i in pooled if i.pk != drawn.pk))
    assert got[w.s1.pk][0].pk != got[w.s2.pk][0].pk
    return got


def _switch_to(page: Page, base: str, username: str) -> None:
    page.context.clear_cookies()
    log_in(page, base, username)


def test_two_students_get_different_variants_of_a_timed_exams_item(
    page: Page, live_server: LiveServer
) -> None:
    w = course_world()
    exam, item = _varied_exam(w)
    drawn = _pool(w, exam)
    one, two = variants.variant_for(item, w.s1), variants.variant_for(item, w.s2)
    assert one is not None
    assert two is not None
    assert one.call != two.call
    SHOTS.mkdir(parents=True, exist_ok=True)

    # student1 starts, is asked their own call, and answers it.
    log_in(page, live_server.url, "student1")
    page.goto(live_server.url + exam.get_absolute_url())
    page.get_by_role("button", name="Start the exam").click()
    page.wait_for_url(lambda url: url.endswith(item.get_absolute_url()))
    expect(page.get_by_text("The call:")).to_contain_text(one.call)
    page.locator("#answer-field").fill(_value(int(one.call[2:-1])))
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("Submitted (attempt 1)")
    page.screenshot(path=str(SHOTS / "classroom-variant-student1.png"), full_page=True)
    mine = Submission.objects.get(student=w.s1)
    assert mine.variant_id == one.pk
    assert mine.score == 1.0  # graded against student1's own key
    # The pool: student1 sees only their draw, and the other item of the pool is not theirs.
    theirs, other = drawn[w.s1.pk]
    page.goto(live_server.url + exam.get_absolute_url())
    expect(page.locator("main")).to_contain_text(theirs.title)
    expect(page.locator("main")).not_to_contain_text(other.title)
    refused = page.goto(live_server.url + other.get_absolute_url())
    assert refused is not None
    assert refused.status == 404

    # student2 is asked another call; their time runs out on the server before they answer.
    _switch_to(page, live_server.url, "student2")
    page.goto(live_server.url + exam.get_absolute_url())
    page.get_by_role("button", name="Start the exam").click()
    page.wait_for_url(lambda url: url.endswith(item.get_absolute_url()))
    expect(page.get_by_text("The call:")).to_contain_text(two.call)
    expect(page.get_by_text("The call:")).not_to_contain_text(one.call)
    ExamStart.objects.filter(student=w.s2).update(started_at=timezone.now() - timedelta(minutes=21))
    page.locator("#answer-field").fill(_value(int(two.call[2:-1])))
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#answer-error")).to_contain_text("Your time for this exam ended at")
    assert not Submission.objects.filter(student=w.s2).exists()

    # The instructor sees which variant each student got, then publishes the results.
    _switch_to(page, live_server.url, "teacher")
    page.goto(
        live_server.url + f"/courses/{w.course.pk}/assignments/{exam.pk}/submissions/"
        f"?student={w.s2.pk}"
    )
    expect(page.locator("#drawn")).to_contain_text(two.call)
    theirs, other = drawn[w.s2.pk]
    expect(page.locator("#drawn li", has_text=theirs.title)).not_to_contain_text("not drawn")
    expect(page.locator("#drawn li", has_text=other.title)).to_contain_text("not drawn")
    page.goto(live_server.url + f"/courses/{w.course.pk}/assignments/{exam.pk}/submissions/")
    expect(page.locator("#submission-rows .variant")).to_contain_text(one.call)
    page.goto(live_server.url + f"/courses/{w.course.pk}/assignments/{exam.pk}/edit/")
    page.locator("#publish-button").click()
    expect(page.locator("#published")).to_contain_text("Published")

    # student1 now sees their result, on their own variant.
    _switch_to(page, live_server.url, "student1")
    page.goto(live_server.url + item.get_absolute_url())
    expect(page.locator("#result")).to_have_attribute("data-score", "1.0")
    expect(page.get_by_text("The call:")).to_contain_text(one.call)
    page.screenshot(path=str(SHOTS / "classroom-variant-published.png"), full_page=True)
