"""The whole product in a real browser: a visitor runs a library program with the embedded model,
watches the model's text arrive in steps, sees the verdict and the real trace, and shares the
run with someone who opens the link in a fresh browser."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import counts_until
from tests.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_visitor_watches_the_model_answer_live(stack: Stack, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{stack.port}/library/?dataset=cruxeval&q=sample_5")
    page.get_by_role("link", name="CRUXEval sample_5", exact=True).click()
    page.get_by_label("Method").select_option("cot")
    page.get_by_role("button", name="Run and ask the model").click()
    expect(page.locator("#model-output")).to_be_visible()

    sizes: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not page.locator("#verdict").count():
        output = page.locator("#model-output")
        if output.count():
            sizes.append(len(output.inner_text()))
        time.sleep(0.05)
    grew = sorted({s for s in sizes if s > 0})
    assert len(grew) >= 3, f"the page grew in fewer than three steps: {sizes}"
    expect(page.locator("#verdict")).to_be_visible()
    expect(page.locator("#trace-status")).to_contain_text("Finished")
    expect(page.locator("#viewer")).to_be_visible()

    # Share it, and open the link in a fresh browser context (no session, no account).
    page.get_by_role("button", name="Create a share link").click()
    url = page.get_by_label("Share link").input_value()
    assert "/s/" in url
    stranger = browser.new_context().new_page()
    stranger.goto(url)
    expect(stranger.locator("#verdict")).to_be_visible()

    def words(text: str) -> str:
        return " ".join(text.split())

    assert words(stranger.locator("#verdict").inner_text()) == words(
        page.locator("#verdict").inner_text()
    )
    expect(stranger.get_by_text("Shared run · read-only")).to_be_visible()
    stranger.close()
    page.close()


def test_without_websockets_the_slow_poll_shows_the_result_in_place(
    stack: Stack, browser: Browser
) -> None:
    """Where websockets do not get through, the 3 s poll finds the run finished and loads the
    result into the page, not by reloading it: a reload landing while the user clicks (a share
    link, a form) would cancel that click."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(30_000)
    page.route_web_socket("**/ws/**", lambda ws: None)  # accepted, then silent: no live events
    page.goto(f"http://127.0.0.1:{stack.port}/library/?dataset=cruxeval&q=sample_5")
    page.get_by_role("link", name="CRUXEval sample_5", exact=True).click()
    page.get_by_label("Method").select_option("direct")
    page.get_by_role("button", name="Run and ask the model").click()
    page.wait_for_url("**/runs/*/")
    page.evaluate("window.sameDocument = true")
    expect(page.locator("#verdict")).to_be_visible(timeout=90_000)
    expect(page.locator("#trace-status")).to_contain_text("Finished")
    assert page.evaluate("window.sameDocument === true"), "the page was reloaded"
    assert page.locator("#run-progress").count() == 0  # the poll stopped
    page.close()


def test_a_model_written_trace_streams_step_by_step_then_shows_side_by_side(
    stack: Stack, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{stack.port}/library/?dataset=cruxeval&q=sample_5")
    page.get_by_role("link", name="CRUXEval sample_5", exact=True).click()
    page.get_by_label("Method").select_option("trace")
    page.locator("summary", has_text="Limits for this run").click()
    page.get_by_label("Longest model answer").fill("400")
    page.get_by_role("button", name="Run and ask the model").click()
    counts = counts_until(page, "#emulated-steps li", until="#live-comparison:not(:empty)")
    live = page.locator("#live-comparison").inner_text()
    assert live.startswith("So far:"), live  # compared with the real run while streaming
    counts += counts_until(page, "#emulated-steps li", until="#comparison-summary")
    assert max(counts, default=0) >= 1, "no step appeared while the model was writing"
    expect(page.locator("#comparison-summary")).to_be_visible()
    expect(page.locator("#first-divergence")).not_to_be_empty()
    expect(page.locator("#cmp")).to_be_visible()  # the side-by-side view
    if page.locator("#cmp-jump").is_enabled():
        page.locator("#cmp-jump").click()
        expect(page.locator("#cmp-divergence")).to_be_visible()
    page.close()


def test_a_puzzle_and_chain_of_code_on_a_task_finish_in_the_browser(
    stack: Stack, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{stack.port}/library/puzzles/Study_4:0/")
    page.get_by_role("button", name="Ask the model to solve it").click()
    expect(page.locator("#verdict")).to_be_visible(timeout=120_000)
    expect(page.locator("#attempts li").first).to_be_visible()

    page.goto(f"http://127.0.0.1:{stack.port}/library/tasks/object_counting/0/")
    page.get_by_label("Method").select_option("coc")
    page.get_by_role("button", name="Ask the model").click()
    expect(page.locator("#verdict")).to_be_visible(timeout=120_000)
    expect(page.locator("#generated-program")).to_be_visible()
    page.close()


def test_a_visitor_runs_the_probes_with_the_embedded_model(stack: Stack, browser: Browser) -> None:
    """The probe method end to end in the browser (issue 20): the tiny model's answers arrive
    live, each probe is listed with its mark beside the real trace, and a probe's step link
    moves the viewer there."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{stack.port}/library/?dataset=cruxeval&q=sample_5")
    page.get_by_role("link", name="CRUXEval sample_5", exact=True).click()
    page.get_by_label("Method").select_option("probe")
    page.get_by_role("button", name="Run and ask the model").click()
    expect(page.locator("#model-output")).to_be_visible()
    expect(page.locator("#verdict")).to_be_visible(timeout=240_000)
    probes = page.locator("#probe-list > li")
    assert probes.count() >= 3
    marks = probes.locator(".probe-mark").all_inner_texts()
    assert len(marks) == probes.count()
    assert set(marks) <= {"✓ right", "✗ wrong", "✗ unreadable"}
    expect(page.locator("#viewer")).to_be_visible()
    last = probes.nth(probes.count() - 1)
    step = int(last.get_attribute("data-step") or "0") + 1
    last.locator("a.probe-step").click()
    expect(page.locator("#step-info")).to_contain_text(f"Step {step} of ")
    page.close()
