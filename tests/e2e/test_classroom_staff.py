"""A teacher in a real browser: the item form's live library search, picking, the fields that
follow the mode, and the submissions list that refreshes itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.classroom.models import Item
from playground.programs.models import Puzzle
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    LibraryProgramFactory,
    SubmissionFactory,
    staffed_course,
    student_of,
)
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_picking_an_item_from_the_library(page: Page, live_server: LiveServer) -> None:
    course, _ = staffed_course()
    assignment = AssignmentFactory(course=course)
    LibraryProgramFactory(title="CRUXEval sample_1", source="def f(s):\n    return s.upper()\n")
    LibraryProgramFactory(title="CRUXEval sample_2")
    Puzzle.objects.create(
        name="Upper_3:0",
        family="Upper_3",
        source_index=0,
        module="m",
        ans_type="str",
        sat="def sat(s: str):\n    return s.isupper()\n",
    )
    log_in(page, live_server.url, "teacher")
    page.goto(live_server.url + f"/courses/{course.pk}/assignments/{assignment.pk}/items/new/")
    expect(page.locator("#checkpoints")).to_be_hidden()

    page.get_by_label("Search the library").fill("upper")
    expect(page.locator("#library-results")).to_contain_text("1 match.")
    # click, not check: the answer puts a checked radio of the same group ("pick") in #picked,
    # which unchecks the list's one, and on a fast answer before Playwright looks again
    # check() reports "did not change its state". What the user sees is the picked box.
    page.locator("#library-results input[type=radio]").first.click()
    expect(page.locator("#picked")).to_contain_text("CRUXEval sample_1")
    expect(page.locator("#picked")).to_contain_text("return s.upper()")

    page.get_by_label("Predict the next state").check()  # its asked steps, for it alone
    expect(page.locator("#next-state-config")).to_be_visible()
    page.get_by_label("Predict the trace").check()
    expect(page.locator("#checkpoints")).to_be_visible()
    expect(page.locator("#next-state-config")).to_be_hidden()
    page.get_by_label("Solve the puzzle").check()  # the results become P3 puzzles
    expect(page.locator("#library-results")).to_contain_text("Upper_3:0")
    expect(page.locator("#checkpoints")).to_be_hidden()
    page.locator("#library-results input[type=radio]").first.click()
    expect(page.locator("#picked")).to_contain_text("Upper_3:0")
    page.get_by_label("Search the library").press("Enter")  # searches, does not submit
    expect(page.locator("#picked")).to_contain_text("Upper_3:0")

    page.get_by_label("Title").fill("Shout")
    page.get_by_label("Title").press("Enter")  # saves (and does not ask for more rows)
    page.wait_for_url(lambda url: url.endswith("/edit/#items"))
    assert Item.objects.get().puzzle is not None
    expect(page.locator("#items")).to_contain_text("Shout")
    expect(page.locator("#items")).to_contain_text("P3 Upper_3:0")


def test_the_submissions_list_refreshes_itself(page: Page, live_server: LiveServer) -> None:
    course, _ = staffed_course()
    assignment = AssignmentFactory(course=course)
    item = ItemFactory(assignment=assignment, title="Sum")
    sam = student_of(course, "sam")
    log_in(page, live_server.url, "teacher")
    page.goto(live_server.url + f"/courses/{course.pk}/assignments/{assignment.pk}/submissions/")
    expect(page.locator("#submission-rows")).to_contain_text("No submissions")
    SubmissionFactory(item=item, student=sam, answer="5", score=0.0, late=True)
    expect(page.locator("#submission-rows")).to_contain_text("sam", timeout=6000)
    expect(page.locator("#submission-rows")).to_contain_text("late")
