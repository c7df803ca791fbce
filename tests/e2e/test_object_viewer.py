"""The trace viewer's frames and objects in a real browser, on real sandbox traces: two names bound
to one list show one object changing under both; a list that holds itself is drawn once; a 3-deep
recursion shows every frame, each with its own variables, and the line each waits at; predict
mode holds the new state back until it is revealed; all of it with the keyboard and at 390 px.
Screenshots at 1280 and 390 px go to test-artifacts/ (look at them when this changes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.runs.models import Run, Trace
from tests.e2e.conftest import seconds_to_step_around_ten_thousand, signed_in
from tests.factories import ProgramFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"

ALIASING = "a = [1]\nb = a\nb.append(2)\nc = [a, a]\nprint(len(c))\n"
CYCLE = "a = [1, 2]\na.append(a)\nd = {'self': a}\nd['d'] = d\n"
RECURSION = (
    "def fact(n):\n"
    "    seen = [n]\n"
    "    if n <= 1:\n"
    "        return 1\n"
    "    return n * fact(n - 1)\n"
    "\n"
    "total = fact(3)\n"
)


def _open(
    page: Page,
    live_server: LiveServer,
    user: AbstractBaseUser,
    source: str,
    trace: dict[str, Any] | None = None,
) -> Run:
    """A finished run of ``source`` owned by ``user``, with ``trace`` as its real trace (by
    default the sandbox's, which must end "ok"), opened in the viewer."""
    if trace is None:
        trace = sandbox.run(source)
        assert trace["status"] == "ok", trace.get("error")
    program = ProgramFactory(source=source, call="", owner=user)
    run = Run.objects.create(program=program, owner=user, status=Run.Status.DONE, source=source)
    Trace.objects.create(
        run=run, kind="real", status=trace["status"], step_count=len(trace["steps"]), data=trace
    )
    page.goto(live_server.url + run.get_absolute_url())
    expect(page.locator("#step-info")).to_contain_text("Step 1 of")
    return run


def _go_to_line(page: Page, line: int, *, occurrence: int = 1) -> None:
    """Steps forward with the keyboard until the step about to run ``line`` (its n-th time)."""
    page.keyboard.press("Home")
    seen = 0
    for _ in range(200):
        if page.locator(f"#line-{line}.current-line").count():
            seen += 1
            if seen == occurrence:
                return
        page.keyboard.press("ArrowRight")
    raise AssertionError(f"line {line} never ran {occurrence} times")


def _shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#viewer").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"objects-{name}-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways
    page.set_viewport_size({"width": 1280, "height": 900})


def _badges(page: Page, table: str) -> dict[str, str]:
    """name -> the object badge its value shows (no badge: "")."""
    rows: dict[str, Any] = {}
    for row in page.locator(f"{table} tr").all():
        name = row.locator("th").inner_text()
        badge = row.locator("button.ref")
        rows[name] = badge.inner_text() if badge.count() else ""
    return rows


def test_two_names_for_one_list_show_one_object_changing(
    page: Page, live_server: LiveServer
) -> None:
    _open(page, live_server, signed_in(page, live_server.url), ALIASING)
    _go_to_line(page, 4)  # b.append(2) just ran
    assert _badges(page, "#vars") == {"a": "#1", "b": "#1"}
    heap = page.locator("#heap .obj")
    expect(heap).to_have_count(1)  # one list, drawn once
    expect(heap.first).to_contain_text("list")
    expect(heap.first.locator(".obj-names")).to_have_text(" · a, b")
    expect(heap.first.locator(".obj-items li")).to_have_text(["1", "2"])
    expect(heap.first).to_have_class(re.compile(r"\bchanged\b"))
    expect(heap.first.locator(".tag")).to_have_text("changed in place")
    _shoot(page, "aliasing")

    _go_to_line(page, 5)  # c = [a, a]: a second list holding the first one twice
    expect(heap).to_have_count(2)
    outer = page.locator("#obj-2")
    expect(outer.locator(".obj-items button.ref")).to_have_text(["#1", "#1"])
    expect(outer.locator(".tag")).to_have_text("new")
    # Hovering a badge lights up the object and every reference to it.
    outer.locator(".obj-items button.ref").first.hover()
    expect(page.locator("#obj-1")).to_have_class(re.compile(r"\blinked\b"))
    assert page.locator("#viewer button.ref.linked[data-ref='1']").count() >= 4


def test_a_list_that_holds_itself_is_drawn_once(page: Page, live_server: LiveServer) -> None:
    _open(page, live_server, signed_in(page, live_server.url), CYCLE)
    page.keyboard.press("End")
    expect(page.locator("#heap .obj")).to_have_count(2)  # the list and the dict, once each
    expect(page.locator("#obj-1 .obj-items li")).to_have_count(3)
    expect(page.locator("#obj-1 .obj-items li").nth(2).locator("button.ref")).to_have_text("#1")
    expect(page.locator("#obj-2 .obj-pairs th")).to_have_text(["'self'", "'d'"])
    expect(page.locator("#obj-2 .obj-pairs button.ref")).to_have_text(["#1", "#2"])
    expect(page.locator("#vars")).not_to_contain_text("return value")  # the program's own
    # Choosing a badge goes to its object.
    page.locator("#obj-2 .obj-pairs button.ref").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#obj-1")).to_have_class(re.compile(r"\bflash\b"))
    _shoot(page, "cycle")


def test_a_recursion_shows_every_frame_with_its_own_variables(
    page: Page, live_server: LiveServer
) -> None:
    _open(page, live_server, signed_in(page, live_server.url), RECURSION)
    _go_to_line(page, 4)  # fact(1) is about to return 1: three fact frames and the program's
    expect(page.locator("#frames")).to_have_text("fact()fact()fact()module")
    assert _badges(page, "#vars")["n"] == ""
    expect(page.locator("#vars")).to_contain_text("1")
    expect(page.locator("#vars-title")).to_contain_text("Variables of fact()")
    expect(page.locator("#globals")).to_contain_text("fact")
    # Each frame's list is its own object: three lists, [1], [2], [3].
    expect(page.locator("#heap .obj")).to_have_count(3)
    expect(page.locator("#heap .obj-names")).to_have_text(
        [" · seen (fact(), frame 3)", " · seen (fact(), frame 2)", " · seen (fact(), frame 1)"]
    )
    expect(page.locator("#heap .obj-items")).to_have_text(["3", "2", "1"])
    # Choose the outermost fact() frame with the keyboard: its variables, and the line it
    # waits at (the recursive call) marked in the code.
    outer = page.locator("#frames .frame-button").nth(2)
    outer.focus()
    page.keyboard.press("Enter")
    expect(outer).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".frame-line")).to_have_attribute("id", "line-5")
    expect(page.locator("#vars tr").first).to_contain_text("3")
    expect(page.locator("#vars")).to_contain_text("[3]")
    expect(page.locator(".current-line")).to_have_attribute("id", "line-4")
    _shoot(page, "recursion")
    # Stepping on keeps the choice while that frame lives.
    page.keyboard.press("ArrowRight")
    expect(page.locator("#frames .frame-button[aria-pressed='true']")).to_have_count(1)
    expect(page.locator("#vars")).to_contain_text("[3]")


def test_predict_mode_holds_the_new_state_until_revealed(
    page: Page, live_server: LiveServer
) -> None:
    _open(page, live_server, signed_in(page, live_server.url), ALIASING)
    _go_to_line(page, 3)  # b = a just ran: a and b are one list [1]
    expect(page.get_by_role("button", name="Reveal")).to_be_hidden()
    page.get_by_label("Predict mode").check()
    page.get_by_role("button", name="Next ▶").click()  # b.append(2) runs
    prompt = page.locator("#predict-prompt")
    expect(prompt).to_contain_text("Line 3 ran. What changed?")
    expect(page.locator("#obj-1 .obj-items li")).to_have_count(1)  # still [1]
    expect(page.locator("#vars tr.changed")).to_have_count(0)
    expect(page.locator(".current-line")).to_have_attribute("id", "line-4")
    page.keyboard.press("r")
    expect(prompt).to_be_hidden()
    expect(page.locator("#obj-1 .obj-items li")).to_have_count(2)  # [1, 2], under a and b
    expect(page.locator("#obj-1 .tag")).to_have_text("changed in place")
    # Stepping back or jumping shows the state at once; predict mode asks only going forward.
    page.keyboard.press("ArrowLeft")
    expect(prompt).to_be_hidden()
    page.keyboard.press("ArrowRight")
    expect(prompt).to_be_visible()
    page.get_by_role("button", name="Reveal").click()
    expect(prompt).to_be_hidden()
    expect(page.locator("[data-go='next']")).to_be_focused()


def test_an_old_trace_without_identity_still_steps(page: Page, live_server: LiveServer) -> None:
    """A v2 trace (no ids, no heap) shows its values as before and no objects."""
    user = signed_in(page, live_server.url)
    trace = sandbox.run(ALIASING)
    for step in trace["steps"]:
        step.pop("ids", None)
        step.pop("heap", None)
    trace["schema"] = 2
    _open(page, live_server, user, ALIASING, trace)
    page.keyboard.press("End")
    expect(page.locator("#vars")).to_contain_text("[1, 2]")
    expect(page.locator("#heap .obj")).to_have_count(0)
    expect(page.locator("#heap")).to_contain_text("no name holds a list")


def test_ten_thousand_steps_of_a_changing_list_step_instantly(
    page: Page, live_server: LiveServer
) -> None:
    """Every step changes the list: 10,000 versions of one object, looked up, never copied."""
    source = (
        "a = []\nb = {'a': a}\nwhile True:\n"
        "    a.append(len(a) % 7)\n    if len(a) > 30:\n        a.clear()\n"
    )
    user = signed_in(page, live_server.url)
    trace = sandbox.run(source)
    assert trace["status"] == "step_limit"
    assert len(trace["steps"]) == 10_000
    _open(page, live_server, user, source, trace)
    expect(page.locator("#step-info")).to_contain_text("Step 1 of 10000")

    def expected_items(index: int) -> list[str]:
        """The list as the trace recorded it at or before step ``index``."""
        for step in reversed(trace["steps"][: index + 1]):
            if "1" in step.get("heap", {}):
                items: list[str] = step["heap"]["1"]["items"]
                return items
        raise AssertionError("never recorded")

    assert seconds_to_step_around_ten_thousand(page) < 5
    expect(page.locator("#obj-1 .obj-items li")).to_have_text(expected_items(4980))
    expect(page.locator("#obj-2 .obj-pairs button.ref")).to_have_text(["#1"])
