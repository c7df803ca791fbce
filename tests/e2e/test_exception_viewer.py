"""Exceptions in a real browser: the real viewer steps through an exception as it unwinds (which
exception, from where, to where; never "return value None"), opens at the step that raised it and
offers to jump there; a run saved by 3103616 shows the same; the side-by-side view marks a model
that says "return None" where the frame unwound. Screenshots at 1280 and 390 px go to
test-artifacts/ (look at them when this changes)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.compare import compare_traces
from playground.runs.models import Run, Trace
from tests.e2e.conftest import signed_in
from tests.factories import ProgramFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The newcomer review's repro.
REPRO = "def g(d): return d['missing']\ndef f(): return g({'a': 1})\n"
FIXTURE = Path(__file__).parents[1] / "sandbox" / "fixtures" / "traces_v1_3103616.json"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def _run(user: AbstractBaseUser, real: dict[str, Any], **fields: Any) -> Run:
    program = ProgramFactory(source=REPRO, call="f()", owner=user)
    run = Run.objects.create(
        program=program, owner=user, status=Run.Status.DONE, source=REPRO, call="f()", **fields
    )
    Trace.objects.create(
        run=run, kind="real", status=real["status"], step_count=len(real["steps"]), data=real
    )
    return run


def _shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#viewer, #cmp").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=False)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_exception_steps_as_an_unwind_and_the_viewer_jumps_to_it(
    page: Page, live_server: LiveServer
) -> None:
    user = signed_in(page, live_server.url)
    run = _run(user, sandbox.run(REPRO, call="f()"))
    page.goto(live_server.url + run.get_absolute_url())
    info = page.locator("#step-info")
    # It opens where the KeyError was raised: g, line 1 (step 9 of 12).
    expect(info).to_have_text("Step 9 of 12 · line 1 raises KeyError: 'missing'")
    expect(page.locator(".error-line")).to_have_attribute("id", "line-1")
    page.get_by_role("button", name="Next ▶").click()
    expect(info).to_have_text(
        "Step 10 of 12 · KeyError: 'missing' leaves g() (line 1), back to f() at line 2"
    )
    expect(page.locator(".error-line")).to_have_attribute("id", "line-1")
    expect(page.locator("#frames")).to_have_text("g()f()")  # g is being left
    # 3103616 showed "return value None" here, marked as changed.
    expect(page.locator("#vars")).not_to_contain_text("return value")
    expect(page.locator("#vars")).not_to_contain_text("None")
    _shoot(page, "exception-unwind")
    page.keyboard.press("ArrowRight")
    expect(info).to_have_text(
        "Step 11 of 12 · KeyError: 'missing' arrives in f() at line 2, from g()"
    )
    expect(page.locator("#frames")).to_have_text("f()")
    page.keyboard.press("ArrowRight")
    expect(info).to_have_text(
        "Step 12 of 12 · KeyError: 'missing' leaves f() (line 2): nothing catches it, "
        "the program stops"
    )
    page.keyboard.press("Home")
    expect(info).to_contain_text("Step 1 of 12")
    page.get_by_role("button", name="Jump to the exception").click()
    expect(info).to_contain_text("Step 9 of 12 · line 1 raises")
    page.keyboard.press("End")
    page.keyboard.press("e")
    expect(info).to_contain_text("Step 9 of 12")
    # A deep link still wins over opening at the exception.
    page.goto("about:blank")
    page.goto(live_server.url + run.get_absolute_url() + "#step-2")
    expect(info).to_contain_text("Step 2 of 12")


def test_a_run_saved_by_3103616_shows_the_same_unwind(page: Page, live_server: LiveServer) -> None:
    user = signed_in(page, live_server.url)
    old = json.loads(FIXTURE.read_text())["uncaught_keyerror"]["trace"]
    assert old["schema"] == 1
    assert old["steps"][9]["locals"] == {"__return__": "None"}
    run = _run(user, old)
    page.goto(live_server.url + run.get_absolute_url())
    info = page.locator("#step-info")
    expect(info).to_have_text("Step 9 of 12 · line 1 raises KeyError: 'missing'")
    page.keyboard.press("ArrowRight")
    expect(info).to_have_text(
        "Step 10 of 12 · KeyError: 'missing' leaves g() (line 1), back to f() at line 2"
    )
    expect(page.locator("#vars")).not_to_contain_text("return value")


def test_a_model_that_returns_none_where_the_frame_unwound_is_marked(
    page: Page, live_server: LiveServer
) -> None:
    user = signed_in(page, live_server.url)
    real = sandbox.run(REPRO, call="f()")
    written = copy.deepcopy(real)
    written.update(source="emulated", method="trace", status="ok", error=None)
    for step in written["steps"]:
        step["by"] = "lm"
        if step.get("event") == "unwind":
            step["event"] = "return"
            step["locals"] = {"__return__": "None"}
            for key in ("exception", "to", "to_line"):
                step.pop(key, None)
    comparison = compare_traces(real, written).as_dict()
    run = _run(
        user, real, method="trace", model="test-model", emulation_done=True,
        comparison=comparison,
        verdict={"status": "unknown", "explanation": "The call raises: no value to compare."},
    )  # fmt: skip
    Trace.objects.create(run=run, kind="emulated", status="ok", step_count=12, data=written)
    page.goto(live_server.url + run.get_absolute_url())
    expect(page.locator("#first-divergence")).to_have_text(
        "Step 10 (line 1): KeyError: 'missing' leaves g() here; the model says g() returns None."
    )
    page.get_by_role("button", name="Jump to first divergence").click()
    expect(page.locator("#cmp-info")).to_contain_text("the model gets an exception wrong here")
    expect(page.locator("#cmp-real-step")).to_contain_text(
        "KeyError: 'missing' leaves g() (line 1), back to f() at line 2"
    )
    expect(page.locator("#cmp-emu-step")).to_contain_text("return from g()")
    expect(page.locator("#cmp-divergence")).to_be_visible()
    assert page.locator(".cmp-cell.s-flow").count() == 2  # the two frames it got wrong
    _shoot(page, "exception-compare")
