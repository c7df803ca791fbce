"""The cap on live views, in a real browser against the whole product: a visitor who opens the
same running run in a second tab, over ``streams.anon``, reads on that tab why it is not live,
and the tab still shows the result when the run ends (its slow poll)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.stack import Stack, serving_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A program that runs for a while without steps to trace: the run stays live for seconds.
SLOW = "import time\n\n\ndef f():\n    time.sleep(6)\n    return 42\n"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A site of its own, not the shared one (tests/conftest.py): one live view per visitor
    would cut off every other module's anonymous visitor."""
    saved = {k: os.environ.get(k) for k in ("PLAYGROUND_LIMITS", "PLAYGROUND_SANDBOX_WALL_S")}
    os.environ.update(PLAYGROUND_LIMITS="streams.anon=1", PLAYGROUND_SANDBOX_WALL_S="15")
    try:
        with serving_stack(model=False) as s:
            yield s
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_a_second_tab_over_the_cap_says_so_and_still_gets_the_result(
    stack: Stack, browser: Browser
) -> None:
    context = browser.new_context()
    first = context.new_page()
    first.set_default_timeout(30_000)
    base = f"http://127.0.0.1:{stack.port}"
    first.goto(base + "/programs/new/")
    first.locator("#id_source").fill(SLOW)
    first.locator("#id_call").fill("f()")
    first.get_by_role("button", name="Save program").click()
    first.get_by_role("button", name=re.compile("Run it for real")).click()
    first.wait_for_url(re.compile(r"/runs/\d+/$"))
    first.wait_for_timeout(1_000)  # its websocket open

    second = context.new_page()  # the same visitor: same session, same address
    second.set_default_timeout(30_000)
    second.goto(first.url)
    expect(second.locator("#run-status")).to_contain_text(
        "Too many live views open at once: at most 1 from your address"
    )
    expect(first.locator("#run-status")).not_to_contain_text("Too many")
    # Both end on the result: the first live, the second by its poll.
    for page in (first, second):
        expect(page.locator("#trace-status")).to_contain_text("Finished", timeout=40_000)
    context.close()
