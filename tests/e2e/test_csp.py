"""Finding L7 in a real browser: under the site's Content-Security-Policy (no inline script, no
inline style, no eval) every family of pages loads without a single violation, and what used to
be inline still works: the confirm dialogs, the select that applies itself, the search box that
searches on Enter, htmx swaps and polls, a live model run over the websocket with the
side-by-side viewer, the share link that selects itself, and the charts. The embed view can be
framed by another site; no other page can.

A violation is caught twice: Chromium's console message ("Refused to ... because it violates
the following Content Security Policy directive") and the page's `securitypolicyviolation`
event, logged by a script Playwright adds to every frame. Any uncaught script error fails too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from playground.lib import paths
from tests.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`securitypolicyviolation: ${e.effectiveDirective} blocked ${e.blockedURI}`
    + ` in ${e.documentURI} at ${e.sourceFile}:${e.lineNumber} sample=${e.sample}`);
});
"""


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    """tests/e2e/csp_world.py's data, written by a process of the stack's own configuration."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(PLAYGROUND_VAR_DIR=str(stack.var_dir), DJANGO_SETTINGS_MODULE="playground.settings")
    code = (
        "import json, django; django.setup()\n"
        "from tests.e2e.csp_world import seed; print(json.dumps(seed()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=paths.REPO_DIR, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    world: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return world


class Watched:
    """A browser context whose pages report every CSP violation and script error."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.base = base
        self.problems: list[str] = []
        self.context: BrowserContext = browser.new_context(viewport={"width": 1200, "height": 900})
        self.context.add_init_script(REPORT_VIOLATIONS)

    def page(self) -> Page:
        page = self.context.new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))
        return page

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("securitypolicyviolation"):
            self.problems.append(f"{page.url}: {text}")

    def visit(self, page: Page, path: str) -> None:
        response = page.goto(self.base + path)
        assert response is not None
        assert response.status < 500, (path, response.status)
        policy = response.header_value("content-security-policy") or ""
        assert "script-src 'self'" in policy, (path, policy)
        assert "style-src 'self'" in policy, (path, policy)
        assert "unsafe-" not in policy, (path, policy)

    def log_in(self, page: Page, username: str) -> None:
        self.visit(page, "/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)

    def close(self) -> list[str]:
        """Close every page (a last moment for late violations) and return what was seen."""
        for page in self.context.pages:
            page.wait_for_timeout(200)
        self.context.close()
        return self.problems


@pytest.fixture
def watched(stack: Stack, browser: Browser) -> Iterator[Watched]:
    w = Watched(browser, f"http://127.0.0.1:{stack.port}")
    yield w
    problems = w.close()
    assert problems == [], "\n".join(problems)


def test_public_pages_and_a_live_model_run(watched: Watched) -> None:
    page = watched.page()
    for path in (
        "/",
        "/library/?dataset=humaneval",
        "/library/?dataset=p3",
        "/library/?dataset=bbh",
        "/library/puzzles/Study_4:0/",
        "/library/tasks/navigate/",
        "/library/tasks/navigate/0/",
        "/programs/new/",
        "/programs/mine/",
        "/runs/",
        "/accounts/signup/",
        "/no-such-page/",
        "/admin/login/",
    ):
        watched.visit(page, path)
    # The API docs: Swagger UI from the site's own static files, and it draws the operations.
    watched.visit(page, "/api/docs")
    expect(page.locator("#swagger-ui").get_by_text("/api/runs").first).to_be_visible()

    # An htmx swap: the library's live search.
    watched.visit(page, "/library/?dataset=cruxeval")
    page.get_by_label("Search").fill("sample_5")
    expect(page.get_by_role("link", name="CRUXEval sample_5", exact=True)).to_be_visible()
    page.get_by_role("link", name="CRUXEval sample_5", exact=True).click()

    # A live run: the model writes a trace over the websocket, then the side-by-side viewer.
    page.get_by_label("Method").select_option("trace")
    page.locator("summary", has_text="Limits for this run").click()
    page.get_by_label("Longest model answer").fill("120")  # short: the CPU may be busy
    page.get_by_role("button", name="Run and ask the model").click()
    expect(page.locator("#run-live")).to_be_visible()
    expect(page.locator("#comparison-summary")).to_be_visible(timeout=240_000)
    expect(page.locator("#cmp")).to_be_visible()
    info = page.locator("#cmp-info").inner_text()
    page.locator("#cmp").get_by_role("button", name="Next ▶").click()
    expect(page.locator("#cmp-info")).not_to_have_text(info)

    # Sharing: the link selects itself on a click; the shared page and its embed.
    page.get_by_role("button", name="Create a share link").click()
    link = page.get_by_label("Share link")
    link.click()
    selected = link.evaluate("el => [el.selectionStart, el.selectionEnd, el.value.length]")
    assert selected[0] == 0
    assert selected[1] == selected[2] > 0
    share_url = link.input_value()
    stranger = watched.page()
    stranger.goto(share_url)
    expect(stranger.get_by_text("Shared run · read-only")).to_be_visible()
    stranger.goto(share_url.rstrip("/") + "/embed/")
    expect(stranger.locator("body.embed")).to_be_visible()


@contextmanager
def another_site(frames: dict[str, str]) -> Iterator[str]:
    """A site of its own (another origin on this machine) whose page at each path of ``frames``
    shows the given URL in an iframe; yields its base URL. A real server: Chromium lets no
    public page (a routed one counts as public) frame a loopback address, whatever the policy."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = frames.get(self.path)
            body = f'<!doctype html><title>A blog</title><iframe src="{url}"></iframe>'.encode()
            self.send_response(200 if url else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_embed_view_alone_can_be_framed_by_another_site(
    watched: Watched, stack: Stack, browser: Browser
) -> None:
    page = watched.page()
    watched.visit(page, "/library/?dataset=cruxeval&q=sample_3")
    page.get_by_role("link", name="CRUXEval sample_3", exact=True).click()
    page.get_by_role("button", name="Run it for real").click()
    expect(page.locator("#trace-status")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Create a share link").click()
    share_url = page.get_by_label("Share link").input_value()

    # Another site frames the embed view: it shows.
    frames = {"/embed": share_url.rstrip("/") + "/embed/", "/page": share_url}
    outside = browser.new_context()
    blog = outside.new_page()
    console: list[str] = []
    blog.on("console", lambda m: console.append(m.text))
    with another_site(frames) as other:
        blog.goto(other + "/embed")
        expect(blog.frame_locator("iframe").locator("body.embed .banner").first).to_be_visible()
        assert not [text for text in console if "frame-ancestors" in text], console
        # The ordinary share page refuses to be framed.
        blog.goto(other + "/page")
        blog.wait_for_timeout(1000)
        assert any("frame-ancestors 'none'" in text for text in console), console
        assert blog.frame_locator("iframe").get_by_text("Shared run · read-only").count() == 0
    outside.close()


def test_a_student_answers_and_deletes_a_program_after_confirming(
    watched: Watched, world: dict[str, Any]
) -> None:
    page = watched.page()
    watched.log_in(page, "student1")
    for path in ("/courses/", world["course"], world["assignment"]):
        watched.visit(page, path)
    watched.visit(page, world["item"])
    expect(page.locator("#answer-field")).to_be_visible()
    page.locator("#answer-field").fill("'a guess'")
    page.get_by_role("button", name="Submit").first.click()  # an htmx post and swap
    expect(page.locator("#result")).to_be_visible()

    # The delete button asks first (a static script now, not an onsubmit attribute).
    watched.visit(page, world["scratch"])
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(500)
    assert asked == ["Delete this program?"]
    assert page.url.endswith(world["scratch"])  # declined: nothing was sent
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(lambda url: not url.endswith(world["scratch"]))
    assert len(asked) == 2
    response = page.goto(watched.base + world["scratch"])
    assert response is not None
    assert response.status == 404


def test_staff_pages_charts_and_evaluations(watched: Watched, world: dict[str, Any]) -> None:
    page = watched.page()
    watched.log_in(page, "teacher")
    for path in world["staff_pages"]:
        watched.visit(page, path)

    # The per-item chart keeps its size without a style attribute.
    watched.visit(page, world["item_stats"])
    box = page.locator("svg.chart").bounding_box()
    assert box is not None
    assert box["width"] == 640
    assert box["height"] > 0

    # The submissions filter applies itself when a student is chosen.
    watched.visit(page, world["submissions"])
    page.locator("#filter-student").select_option(label="student2")
    page.wait_for_url(lambda url: "student=" in url)
    expect(page.locator("#submission-rows")).to_contain_text("student2")
    expect(page.locator("#submission-rows")).not_to_contain_text("student1")

    # Enter in the library search of the item form searches and does not send the form.
    watched.visit(page, world["item_new"])
    search = page.get_by_label("Search the library")
    search.fill("sample_9001")
    search.press("Enter")
    expect(page.locator("#library-results")).to_contain_text("sample_9001")
    assert page.url.endswith(world["item_new"])

    # A role change applies at once; removing a member takes a second, explicit step (the
    # "Remove…" disclosure, no script needed).
    watched.visit(page, world["manage"])
    row = page.locator("tr", has_text="student2")
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    row.get_by_role("combobox").select_option("assistant")
    row.get_by_role("button", name="Apply").click()
    expect(page.locator("tr", has_text="student2")).to_contain_text("Assistant")
    row = page.locator("tr", has_text="student2")
    expect(row.get_by_role("button", name="Remove student2")).to_be_hidden()
    row.get_by_text("Remove…").click()
    row.get_by_role("button", name="Remove student2").click()
    expect(page.locator("tr", has_text="student2")).to_have_count(0)
    assert asked == []

    # Evaluations: the leaderboard's grouped chart, each detail's plots, the comparison.
    watched.visit(page, "/evaluations/")
    expect(page.locator("svg.chart").first).to_be_visible()
    for path in world["evaluations"]:
        watched.visit(page, path)
        expect(page.locator("#plot-lines")).to_be_visible()
        box = page.locator("#plot-lines").bounding_box()
        assert box is not None
        assert box["width"] == 560
        font = page.locator("#plot-lines text").first.evaluate("t => getComputedStyle(t).fontSize")
        assert font == "12px"
    watched.visit(page, world["compare"])
    # A narrow screen: the chart shrinks with it.
    page.set_viewport_size({"width": 400, "height": 800})
    watched.visit(page, world["evaluations"][0])
    box = page.locator("#plot-lines").bounding_box()
    assert box is not None
    assert 0 < box["width"] < 400


def test_the_admin_site_works_under_the_policy(watched: Watched, world: dict[str, Any]) -> None:
    page = watched.page()
    watched.log_in(page, "admin")
    for path in world["admin_pages"]:
        watched.visit(page, path)
        expect(page.locator("#content")).to_be_visible()
    expect(page.get_by_label("Username:")).to_have_value("student1")


def test_moderation_pages_work_under_the_policy(watched: Watched, world: dict[str, Any]) -> None:
    """A visitor's Report box, the owner's notice, and every moderators' page."""
    visitor = watched.page()
    watched.visit(visitor, world["reported"])
    visitor.get_by_text("Report this program").click()
    expect(visitor.get_by_label("Malicious code")).to_be_visible()
    owner = watched.page()
    watched.log_in(owner, "student2")
    watched.visit(owner, world["locked"])
    expect(owner.locator("#moderation-notice")).to_contain_text("Why")
    owner.get_by_role("button", name="Log out").click()
    staff = watched.page()
    watched.log_in(staff, "admin")
    for path in world["moderation_pages"]:
        watched.visit(staff, path)
        expect(staff.locator("main h1")).to_be_visible()
