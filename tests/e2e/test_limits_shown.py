"""A refusal by a limit shows in the browser: htmx swaps no 4xx by default, so a limited htmx
form would fail silently. The program form and the student's answer box come back with the
refusal and what was typed (screenshots in the test's tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from playground.classroom.models import Item, Mode, Submission
from playground.programs.models import Program
from tests.classroom.student_world import (
    SECRET,
    assignment,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.e2e.conftest import session_cookie, signed_in
from tests.limits import public

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_program_form_shows_the_refusal_and_keeps_the_program(
    page: Page, live_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    settings.PLAYGROUND_LIMITS = public({"programs.user": "1/d"})
    user = signed_in(page, live_server.url)
    page.goto(live_server.url + reverse("programs:new"))
    page.locator("#id_source").fill("def f(x):\n    return x\n")
    page.locator("#id_call").fill("f(1)")
    page.get_by_role("button", name="Save program").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Program #")

    page.goto(live_server.url + reverse("programs:new"))
    page.locator("#id_source").fill("def f(x):\n    return 'second'\n")
    page.locator("#id_call").fill("f(2)")
    page.get_by_role("button", name="Save program").click()
    expect(page.locator("#form-error")).to_contain_text(
        "Too many programs saved: at most 1 a day. Try again in"
    )
    expect(page.locator("#id_source")).to_have_value("def f(x):\n    return 'second'\n")
    expect(page.locator("#id_call")).to_have_value("f(2)")
    assert page.url.endswith(reverse("programs:new"))
    page.screenshot(path=tmp_path / "program-form-refused.png", full_page=True)
    assert Program.objects.filter(owner=user).count() == 1


def test_the_answer_box_shows_the_refusal_and_keeps_the_answer(
    page: Page, live_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    settings.PLAYGROUND_LIMITS = public({"puzzle_submissions.user": "1/m"})
    w = course_world()
    work = assignment(w.course, max_attempts=5)
    item = Item.objects.create(
        assignment=work, mode=Mode.OUTPUT, program=library_program(), title="Reverse"
    )
    hand_made_key(item, real=real_trace(f"'{SECRET}'"))
    page.context.add_cookies([session_cookie(w.s1, live_server.url)])
    page.goto(live_server.url + item.get_absolute_url())
    field = page.locator("#answer-field")
    field.fill("'abc'")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("Wrong · attempt 1")

    page.locator("#answer-field").fill("'second try'")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#answer-error")).to_contain_text(
        "Too many answers submitted: at most 1 a minute. Try again in"
    )
    expect(page.locator("#answer-field")).to_have_value("'second try'")
    expect(page.locator("#attempts")).to_contain_text("Attempts used: 1 of 5")
    page.screenshot(path=tmp_path / "answer-refused.png", full_page=True)
    assert Submission.objects.filter(student=w.s1).count() == 1
