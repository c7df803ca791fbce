"""A visitor submits a broken program, sees the error, fixes it and lands on its page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.programs.models import Program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_syntax_error_then_valid_program(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("execute this program")

    page.locator("#id_source").fill("def f(x):\n    return x +* 2\n")
    page.locator("#id_call").fill("f(3)")
    page.get_by_role("button", name="Save and open").click()

    error = page.locator("#source-error")
    expect(error).to_contain_text("Syntax error on line 2, column 15")
    expect(page.locator("#id_source")).to_have_value("def f(x):\n    return x +* 2\n")
    assert Program.objects.count() == 0

    # The form page re-rendered in place (htmx); fix the program and save.
    page.locator("#id_source").fill("def f(x):\n    return x * 2\n")
    page.get_by_role("button", name="Save program").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Program #")
    expect(page.locator(".code-block")).to_contain_text("return x * 2")
    expect(page.locator(".facts")).to_contain_text("f(3)")
    program = Program.objects.get()
    assert page.url.endswith(program.get_absolute_url())


def test_library_search_filters_live(page: Page, live_server: LiveServer) -> None:
    from playground.programs.library import import_library

    import_library()
    page.goto(live_server.url + "/library/?dataset=p3")
    page.get_by_label("Search").fill("Study_2:0")
    expect(page.locator("#results .items > li")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=Study_2"))
    page.get_by_role("link", name="Study_2:0").click()
    expect(page.locator(".code-block").first).to_contain_text("def sat(s: str)")
