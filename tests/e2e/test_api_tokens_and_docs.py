"""In a real browser: the account page makes a token, shows it once and revokes it (with the
confirm dialog the Content-Security-Policy allows); /api/docs draws every operation and offers
to authorise with a bearer token, from the site's own Swagger UI files (no CDN: this machine
reaches none), without a CSP violation; and "Try it out" with a token lists the owner's runs."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, Request, expect
from pytest_django.live_server_helper import LiveServer

from playground.accounts.models import ApiToken
from playground.accounts.tokens import create_token
from playground.runs.models import Run
from tests.e2e.conftest import signed_in
from tests.factories import ProgramFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS", "")


def _watch(page: Page) -> list[str]:
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def test_a_token_is_made_shown_once_and_revoked_in_the_browser(
    page: Page, live_server: LiveServer
) -> None:
    problems = _watch(page)
    user = signed_in(page, live_server.url)
    page.goto(live_server.url + "/")
    page.get_by_role("link", name=user.get_username()).click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_label("Name").fill("nightly script")
    page.get_by_label("run: also start runs").check()
    page.get_by_role("button", name="Create token").click()
    shown = page.get_by_label("New API token")
    expect(shown).to_be_visible()
    secret = shown.input_value()
    assert re.fullmatch(r"pgt_[A-Za-z0-9_-]{43}", secret)
    row = page.locator("#api-tokens tbody tr", has_text="nightly script")
    expect(row).to_contain_text("read, run")
    _shot(page, "account-new-token.png")

    page.goto(live_server.url + "/accounts/")  # shown once: not on the next visit
    expect(page.get_by_label("New API token")).to_have_count(0)
    assert secret not in page.content()

    def dismiss_then_accept(dialog: Dialog) -> None:
        assert "Scripts that use it stop working at once" in dialog.message
        dialog.accept()

    page.once("dialog", dismiss_then_accept)
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("is revoked: it no longer works")).to_be_visible()
    expect(page.locator("#api-tokens tbody tr", has_text="nightly script")).to_contain_text(
        "revoked"
    )
    assert ApiToken.objects.get().revoked_at is not None
    _shot(page, "account-revoked.png")
    assert problems == []


def test_the_api_docs_load_offline_and_try_it_out_with_a_token(
    page: Page, live_server: LiveServer
) -> None:
    problems = _watch(page)
    outside: list[str] = []

    def request(req: Request) -> None:
        if not req.url.startswith(live_server.url) and not req.url.startswith("data:"):
            outside.append(req.url)

    page.on("request", request)
    owner = UserFactory()
    program = ProgramFactory(owner=owner)
    run = Run.objects.create(program=program, owner=owner, source=program.source, status="done")
    _, secret = create_token(user=owner, name="docs", scope="read")

    page.goto(live_server.url + "/api/docs")
    ui = page.locator("#swagger-ui")
    for path in ("/api/models", "/api/runs", "/api/runs/{run_id}", "/api/evaluations",
                 "/api/csrf"):  # fmt: skip
        expect(ui.get_by_text(path, exact=True).first).to_be_visible()
    _shot(page, "api-docs.png")

    # Authorise with the token, then try GET /api/runs: the owner's run comes back.
    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(secret)
    page.locator(".modal-ux .auth-btn-wrapper button.authorize").click()
    page.locator(".modal-ux .auth-btn-wrapper button.btn-done").click()
    operation = page.locator(".opblock-get", has=page.locator("[data-path='/api/runs']")).first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    body = operation.locator(".responses-wrapper .response .microlight").first
    expect(body).to_contain_text(f'"id": {run.pk}')
    _shot(page, "api-docs-try-it-out.png")
    assert outside == []
    assert problems == [], "\n".join(problems)
