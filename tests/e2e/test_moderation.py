"""Moderation in a real browser: a visitor reports a public program from its page, a moderator
finds it on the moderation page and unpublishes it with a message, the owner sees the notice
(and no "Make public"), then the moderator disables the owner's account and the owner's open
browser is signed out at its next page. Screenshots go to test-artifacts/moderation/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.moderation.models import Report
from tests.e2e.conftest import session_cookie
from tests.factories import ProgramFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "moderation"


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_report_then_unpublish_then_disable(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    base = live_server.url
    owner = UserFactory(username="spammer")
    program = ProgramFactory(
        owner=owner, is_public=True, title="Win a prize <now>",
        source="def f():\n    return 'visit my shop'\n", call="f()",
    )  # fmt: skip
    moderator = UserFactory(username="moderator", is_staff=True)

    # A visitor (no account) reports it from its page.
    page.goto(f"{base}/programs/{program.pk}/")
    page.get_by_text("Report this program").click()
    page.get_by_label("Spam").check()
    page.get_by_label("Anything staff should know").fill("Advertising, <b>again</b>")
    _shot(page, "1-report-form")
    page.get_by_role("button", name="Send the report").click()
    expect(page.locator(".messages")).to_contain_text("Thank you: staff will look at this program")
    assert Report.objects.get().reason == "spam"

    # The moderator sees it on the moderation page, reviews it and unpublishes it.
    staff_context = browser.new_context(viewport={"width": 1200, "height": 900})
    staff_context.add_cookies([session_cookie(moderator, base)])
    staff_page = staff_context.new_page()
    staff_page.goto(base + "/")
    staff_page.get_by_role("link", name="Moderation").click()
    row = staff_page.locator("#open-reports tbody tr").first
    expect(row).to_contain_text("Win a prize <now>")
    expect(row).to_contain_text("Spam (1)")
    expect(row).to_contain_text("Advertising, <b>again</b>")  # shown as text, not markup
    _shot(staff_page, "2-open-reports")
    row.get_by_role("link", name="Review").click()
    staff_page.get_by_label("Reason").select_option("spam")
    staff_page.get_by_label("Message to the owner").fill("Please do not advertise here.")
    staff_page.get_by_role("button", name="Unpublish").click()
    expect(staff_page.locator("#lock-notice")).to_contain_text("Please do not advertise here.")
    _shot(staff_page, "3-unpublished")

    # The owner, signed in elsewhere, sees the notice and cannot publish it again.
    owner_context = browser.new_context(viewport={"width": 1200, "height": 900})
    owner_context.add_cookies([session_cookie(owner, base)])
    owner_page = owner_context.new_page()
    owner_page.goto(f"{base}/programs/{program.pk}/")
    notice = owner_page.locator("#moderation-notice")
    expect(notice).to_contain_text("Staff unpublished this program")
    expect(notice).to_contain_text("Please do not advertise here.")
    expect(owner_page.get_by_role("button", name="Make public")).to_have_count(0)
    expect(owner_page.locator(".meta .tag.private")).to_be_visible()
    _shot(owner_page, "4-owner-notice")
    # Visitors no longer find it.
    assert page.goto(f"{base}/programs/{program.pk}/").status == 404

    # The moderator disables the owner: the owner's open browser is signed out at once.
    staff_page.goto(f"{base}/moderation/accounts/{owner.pk}/")
    staff_page.get_by_label("Why (for the moderation log)").fill("advertising")
    staff_page.get_by_role("button", name="Disable").click()
    expect(staff_page.locator(".messages")).to_contain_text("1 session ended")
    _shot(staff_page, "5-account-disabled")
    owner_page.reload()
    expect(owner_page.locator(".who")).to_have_count(0)
    expect(owner_page.get_by_role("link", name="Log in")).to_be_visible()
    staff_page.get_by_role("link", name="Moderation log").click()
    expect(staff_page.locator(".moderation-log")).to_contain_text("Account disabled")
    _shot(staff_page, "6-log")
    staff_context.close()
    owner_context.close()
