"""A student takes a "predict the next state" item in a real browser (issue 24): they predict
step 4 (right) and step 7 (wrong), and after each answer the server shows that step's true
state (never before), the mark, and the next question; the last answer records the score."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.classroom.models import Item, Mode, Submission
from tests.classroom.student_world import assignment, course_world, hand_made_key, library_program
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
CALL = "f([40, 900])"
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS", "")


def test_a_student_predicts_two_steps_and_sees_each_reveal(
    page: Page, live_server: LiveServer
) -> None:
    w = course_world()
    program = library_program(source=SOURCE, call=CALL, expected="940")
    item = Item.objects.create(
        assignment=assignment(w.course), mode=Mode.NEXT_STATE, program=program,
        title="Step through a sum", step_choice={"steps": [4, 7]},
    )  # fmt: skip
    hand_made_key(item, real=sandbox.run(SOURCE, call=CALL), owner=w.instructor)

    log_in(page, live_server.url, "student1")
    page.goto(live_server.url + item.get_absolute_url())
    steps = page.locator("#shown-steps > li")
    expect(steps).to_have_count(3)
    expect(page.locator("#step-form")).to_contain_text("Step 4: what happens next?")

    page.locator("#step-line").fill("4")
    page.locator("#step-changed").fill("x = 40")
    page.get_by_role("button", name="Predict and show step 4").click()
    expect(page.locator("#step-4 .step-mark")).to_have_text("right")
    expect(page.locator("#step-4")).to_contain_text("x = 40")
    expect(steps).to_have_count(6)  # steps 5 and 6 given, step 7 asked
    expect(page.locator("#next-state")).not_to_contain_text("940")
    expect(page.locator("#step-form")).to_contain_text("Step 7: what happens next?")

    page.locator("#step-line").fill("4")
    page.locator("#step-changed").fill("x = 900")
    page.get_by_role("button", name="Predict and show step 7").click()
    expect(page.locator("#step-7 .step-mark")).to_have_text("0 of 3 parts right")
    expect(page.locator("#step-7")).to_contain_text("total = 940")
    expect(page.locator("#step-done")).to_contain_text("Every asked step is predicted.")
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "classroom_next_state.png"), full_page=True)
    page.screenshot(path="/tmp/next_state_e2e.png", full_page=True)
    assert Submission.objects.get(student=w.s1).score == pytest.approx(0.5)
