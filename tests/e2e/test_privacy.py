"""In a real browser: a student downloads their data from the account page (one JSON file with
their course and grade), deletes their account with their password typed again (a wrong one is
refused beside its field first), can no longer sign in, and the instructor's gradebook shows
"deleted account #n" with the same grade (docs/PRIVACY.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.classroom.models import Submission
from tests.e2e.conftest import log_in, session_cookie
from tests.privacy.world import PASSWORD, student_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS", "")


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def test_a_student_exports_then_deletes_and_the_gradebook_keeps_the_grade(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    world = student_world()
    name = world.student.get_username()
    log_in(page, live_server.url, name)
    page.goto(live_server.url + "/accounts/")
    _shot(page, "privacy-account.png")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my data").click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert data["sections"]["account"][0]["username"] == name
    assert data["sections"]["courses"][0]["course"] == "Execution 101"
    assert data["sections"]["submissions"][0]["final_credit"] == 1.0

    page.get_by_role("link", name="Delete my account…").click()
    expect(page.get_by_role("heading", name="Delete your account")).to_be_visible()
    page.get_by_label("Your password").fill("not my password")
    page.get_by_label("I understand that my account and my data are deleted for good").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#password-error")).to_have_text("That is not your password.")
    expect(page.get_by_label("Your password")).to_have_attribute("aria-invalid", "true")
    _shot(page, "privacy-delete-wrong-password.png")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_text("Your account and your data are deleted.")).to_be_visible()
    _shot(page, "privacy-deleted.png")

    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("correct username and password")).to_be_visible()

    alias = Submission.objects.get(pk=world.submission.pk).student.get_username()
    assert alias.startswith("deleted account #")
    teacher = browser.new_context(viewport={"width": 1200, "height": 900})
    teacher.add_cookies([session_cookie(world.teacher, live_server.url)])
    gradebook = teacher.new_page()
    gradebook.goto(f"{live_server.url}/courses/{world.course.pk}/gradebook/")
    row = gradebook.locator("tr", has_text=alias)
    expect(row).to_be_visible()
    expect(row).to_contain_text("100")
    expect(gradebook.get_by_text(name)).to_have_count(0)
    _shot(gradebook, "privacy-gradebook.png")
    teacher.close()
