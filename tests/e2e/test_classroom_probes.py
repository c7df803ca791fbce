"""A student answers an "answer the probes" item in a real browser (issue 20): one field per
question (True/False for coverage), each question marked after the htmx answer, the partial
credit and the incremental consistency; with the last attempt used, each true answer and its
step, whose link moves the real run's viewer there."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.classroom import keys
from playground.classroom.models import Item, Mode, Submission
from tests.classroom.student_world import (
    assignment,
    course_world,
    hand_made_key,
    library_program,
)
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SOURCE = (
    "def f(xs):\n"
    "    total = 0\n"
    "    for x in xs:\n"
    "        if x > 2:\n"
    "            total += x * 7\n"
    "    return total\n"
)
CALL = "f([1, 3, 5])"
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS", "")


def test_a_student_answers_the_probes_and_sees_each_mark(
    page: Page, live_server: LiveServer
) -> None:
    w = course_world()
    program = library_program(source=SOURCE, call=CALL, expected="56")
    item = Item.objects.create(
        assignment=assignment(w.course, max_attempts=1), mode=Mode.PROBES, program=program,
        title="Probes of a loop",
    )  # fmt: skip
    hand_made_key(item, real=sandbox.run(SOURCE, call=CALL), owner=w.instructor)
    questions = keys.questions(item)
    state = next(n for n, p in enumerate(questions) if p.kind == "state")

    log_in(page, live_server.url, "student1")
    page.goto(live_server.url + item.get_absolute_url())
    expect(page.locator("#probe-questions > li")).to_have_count(len(questions))
    expect(page.locator(".probe-truth")).to_have_count(0)
    for n, probe in enumerate(questions):
        if probe.kind == "coverage":
            page.locator(f"input[name=probe_{n}][value={probe.truth}]").check()
        elif n == state:
            page.locator(f"input[name=probe_{n}]").fill("'not it'")
        else:
            page.locator(f"input[name=probe_{n}]").fill(probe.truth)
    page.get_by_role("button", name="Submit").click()

    n = len(questions)
    expect(page.locator("#result")).to_contain_text(f"Partly right ({round(100 * (n - 1) / n)}%)")
    expect(page.locator("#result")).to_contain_text(f"{n - 1} of {n} questions right")
    expect(page.locator("#probe-consistency")).to_contain_text("Incremental consistency")
    expect(page.locator('#probe-questions > li[data-status="correct"]')).to_have_count(n - 1)
    wrong = page.locator('#probe-questions > li[data-status="wrong"]')
    expect(wrong).to_have_count(1)
    expect(wrong).to_contain_text(questions[state].question)
    # The only attempt is used: the true answers now, each linked to its step in the real run.
    expect(wrong.locator(".probe-truth")).to_contain_text(questions[state].truth)
    expect(page.locator("#viewer")).to_have_count(1)
    step = questions[state].step
    assert step is not None
    wrong.locator(".probe-step").click()
    expect(page.locator("#step-info")).to_contain_text(f"Step {step + 1} of")
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "classroom_probes.png"), full_page=True)
    assert Submission.objects.get(student=w.s1).score == pytest.approx((n - 1) / n)
