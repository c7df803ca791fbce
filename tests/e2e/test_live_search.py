"""The library's live search in Chromium (review 2026-12, bug 13): typing "queen", "queens",
"queens8" left /library/?dataset=p3&dataset=p3&q=queen&module=&dataset=p3&q=queens&...
in the address, and Back restored the filtered results under an empty search box. Now the
address holds each field once, and Back and Forward bring the box and the results back
together. Also: the evaluation form and the error pages, as a visitor sees them, at 1280 and
390 px (screenshots in test-artifacts/)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.template import loader
from playwright.sync_api import ConsoleMessage, Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.programs.models import Puzzle, Task
from tests.e2e.conftest import log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTHS = (1280, 390)


def _puzzles() -> None:
    for i, name in enumerate(("Queens", "QueensPlus", "Queens8", "Rooks")):
        Puzzle.objects.create(
            name=f"{name}:0", family=name, source_index=i, ans_type="List[int]",
            sat=f"def sat(x: list):\n    return len(x) == {i}  # {name.lower()}\n",
            module="chess" if name != "Rooks" else "board",
        )  # fmt: skip


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


def _type(page: Page, text: str) -> None:
    with page.expect_response(lambda r: "/library/" in r.url and f"q={text}" in r.url):
        page.get_by_label("Search", exact=True).fill(text)
    expect(page).to_have_url(f"{page.url.split('?')[0]}?dataset=p3&q={text}&module=")


def _names(page: Page) -> list[str]:
    return page.locator("#results li strong").all_inner_texts()


def test_live_search_keeps_one_of_each_field_and_back_refills_the_box(
    page: Page, live_server: LiveServer
) -> None:
    _puzzles()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server.url + "/library/?dataset=p3")
    for text in ("queen", "queens", "queens8"):
        _type(page, text)
    assert _query(page) == {"dataset": ["p3"], "q": ["queens8"], "module": [""]}
    assert _names(page) == ["Queens8:0"]

    page.go_back()
    expect(page).to_have_url(live_server.url + "/library/?dataset=p3&q=queens&module=")
    expect(page.get_by_label("Search", exact=True)).to_have_value("queens")
    assert sorted(_names(page)) == sorted(["Queens8:0", "QueensPlus:0", "Queens:0"])
    page.go_back()
    expect(page.get_by_label("Search", exact=True)).to_have_value("queen")
    page.go_back()
    expect(page.get_by_label("Search", exact=True)).to_have_value("")
    assert len(_names(page)) == 4
    page.go_forward()
    expect(page.get_by_label("Search", exact=True)).to_have_value("queen")

    # The module filter: chosen, then Back: the select says what the results are for.
    page.get_by_label("Puzzle module").select_option("board")
    expect(page).to_have_url(live_server.url + "/library/?dataset=p3&q=queen&module=board")
    assert _names(page) == []  # "queen" in the board module
    page.go_back()
    expect(page.get_by_label("Puzzle module")).to_have_value("")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "live-search-after-back.png"), full_page=True)
    assert not errors, errors


def test_the_evaluation_form_at_both_widths(page: Page, live_server: LiveServer) -> None:
    UserFactory(username="ada")
    Task.objects.create(name="navigate")
    log_in(page, live_server.url, "ada")
    ARTIFACTS.mkdir(exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server.url + "/evaluations/start/")
        expect(page.get_by_label("BIG-Bench Hard tasks")).to_be_hidden()
        page.get_by_label("Data set").select_option("bbh")
        expect(page.get_by_label("BIG-Bench Hard tasks")).to_be_visible()
        page.get_by_label("BIG-Bench Hard tasks").fill("nonexistent_task")
        page.get_by_label("Items at most").fill("99999999999999999999")
        # The browser itself refuses a number past the field's max, before sending.
        page.get_by_role("button", name="Start").click()
        assert page.url.endswith("/evaluations/start/")
        assert page.evaluate("document.querySelector('[name=limit]').validity.rangeOverflow")
        page.get_by_label("Items at most").fill("3")
        page.get_by_role("button", name="Start").click()
        expect(page.locator("#id_method-error")).to_contain_text("does not apply")
        expect(page.locator("#id_tasks-error")).to_contain_text(
            "No BIG-Bench Hard task is called 'nonexistent_task'"
        )
        expect(page.get_by_label("Items at most")).to_have_value("3")
        expect(page.get_by_label("BIG-Bench Hard tasks")).to_have_value("nonexistent_task")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(ARTIFACTS / f"evaluation-form-{width}.png"), full_page=True)


def test_the_error_pages_at_both_widths(page: Page, live_server: LiveServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    console: list[ConsoleMessage] = []
    page.on("console", lambda message: console.append(message))
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 700})
        for name, path, status in (
            ("400", "/library/?q=%00", 400),
            ("404", "/programs/424242/", 404),
            ("405", "/programs/1/delete/", 405),
        ):
            response = page.goto(live_server.url + path)
            assert response is not None
            assert response.status == status
            expect(page.locator("header.topbar")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(ARTIFACTS / f"error-{name}-{width}.png"), full_page=True)
        # The 500 page as the server renders it (no request, no context), under the site.
        page.goto(live_server.url + "/library/")
        page.set_content(loader.get_template("500.html").render({}))
        expect(page.get_by_role("heading", name="Something went wrong on our side")).to_be_visible()
        expect(page.get_by_role("link", name="Home")).to_be_visible()
        assert page.evaluate("getComputedStyle(document.body).fontFamily") != "Times New Roman"
        page.screenshot(path=str(ARTIFACTS / f"error-500-{width}.png"), full_page=True)
    assert not [m.text for m in console if m.type == "error" and "status of 4" not in m.text]
