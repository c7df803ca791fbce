"""Real headless Chromium (Debian's package), driven by Playwright, against the live server."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.test import Client
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.factories import UserFactory

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam

CHROMIUM = "/usr/bin/chromium"
# Playwright's sync API runs an event loop in this thread; the live server and the ORM calls made
# by the test itself are ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread while it
    # is open, which the asyncio tests that follow must not find.
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package.")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page: Page, base_url: str, username: str) -> None:
    """Log in through the form as a user made by the factories (their shared password)."""
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def session_cookie(user: AbstractBaseUser, base_url: str) -> SetCookieParam:
    """A signed-in session of ``user`` as a browser cookie for ``base_url`` (no login form)."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return {"name": name, "value": client.cookies[name].value, "url": base_url}


def signed_in(page: Page, base_url: str) -> AbstractBaseUser:
    """A new user (from the factories), signed in in ``page``'s browser context."""
    user = UserFactory()
    page.context.add_cookies([session_cookie(user, base_url)])
    return user


def counts_until(page: Page, selector: str, until: str, seconds: float = 90) -> list[int]:
    """How many elements match ``selector``, sampled every 50 ms until ``until`` appears (what a
    viewer sees arrive while a run streams)."""
    counts: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not page.locator(until).count():
        counts.append(page.locator(selector).count())
        time.sleep(0.05)
    return counts


def seconds_to_step_around_ten_thousand(page: Page) -> float:
    """On a viewer showing a 10,000-step trace: the last step, the slider to step 5,001, then 20
    steps back with the keyboard, each checked in the step line; the seconds it all took."""
    info = page.locator("#step-info")
    t0 = time.monotonic()
    page.keyboard.press("End")
    expect(info).to_contain_text("Step 10000 of 10000")
    page.locator("#step-slider").fill("5000")
    expect(info).to_contain_text("Step 5001 of 10000")
    for _ in range(20):
        page.keyboard.press("ArrowLeft")
    expect(info).to_contain_text("Step 4981 of 10000")
    return time.monotonic() - t0
