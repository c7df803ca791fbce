"""A timed exam in a real browser (issue 24): a student starts it, sees the countdown from the
server's end time, and an answer sent after the end is refused by the server and shown back."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.classroom.models import ExamStart, Item, Mode, Submission
from tests.classroom.student_world import (
    SECRET,
    assignment,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/playground-e2e")


def test_a_student_starts_a_timed_exam_and_the_server_ends_it(
    page: Page, live_server: LiveServer
) -> None:
    w = course_world()
    exam = assignment(w.course, title="Midterm", time_limit=20, exam_mode=True)
    item = Item.objects.create(assignment=exam, mode=Mode.OUTPUT, program=library_program())
    hand_made_key(item, real=real_trace(f"'{SECRET}'"), owner=w.instructor)
    log_in(page, live_server.url, "student1")

    page.goto(live_server.url + exam.get_absolute_url())
    expect(page.locator("#exam-clock")).to_contain_text("20 minutes from when you start")
    page.get_by_role("button", name="Start the exam").click()
    page.wait_for_url(lambda url: url.endswith(item.get_absolute_url()))
    # The countdown starts from the server's 20 minutes and runs.
    left = page.locator("#exam-clock-left")
    expect(left).to_have_text(re.compile(r"^(19:5\d|20:00)$"))
    first = left.inner_text()
    page.wait_for_timeout(1500)
    assert left.inner_text() != first
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "classroom-exam-countdown.png"))

    # The time runs out on the server (the start moved 21 minutes back), while the page still
    # shows its form: the answer typed now is refused and shown back.
    ExamStart.objects.filter(student=w.s1).update(started_at=timezone.now() - timedelta(minutes=21))
    page.locator("#answer-field").fill("'typed-too-late'")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#answer-error")).to_contain_text("Your time for this exam ended at")
    expect(page.locator("#kept-answer")).to_contain_text("typed-too-late")
    expect(page.locator("#answer-field")).to_have_count(0)
    # The clock above the question says so too (it came with the answer).
    expect(page.locator("#exam-clock-over")).to_have_text("Your time is up")
    expect(page.locator("#exam-clock")).to_have_count(1)
    assert not Submission.objects.exists()
    page.screenshot(path=str(SHOTS / "classroom-exam-refused.png"), full_page=True)
