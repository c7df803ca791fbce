"""Counterfactual Python in a real browser (issue 21): a visitor picks a changed rule on a library
program's form, reads its sentence, runs it, and sees the rule in a banner, the real run under
it (the code as written, stepped in the viewer) and standard Python's run beside it with the
steps where they part marked. With the embedded model (the model told the rule, its verdict
judged against the run under the rule) in ``make test-full``; the same page with the real run
only in ``make test``."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from playground.sandbox.inside.semantics import RULES
from tests.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
RULE = "swap-add-sub"  # CRUXEval sample_13 returns 2 under Python, -2 under this rule
SHOTS = Path("/tmp/counterfactual-shots")


def _run_under_the_rule(page: Page, stack: Stack, method: str) -> None:
    page.goto(f"http://127.0.0.1:{stack.port}/library/?dataset=cruxeval&q=sample_13")
    page.get_by_role("link", name="CRUXEval sample_13", exact=True).click()
    rule = page.get_by_label("Rule")
    # Chain of Code runs under a rule too: the select stays on for it.
    page.get_by_label("Method").select_option("coc")
    expect(rule).to_be_enabled()
    # A probe method's questions show only where one is chosen.
    page.locator("summary", has_text="Limits for this run").click()
    page.get_by_label("Method").select_option("probe")
    expect(rule).to_be_enabled()
    expect(page.locator("[data-probe-settings]")).to_be_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "form.png"), full_page=True)
    page.get_by_label("Method").select_option(method)
    if method == "real":
        expect(page.locator("[data-probe-settings]")).to_be_hidden()
    page.get_by_label("Rule").select_option(RULE)
    expect(page.locator(f'[data-rule-text] [data-rule="{RULE}"]')).to_have_text(RULES[RULE].text)
    expect(page.locator('[data-rule-text] [data-rule=""]')).to_be_hidden()
    label = "Run it for real" if method == "real" else "Run and ask the model"
    page.get_by_role("button", name=label).click()


def _both_runs_shown(page: Page, name: str) -> None:
    banner = page.locator("#rule-banner")
    expect(banner).to_contain_text(RULES[RULE].text)
    expect(page.locator("#trace-status")).to_contain_text("returned -2")
    expect(page.locator("#standard-status")).to_contain_text("returned 2")
    differs = page.locator("#rule-steps tr[data-differs]")
    assert differs.count() >= 1
    expect(page.locator("#rule-difference")).to_contain_text("The two runs part at step")
    # The first difference's link moves the viewer (the run under the rule) to that step.
    link = page.locator("#rule-difference a")
    step = (link.inner_text()).removeprefix("step ")
    link.click()
    expect(page.locator("#step-info")).to_contain_text(f"Step {step} of ")
    # The code the user wrote, not a rewritten program.
    expect(page.locator("#viewer .code-block")).not_to_contain_text("__sem_")
    SHOTS.mkdir(exist_ok=True)
    banner.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_visitor_runs_a_program_under_a_changed_rule(stack: Stack, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(30_000)
    _run_under_the_rule(page, stack, "real")
    expect(page.locator("#trace-status")).to_be_visible()
    _both_runs_shown(page, "real")
    # The viewer steps through standard Python's run too, and back.
    page.locator("#trace-switch a", has_text="standard Python").click()
    expect(page.locator("#viewing-standard")).to_be_visible()
    page.locator('[data-go="last"]').click()
    row = page.locator("#vars tr", has_text="numberOfNames")
    assert row.inner_text().split()[-1] == "2"
    page.get_by_role("link", name="the run under the rule").click()
    expect(page.locator("#viewing-standard")).to_have_count(0)
    page.locator('[data-go="last"]').click()
    assert page.locator("#vars tr", has_text="numberOfNames").inner_text().split()[-1] == "-2"
    # On a phone the two runs' steps scroll in their own box, not the page sideways.
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("#rule-banner")).to_be_visible()
    page.screenshot(path=str(SHOTS / "phone.png"), full_page=True)
    page.close()


@pytest.mark.full_only
def test_the_embedded_model_runs_under_a_changed_rule(stack: Stack, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(30_000)
    _run_under_the_rule(page, stack, "direct")
    expect(page.locator("#verdict")).to_be_visible(timeout=120_000)
    # The verdict is about the run under the rule: its value is the real one, -2.
    expect(page.locator("#verdict")).to_contain_text("-2")
    _both_runs_shown(page, "direct")
    page.close()
