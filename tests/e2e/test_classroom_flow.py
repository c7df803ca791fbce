"""A whole class in real browsers against the whole product (make run's launcher: web, Celery
workers, sandbox, embedded model): an instructor creates a course and an assignment with a
library item, two students sign up, join with the code and answer, the instructor watches the
submissions arrive without reloading and downloads the gradebook as CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.stack import Stack, serving_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PASSWORD = "a long enough passphrase 42"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A site of its own, not the shared one (tests/conftest.py): while its assignment is open,
    no share link of a sample_5 run shows anything (a link could reach a student), and the
    modules on the shared site share their sample_5 runs."""
    with serving_stack(model=False) as s:
        yield s


def _sign_up(browser: Browser, stack: Stack, username: str) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{stack.port}/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(lambda url: "/signup/" not in url)
    return page


def _local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")  # the site's time zone is UTC in the stack


def test_a_class_runs_an_assignment_end_to_end(stack: Stack, browser: Browser) -> None:
    base = f"http://127.0.0.1:{stack.port}"
    teacher = _sign_up(browser, stack, "teacher")
    teacher.goto(base + "/courses/new/")
    teacher.get_by_label("Title").fill("Tracing 101 <script>x</script>")
    teacher.get_by_role("button", name="Create course").click()
    code = teacher.locator("#join-code").inner_text().strip()
    assert len(code) == 8

    teacher.get_by_role("link", name="New assignment").click()
    now = datetime.now(UTC)
    teacher.get_by_label("Title").fill("Week 1")
    teacher.locator("#id_opens_at").fill(_local(now - timedelta(hours=1)))
    teacher.locator("#id_due_at").fill(_local(now + timedelta(days=2)))
    teacher.get_by_role("button", name="Create assignment").click()
    teacher.get_by_role("link", name="Add item").click()
    teacher.get_by_label("Search the library").fill("sample_5")
    # Wait for the live search to replace the list (a radio of the first list can be checked
    # just before the swap throws it away: CI saw that once).
    results = teacher.locator("#library-results li")
    expect(results.filter(has_not_text="sample_5")).to_have_count(0)
    sample_5 = teacher.locator("#library-results li", has_text=re.compile(r"sample_5\b"))
    # A click, not check(): picking swaps in #picked with its own checked radio of the same
    # name, which unchecks the clicked one, and check() fails if the swap beats its own look.
    sample_5.locator("input[type=radio]").click()
    expect(teacher.locator("#picked")).to_contain_text("sample_5")
    teacher.get_by_role("button", name="Save item").last.click()
    teacher.wait_for_url(lambda url: url.endswith("/edit/#items"))
    # The answer key is the real run, made by the sandbox worker.
    for _ in range(60):
        if "ready" in teacher.locator("#items").inner_text().lower():
            break
        teacher.wait_for_timeout(500)
        teacher.reload()
    submissions_url = teacher.url.replace("/edit/#items", "/submissions/")
    teacher.goto(submissions_url)
    expect(teacher.locator("#submission-rows")).to_contain_text("No submissions")

    answers = {"ada": None, "brian": "'certainly wrong'"}
    for name, answer in answers.items():
        student = _sign_up(browser, stack, name)
        student.goto(base + "/courses/")
        student.get_by_label("Join code").fill(code.lower())  # codes are not case-sensitive
        student.get_by_role("button", name="Join").click()
        # Joined: the course page, its title shown as text (escaped), not run as a script.
        expect(
            student.get_by_role("heading", name="Tracing 101 <script>x</script>")
        ).to_be_visible()
        student.get_by_role("link", name="Week 1").click()
        student.locator("a[href*='/items/']").first.click()
        if answer is None:  # ada runs it in her head correctly: take the key's value
            answer = _expected_value(stack)
        student.get_by_label("The value").fill(answer)
        student.get_by_role("button", name="Submit").click()
        expect(student.locator("#result")).to_be_visible()
        verdict = "Right" if name == "ada" else "Wrong"
        expect(student.locator("#result")).to_contain_text(verdict)
        student.close()

    # The teacher's page was open all along: the rows arrived by themselves.
    expect(teacher.locator("#submission-rows")).to_contain_text("ada")
    expect(teacher.locator("#submission-rows")).to_contain_text("brian")

    teacher.goto(submissions_url.replace("/submissions/", "/gradebook/"))
    with teacher.expect_download() as download:
        teacher.get_by_role("link", name="Download CSV").click()
    content = open(download.value.path(), encoding="utf-8-sig").read()  # noqa: SIM115
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:2] == ["username", "email"]
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"ada", "brian"}
    assert float(by_name["ada"][-1]) == 100.0  # percent
    assert float(by_name["brian"][-1]) == 0.0
    teacher.close()


def _expected_value(stack: Stack) -> str:
    """sample_5's real value, from the library data (what a careful student would work out)."""
    import json

    from playground.programs.library import DATASETS_DIR

    for line in (DATASETS_DIR / "cruxeval" / "cruxeval.jsonl").open():
        item = json.loads(line)
        if item["id"] == "sample_5":
            return str(item["output"])
    raise AssertionError("sample_5 is missing")
