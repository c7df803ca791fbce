"""Paging through long lists in a real browser: "Next" on My runs and My programs opens the next
page (on 3103616 it did nothing on My runs, whose pager aimed at a list it does not have, and
put a whole second page, menu and all, inside My programs), and the pager offers page numbers,
the first and the last page, not only Next and Previous."""

from __future__ import annotations

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.programs.models import Program
from playground.runs.models import Run
from tests.e2e.conftest import signed_in
from tests.factories import ProgramFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("path", ["/runs/", "/programs/mine/"])
def test_next_and_page_numbers_open_other_pages(
    page: Page, live_server: LiveServer, path: str
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    user = signed_in(page, live_server.url)
    program = ProgramFactory(owner=user)
    size = settings.PLAYGROUND_PAGE_SIZE
    Program.objects.bulk_create(
        Program(owner=user, title=f"P{n}", source="x = 1\n") for n in range(3 * size)
    )
    Run.objects.bulk_create(
        Run(program=program, owner=user, source=program.source, status=Run.Status.DONE)
        for _ in range(3 * size + 1)
    )
    page.goto(live_server.url + path)
    pager = page.get_by_role("navigation", name="Pages")
    expect(pager).to_contain_text("Page 1 of 4")
    expect(pager.locator("[aria-current=page]")).to_have_text("1")

    pager.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(f"{live_server.url}{path}?page=2")
    expect(pager).to_contain_text("Page 2 of 4")
    assert page.locator("nav.nav").count() == 1  # one page, not a page inside a page

    pager.get_by_role("link", name="Last »").click()
    expect(pager).to_contain_text("Page 4 of 4")
    pager.get_by_role("link", name="Page 3").click()
    expect(pager).to_contain_text("Page 3 of 4")
    pager.get_by_role("link", name="« First").click()
    expect(pager).to_contain_text("Page 1 of 4")
    assert errors == []
