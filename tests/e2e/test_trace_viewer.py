"""The step-through viewer in a real browser: escaping, navigation, and a 10,000-step trace."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.runs.models import Run, Trace
from tests.e2e.conftest import seconds_to_step_around_ten_thousand
from tests.factories import ProgramFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _finished_run(page: Page, live_server: LiveServer, source: str, call: str) -> Run:
    """A run of a public program, started from this browser session so the run is its own."""
    program = ProgramFactory(source=source, call=call, is_public=True)
    page.goto(live_server.url + program.get_absolute_url())
    page.get_by_role("button", name="Run it for real").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/"))
    run = Run.objects.get(program=program)
    # No Celery worker behind the live server: do the worker's job with the real sandbox.
    trace = sandbox.run(run.source, call=run.call or None, stdin=run.stdin)
    Trace.objects.create(
        run=run, kind="real", status=trace["status"], step_count=len(trace["steps"]), data=trace
    )
    Run.objects.filter(pk=run.pk).update(status=Run.Status.DONE)
    expect(page.locator("#viewer")).to_be_visible(timeout=10_000)  # the page polls, then reloads
    return run


def test_viewer_steps_through_and_shows_program_text_as_text(
    page: Page, live_server: LiveServer
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    source = (
        "def f(n):\n"
        "    label = '<script>alert(1)</script>'\n"
        "    for i in range(n):\n"
        "        print('<img src=x onerror=alert(2)>', i)\n"
        "    return label\n"
    )
    _finished_run(page, live_server, source, "f(2)")

    expect(page.locator("#trace-status")).to_contain_text("Finished")
    expect(page.locator("#step-info")).to_contain_text("Step 1 of")
    page.keyboard.press("End")
    expect(page.locator("#vars")).to_contain_text("'<script>alert(1)</script>'")
    expect(page.locator("#output")).to_have_text(
        "<img src=x onerror=alert(2)> 0\n<img src=x onerror=alert(2)> 1\n"
    )
    assert page.locator("#vars script, #output img").count() == 0
    # Steps 1-3: the module defines f; 4: the call; 5: f's first line, about to run.
    page.keyboard.press("Home")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#step-info")).to_contain_text("Step 5 of")
    expect(page.locator("#step-info")).to_contain_text("line 2 in f()")
    expect(page.locator(".current-line")).to_have_attribute("id", "line-2")
    page.get_by_role("button", name="Next ▶").click()
    expect(page.locator(".current-line")).to_have_attribute("id", "line-3")
    expect(page.locator(".prev-line")).to_have_attribute("id", "line-2")
    expect(page.locator("#vars tr.changed")).to_contain_text("label")
    assert dialogs == []


def test_ten_thousand_step_trace_stays_responsive(page: Page, live_server: LiveServer) -> None:
    source = (
        "def f():\n    total = 0\n    i = 0\n    while True:\n        total += i\n        i += 1\n"
    )
    run = _finished_run(page, live_server, source, "f()")
    assert run.real_trace is not None
    assert run.real_trace.step_count == 10_000
    expect(page.locator("#trace-status")).to_contain_text("step limit")

    assert seconds_to_step_around_ten_thousand(page) < 5
    # Only the current step is rendered: one row per variable, not per step.
    assert page.locator("#vars tr").count() <= 3
