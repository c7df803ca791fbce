"""The keyboard alone, in Chromium: nothing here clicks. From a page's first focus, Tab and
Shift+Tab, Enter, Space, the arrows and the viewers' own keys reach and drive the skip link, the
trace viewer (steps and its debugger moves), the side-by-side comparison, the run form and the
answer form of every kind of classroom item; every control that takes the focus shows it (an
outline, computed), and the code box's Tab is left with Escape (no trap).

The pages are tests/e2e/test_accessibility.py's seeded world (one database, one context)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.classroom.models import Item, StepPrediction, Submission
from playground.runs.models import Run
from tests.e2e.conftest import session_cookie
from tests.e2e.test_accessibility import STUDENT, TEACHER, World, seed_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "nothing has the focus";
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2;
  const ring = s.boxShadow && s.boxShadow !== "none";
  return outline || ring ? "" : `no visible focus on ${el.outerHTML.slice(0, 120)}`;
}"""


def focused(page: Page, selector: str) -> bool:
    script = f"() => !!document.activeElement?.matches({json.dumps(selector)})"
    return bool(page.evaluate(script))


def focus_is_shown(page: Page) -> None:
    problem = page.evaluate(FOCUS_SHOWN)
    assert problem == "", problem


def tab_to(page: Page, selector: str, *, back: bool = False, limit: int = 120) -> int:
    """Press Tab (or Shift+Tab) until ``selector`` has the focus, checking on the way that each
    stop shows its focus; how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        focus_is_shown(page)
        if focused(page, selector):
            return presses
    raise AssertionError(f"{limit} presses of Tab never reached {selector}")


@pytest.fixture
def world(live_server: LiveServer) -> World:
    return seed_world()


@pytest.fixture
def keyboard(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context
    context.close()


def signed_in(context: BrowserContext, base: str, username: str) -> Page:
    context.clear_cookies()
    user = get_user_model().objects.get(username=username)
    context.add_cookies([session_cookie(user, base)])
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(15_000)
    return page


def test_the_viewers_and_the_run_form_by_keyboard(
    world: World, keyboard: BrowserContext, live_server: LiveServer
) -> None:
    base = live_server.url
    page = signed_in(keyboard, base, TEACHER)

    # The skip link is the first stop, shows itself, and moves the focus to the content.
    page.goto(base + world["item_trace"])
    page.keyboard.press("Tab")
    assert focused(page, "a.skip-link")
    focus_is_shown(page)
    box = page.locator("a.skip-link").bounding_box()
    assert box is not None
    assert box["y"] >= 0, "the skip link stays off screen when focused"
    page.keyboard.press("Enter")
    assert focused(page, "main#main")

    # The trace viewer (the answer key's real run, shown to staff): buttons, keys, debugger.
    info = page.locator("#step-info")
    expect(info).to_contain_text("Step 1 of")
    tab_to(page, '#viewer [data-go="next"]')
    page.keyboard.press("Enter")
    expect(info).to_contain_text("Step 2 of")
    page.keyboard.press("Space")
    expect(info).to_contain_text("Step 3 of")
    page.keyboard.press("ArrowRight")
    expect(info).to_contain_text("Step 4 of")
    page.keyboard.press("ArrowLeft")
    expect(info).to_contain_text("Step 3 of")
    page.keyboard.press("End")
    total = re.search(r"of (\d+)", info.inner_text())
    assert total is not None
    expect(info).to_contain_text(f"Step {total.group(1)} of")
    page.keyboard.press("Home")
    expect(info).to_contain_text("Step 1 of")
    # G: go to step n; then Out (O) leaves f() for the step after it returns, and Over (N)
    # from a line of f() goes to f()'s next line, over nothing.
    page.keyboard.press("g")
    assert focused(page, "#goto-step")
    page.keyboard.type("6")
    page.keyboard.press("Enter")
    expect(info).to_contain_text("Step 6 of")
    expect(info).to_contain_text("in f()")
    tab_to(page, '#viewer [data-go="over"]', back=True)
    page.keyboard.press("Enter")
    expect(info).to_contain_text("Step 7 of")
    page.keyboard.press("o")
    expect(info).not_to_contain_text("in f()")
    # The letter keys can be turned off (and on again) from the keyboard.
    tab_to(page, "#letter-keys")
    page.keyboard.press("Space")
    page.keyboard.press("Home")
    page.keyboard.press("g")
    assert not focused(page, "#goto-step")
    page.keyboard.press("n")
    expect(info).to_contain_text("Step 1 of")  # n did nothing; Home still works
    page.keyboard.press("Space")
    page.keyboard.press("n")
    expect(info).to_contain_text("Step 2 of")
    # The focus goes on past the viewer and comes back (no trap).
    tab_to(page, "#predict-mode")
    tab_to(page, '#viewer [data-go="first"]', back=True)

    # The side-by-side comparison, as its owner.
    page = signed_in(keyboard, base, STUDENT)
    page.goto(base + world["compared_run"])
    cmp_info = page.locator("#cmp-info")
    expect(cmp_info).to_contain_text("Pair 1 of")
    tab_to(page, '#cmp [data-cmp-go="next"]')
    page.keyboard.press("Enter")
    expect(cmp_info).to_contain_text("Pair 2 of")
    page.keyboard.press("ArrowRight")
    expect(cmp_info).to_contain_text("Pair 3 of")
    tab_to(page, "#cmp-jump")
    page.keyboard.press("Enter")
    expect(page.locator("#cmp-divergence")).to_be_visible()
    expect(cmp_info).to_contain_text("a value differs: total")
    page.keyboard.press("End")
    expect(cmp_info).to_contain_text(re.compile(r"Pair (\d+) of \1"))

    # The run form on a program's page: Enter on its button starts a run.
    page.goto(base + world["scratch"])
    tab_to(page, "form.run-form button:not([type=button])")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    assert Run.objects.filter(program__title="Scratch to delete").count() == 1

    # The code box keeps Tab for indenting; Escape, then Tab leaves it.
    page.goto(base + "/programs/new/")
    tab_to(page, "textarea.code")
    page.keyboard.press("Tab")
    assert focused(page, "textarea.code")
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert not focused(page, "textarea.code")
    focus_is_shown(page)


# What to type in each field of the answer forms (by field name); any other text field gets "0".
# ("": leave the field as it is: the step's kind stays "line".)
ANSWERS = {"answer": "940", "event": "", "line": "4", "changed": "x = 40", "value": ""}
# The answer field of the items that want something else than a value.
CALLS = {"item_input": "f([40, 900])", "item_puzzle": "'ababab'"}


def answer_by_keyboard(page: Page, answers: dict[str, str]) -> None:
    """Tab into the page's answer form, fill each of its fields in turn (type into a text field,
    Space on the first radio of a group, ArrowDown in a select) and send it with Enter on its
    button."""
    tab_to(page, "form.answer-form :is(input:not([type=hidden]), textarea, select, button)")
    for _ in range(60):
        kind = page.evaluate(
            "() => { const el = document.activeElement;"
            " return [el.tagName, el.type || '', el.name || '', el.className || ''] }"
        )
        tag, kind_of, name, classes = kind
        if tag == "BUTTON":
            page.keyboard.press("Enter")
            return
        if tag == "SELECT" and answers.get(name) != "":
            page.keyboard.press("ArrowDown")
        elif kind_of == "radio":
            page.keyboard.press("Space")
        elif kind_of != "checkbox":
            page.keyboard.type(answers.get(name, "0"))
        if tag == "TEXTAREA" and "code" in classes:
            page.keyboard.press("Escape")  # the code box's Tab indents until Escape
        page.keyboard.press("Tab")
        focus_is_shown(page)
    raise AssertionError("never reached the form's button")


def test_every_answer_form_by_keyboard(
    world: World, keyboard: BrowserContext, live_server: LiveServer
) -> None:
    base = live_server.url
    page = signed_in(keyboard, base, STUDENT)
    announcer = page.locator("#announcer")
    for key in (
        "item_output",
        "item_input",
        "item_trace",
        "item_puzzle",
        "item_divergence",
        "item_beat",
        "item_probes",
        "item_rule",
        "item_next_state",
    ):
        page.goto(base + world[key])
        expect(announcer).to_have_attribute("role", "status")
        expect(announcer).to_have_attribute("aria-live", "polite")
        expect(announcer).to_be_empty()  # nothing is said when the page arrives
        item = Item.objects.get(pk=int(world[key].rstrip("/").split("/")[-1]))
        answer_by_keyboard(page, {**ANSWERS, "answer": CALLS.get(key, ANSWERS["answer"])})
        # The focus stays where the answer came in, not back at the top of the page.
        expect(page.locator(":is(#answer, #next-state) :focus")).to_have_count(1)
        if key == "item_next_state":
            expect(page.locator("#step-4 .step-mark")).to_have_text("right")
            # The mark is said in the page's polite region, not the whole list again.
            expect(announcer).to_contain_text("You predicted: line 4")
            expect(announcer).to_contain_text("right")
            expect(announcer).not_to_contain_text("line 2")
            assert StepPrediction.objects.filter(student__username=STUDENT).count() == 1
        else:
            expect(page.locator("#result")).to_be_visible()
            if key == "item_output":  # graded at once: the result is said
                expect(announcer).to_have_text(re.compile(r"^Right · attempt 1"))
            expect(page.locator("#answer-error")).to_have_count(0)
            assert Submission.objects.filter(item=item, student__username=STUDENT).count() == 1, key
