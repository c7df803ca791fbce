"""A student answers items in a real browser: the htmx answer form, the real run's viewer that
arrives with the first graded answer, and a puzzle answer polled until it is graded."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.classroom import marking
from playground.classroom.models import Item, Mode, Submission
from tests.classroom.student_world import (
    SECRET,
    assignment,
    course_world,
    hand_made_key,
    library_program,
    puzzle,
)
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_answer_brings_its_result_and_the_real_run(page: Page, live_server: LiveServer) -> None:
    w = course_world()
    program = library_program()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.OUTPUT, program=program)
    trace = sandbox.run(program.source, call=program.call)
    hand_made_key(item, real=trace, owner=w.instructor)
    log_in(page, live_server.url, "student1")
    page.goto(live_server.url + item.get_absolute_url())
    expect(page.locator("#viewer")).to_have_count(0)

    field = page.locator("#answer-field")
    field.fill("[1, 2")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#answer-error")).to_contain_text("Python literal")
    expect(page.locator("#answer-field")).to_have_value("[1, 2")

    page.locator("#answer-field").fill("'abc'")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("Wrong")
    # Attempts are left: no answer, no real run yet (it would be copied into the next one).
    expect(page.locator("#result")).not_to_contain_text(SECRET)
    expect(page.locator("#viewer")).to_have_count(0)

    page.locator("#answer-field").fill(f"'{SECRET}'")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("Right")
    # The real run's viewer arrived with the right answer, and it steps.
    expect(page.locator("#viewer")).to_have_count(1)
    expect(page.locator("#step-info")).to_contain_text("Step 1 of")
    page.locator("#viewer").get_by_role("button", name="Next ▶").click()
    expect(page.locator("#step-info")).to_contain_text("Step 2 of")
    assert Submission.objects.filter(student=w.s1).count() == 2


def test_a_puzzle_answer_updates_itself_once_graded(page: Page, live_server: LiveServer) -> None:
    w = course_world()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.PUZZLE, puzzle=puzzle())
    log_in(page, live_server.url, "student1")
    page.goto(live_server.url + item.get_absolute_url())
    page.locator("#answer-field").fill("'ababab'")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("checking your answer")
    # No Celery worker behind the live server: do the worker's job.
    marking.grade_puzzle(Submission.objects.get())
    expect(page.locator("#result")).to_contain_text("Right", timeout=5_000)
