"""In a real browser: a teacher picks checkpoint lines by clicking the program, is told why a
checkpoint cannot be reached before anything is saved, and sees a key's problem in the item
list; a student reads the rule of spot the divergence and picks a step; run pages read "no
model call was needed" and show the real value beside the model's. Screenshots at 1280 and
390 px go to test-artifacts/ (looked at, not compared)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.classroom.models import Item, Mode
from playground.programs.models import Dataset
from playground.runs.models import Run, Trace
from tests.classroom.staff_factories import (
    AssignmentFactory,
    LibraryProgramFactory,
    staffed_course,
    student_of,
)
from tests.classroom.student_world import hand_made_key
from tests.e2e.conftest import log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"


def _shots(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        width_now = page.evaluate("document.documentElement.scrollWidth")
        assert width_now <= width, f"{name} is {width_now} px wide at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_clicking_lines_fills_checkpoints_and_unreachable_ones_are_refused(
    page: Page, live_server: LiveServer, eager: None
) -> None:
    course, _ = staffed_course()
    assignment = AssignmentFactory(course=course)
    LibraryProgramFactory(title="CRUXEval sample_7", source=SOURCE, call="f([4, 5, 6])")
    log_in(page, live_server.url, "teacher")
    page.goto(live_server.url + f"/courses/{course.pk}/assignments/{assignment.pk}/items/new/")
    # Each search answer replaces the list: wait for the mode's, then for the typed one's,
    # so that no late answer replaces the list under the click (a loaded machine reorders them).
    with page.expect_response(lambda r: "/library/" in r.url):
        page.get_by_label("Predict the trace").check()
    code = page.locator("#checkpoint-code")
    expect(code).to_contain_text("Pick a program")
    with page.expect_response(lambda r: "/library/" in r.url and "q=sample_7" in r.url):
        page.get_by_label("Search the library").fill("sample_7")
    expect(page.locator("#library-results li").filter(has_not_text="sample_7")).to_have_count(0)
    page.locator("#library-results li", has_text=re.compile(r"sample_7\b")).locator(
        "input[type=radio]"
    ).click()  # not check(): #picked's checked radio of the same group unchecks it
    expect(code.locator("button.cp-line")).to_have_count(5)

    code.locator('button[data-line="4"]').click()
    row = page.locator("table.checkpoints tbody tr").first
    expect(row.locator("input[name=cp_line]")).to_have_value("4")
    expect(row.locator("input[name=cp_variables]")).to_be_focused()
    page.keyboard.type("total")
    row.locator("input[name=cp_occurrence]").fill("50")
    expect(code.locator('button[data-line="4"]')).to_contain_text("checkpoint 1")
    code.locator('button[data-line="2"]').click()  # the next free row
    second = page.locator("table.checkpoints tbody tr").nth(1)
    expect(second.locator("input[name=cp_line]")).to_have_value("2")
    page.keyboard.type("xs")
    _shots(page, "checkpoint-picker")

    page.get_by_role("button", name="Save item", exact=True).last.click()
    errors = page.locator("#checkpoints .error")
    expect(errors.first).to_contain_text(
        "Checkpoint 1: line 4 runs only 3 times, so there is no 50th time."
    )
    assert not Item.objects.exists()
    # What was typed is kept, and the code view marks the checkpoints' lines again.
    expect(row.locator("input[name=cp_occurrence]")).to_have_value("50")
    expect(code.locator('button[data-line="4"]')).to_contain_text("checkpoint 1")
    _shots(page, "checkpoint-refused")

    row.locator("input[name=cp_occurrence]").fill("2")
    page.get_by_role("button", name="Save item", exact=True).last.click()
    page.wait_for_url(lambda url: url.endswith("/edit/#items"))
    item = Item.objects.get()
    assert item.checkpoints[0] == {"line": 4, "occurrence": 2, "variables": ["total"]}
    expect(page.locator("#items")).to_contain_text("ready")


def test_the_item_list_and_the_student_page(page: Page, live_server: LiveServer) -> None:
    course, _ = staffed_course()
    student_of(course, "ada")
    assignment = AssignmentFactory(course=course)
    program = LibraryProgramFactory(title="CRUXEval sample_8", source=SOURCE, call="f([4, 5])")
    real = {
        "schema": 1, "status": "ok", "result": "9", "error": None, "stats": {"steps": 3},
        "steps": [
            {"i": 0, "line": 1, "func": "f", "event": "call", "locals": {"xs": "[4, 5]"}},
            {"i": 1, "line": 2, "func": "f"},
            {"i": 2, "line": 3, "func": "f", "locals": {"total": "0"}},
        ],
    }  # fmt: skip
    stuck = Item.objects.create(
        assignment=assignment, mode=Mode.TRACE, program=program, title="Saved long ago",
        checkpoints=[{"line": 4, "occurrence": 50, "variables": ["total"]}], position=0,
    )  # fmt: skip
    hand_made_key(stuck, real=real)
    spot = Item.objects.create(
        assignment=assignment, mode=Mode.DIVERGENCE, program=program, title="Spot it",
        position=1,
    )  # fmt: skip
    model = [
        {"i": 0, "line": 1, "func": "f", "event": "call"},  # leaves xs out: no mistake
        {"i": 1, "line": 2, "func": "f"},
        {"i": 2, "line": 3, "func": "f", "locals": {"total": "1"}},  # wrong: total is 0
    ]
    hand_made_key(spot, real=real, emulated={**real, "steps": model})

    log_in(page, live_server.url, "teacher")
    page.goto(live_server.url + f"/courses/{course.pk}/assignments/{assignment.pk}/edit/")
    expect(page.locator(f"#item-{stuck.pk}")).to_contain_text("cannot be answered")
    expect(page.locator(f"#item-{stuck.pk}")).to_contain_text("line 4 never runs")
    _shots(page, "item-list-key-problem")

    page.context.clear_cookies()
    log_in(page, live_server.url, "ada")
    page.goto(live_server.url + spot.get_absolute_url())
    expect(page.locator("#divergence-rule")).to_contain_text("What a step leaves out")
    expect(page.locator("#item-progress")).to_contain_text("Item 2 of 2 · 0 of 2 answered")
    _shots(page, "spot-the-divergence")
    page.locator('input[name=answer][value="3"]').check()
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("Right")
    expect(page.locator("#item-progress")).to_contain_text("1 of 2 answered · 1 right")
    page.get_by_role("link", name="Previous: Saved long ago").click()
    expect(page.locator("#refusal")).to_contain_text("its answer key has a problem")


def test_run_pages_say_no_model_was_needed_and_show_both_values(
    page: Page, live_server: LiveServer
) -> None:
    owner = UserFactory(username="runner")
    program = LibraryProgramFactory(dataset=Dataset.USER, source=SOURCE, call="f([4, 5])")
    real = {"schema": 1, "status": "ok", "result": "9", "error": None, "steps": [],
            "stats": {"steps": 0, "wall_ms": 1}}  # fmt: skip

    def run(method: str, prediction: str, verdict: dict[str, object]) -> Run:
        made = Run.objects.create(
            program=program, source=SOURCE, call="f([4, 5])", method=method, model="tiny",
            status=Run.Status.DONE, emulation_done=True, prediction=prediction, verdict=verdict,
            owner=owner,
            comparison={"result_match": prediction == "9", "real_result": "9"},
        )  # fmt: skip
        Trace.objects.create(run=made, kind=Trace.Kind.REAL, status="ok", data=real)
        return made

    coc = run("coc", "9", {"status": "no_model", "explanation": "Python ran every line of this "
              "program itself, so the model was never asked: this run says nothing about the "
              "model (the call returns 9)."})  # fmt: skip
    direct = run("direct", "[4, 5]" * 40, {"status": "wrong", "explanation": "Predicted it."})
    log_in(page, live_server.url, "runner")
    page.goto(live_server.url + coc.get_absolute_url())
    expect(page.locator("#verdict-headline")).to_have_text("No model call was needed")
    _shots(page, "verdict-no-model")
    page.goto(live_server.url + direct.get_absolute_url())
    values = page.locator("#verdict-values")
    expect(values.locator("dt")).to_have_text(["The call returns", "The model predicted"])
    expect(values.locator("dd").first).to_have_text("9")
    expect(values.locator("dd").nth(1)).to_contain_text("[4, 5][4, 5]")
    _shots(page, "verdict-direct-values")
