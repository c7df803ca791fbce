"""A model run that feels alive, in a real browser against the whole product (`make run`'s
processes): the run button says what will happen, the model's box follows the newest text until
the reader scrolls up (then "Jump to newest" brings it back), the meter's tokens and elapsed time
move, "started ... ago" stays current, and a cancelled run says "Cancelled" on its page and on
its share link. The review of 2026-12 (bugs 8 and 12) found the box stuck at the top for 87 s
with "started now" and no counter. Think-and-Execute shows its plan while the model still works
on the instance, and a second instance of the task reuses it.

The models are scripted servers: one writes a long chain of thought slowly (a real small model
answers too fast to overflow the box reliably), the other (tests/oracle.py) writes a whole plan
at a slow pace, which the embedded model does not reliably do within its Think budget;
screenshots at 1280 and 390 px go to test-artifacts/."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from playground.programs.library import DATASETS_DIR
from tests.e2e.conftest import counts_until
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import Oracle, oracle_server
from tests.stack import Stack, serving_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LINES = 600
DELAY_S = 0.05  # 20 lines a second: 30 s for the whole answer, if nobody cancels it


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A site of its own, not the shared one (tests/conftest.py): its models are scripted,
    where the other modules need the embedded model."""
    parts = [
        chunk(f"Step {i}: the loop takes the next character and appends it to the list.\n")
        for i in range(LINES)
    ]
    parts += [chunk("[ANSWER]\nassert f('bcksrut', 'q') == 'bcksrutq'\n[/ANSWER]", "stop")]
    parts.append(b"data: [DONE]\n\n")
    navigate = json.loads((DATASETS_DIR / "bbh" / "navigate.json").read_text(encoding="utf-8"))
    # Each answer starts a second late: the plan is on the page for that long before the
    # instance's answer, so a plan shown only with the verdict fails the test.
    oracle = Oracle(targets={e["input"]: e["target"] for e in navigate["examples"]},
                    latency=1.0, chunk_delay=0.05)  # fmt: skip
    with fake_server(streaming(parts, delay=DELAY_S)) as (model, _), oracle_server(oracle) as o:
        saved = {k: os.environ.get(k) for k in ("PLAYGROUND_MODELS", "PLAYGROUND_EMBEDDED_LLM")}
        entries = [
            {"name": "slow", "base_url": model.base_url, "model": "slow", "label": "Slow"},
            {"name": o.name, "base_url": o.base_url, "model": o.model, "label": o.label},
        ]
        os.environ["PLAYGROUND_MODELS"] = json.dumps(entries)
        os.environ["PLAYGROUND_EMBEDDED_LLM"] = "off"
        try:
            with serving_stack(model=False) as s:
                yield s
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _numbers(text: str) -> tuple[int, int]:
    """Tokens so far and elapsed seconds, read from the meter's text."""
    tokens = re.search(r"([\d,]+) of at most [\d,]+ tokens", text)
    elapsed = re.search(r"(\d+) s elapsed", text)
    assert tokens is not None, text
    assert elapsed is not None, text
    return int(tokens.group(1).replace(",", "")), int(elapsed.group(1))


def _gap_below(page: Page) -> float:
    """How far the model's box is scrolled from its end, in pixels."""
    gap = "el => el.scrollHeight - el.scrollTop - el.clientHeight"
    return float(page.locator("#model-output").evaluate(gap))


def _shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"live_feedback_{name}.png"))


def test_a_model_run_follows_its_text_counts_and_says_when_it_was_cancelled(
    stack: Stack, browser: Browser
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    base = f"http://127.0.0.1:{stack.port}"
    page.goto(base + "/library/?dataset=cruxeval&q=sample_3")
    page.get_by_role("link", name="CRUXEval sample_3", exact=True).click()

    # The button says what will happen, and follows the method.
    expect(page.get_by_role("button", name="▶ Run it for real")).to_be_visible()
    page.get_by_label("Method").select_option("cot")
    expect(page.get_by_role("button", name="▶ Run and ask the model")).to_be_visible()
    page.get_by_label("Method").select_option("real")
    expect(page.get_by_role("button", name="▶ Run it for real")).to_be_visible()
    page.get_by_label("Method").select_option("cot")
    page.get_by_role("button", name="▶ Run and ask the model").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_url = page.url

    # The meter moves: tokens and elapsed time grow, with a rate.
    meter = page.locator("#model-meter")
    expect(meter).to_contain_text("tokens/s", timeout=60_000)
    tokens_1, elapsed_1 = _numbers(meter.inner_text())
    page.wait_for_timeout(2_500)
    tokens_2, elapsed_2 = _numbers(meter.inner_text())
    assert tokens_2 > tokens_1
    assert elapsed_2 >= elapsed_1 + 2
    started = page.locator("h1 time")
    expect(started).to_have_text(re.compile(r"^(just now|\d+ seconds? ago)$"))

    # The box follows the newest text once it overflows...
    page.wait_for_function(
        "() => { const el = document.getElementById('model-output');"
        " return el.scrollHeight > el.clientHeight + 200; }"
    )
    for _ in range(5):
        page.wait_for_timeout(300)
        assert _gap_below(page) <= 50, "the box did not follow the newest text"
    expect(page.locator("#model-jump")).to_be_hidden()
    _shoot(page, "1280_following")

    # ...until the reader scrolls up: then it stays put, and offers a jump to the newest text.
    page.locator("#model-output").hover()
    page.mouse.wheel(0, -600)
    expect(page.locator("#model-jump")).to_be_visible()
    kept = page.locator("#model-output").evaluate("el => el.scrollTop")
    page.wait_for_timeout(1_000)
    assert page.locator("#model-output").evaluate("el => el.scrollTop") == kept
    assert _gap_below(page) > 100
    _shoot(page, "1280_scrolled_up")
    page.locator("#model-jump").click()
    expect(page.locator("#model-jump")).to_be_hidden()
    page.wait_for_timeout(500)
    assert _gap_below(page) <= 50

    # On a phone the meter and the button stay inside the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.mouse.wheel(0, 0)
    page.wait_for_timeout(300)
    for selector in ("#model-meter", "#model-output"):
        box = page.locator(selector).bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390 + 1, (selector, box)
    _shoot(page, "390_following")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Cancel: the page says so where the verdict would be, and so does a share link.
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#run-cancelled")).to_contain_text("Cancelled")
    expect(page.locator("#model-cancelled")).to_contain_text("Cancelled")
    # The worker notices within half a second, closes the model's stream and keeps the count.
    page.wait_for_timeout(1_500)
    page.reload()
    expect(page.locator("#model-cancelled")).to_contain_text(re.compile(r"after \d+ tokens"))
    _shoot(page, "1280_cancelled")
    page.get_by_role("button", name="Create a share link").click()
    share_url = page.get_by_label("Share link").input_value()
    stranger = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    stranger.goto(share_url)
    expect(stranger.locator("#run-cancelled")).to_contain_text("Cancelled")
    expect(stranger.locator("#model-cancelled")).to_be_visible()
    _shoot(stranger, "390_cancelled_shared")
    stranger.close()
    page.goto(base + "/runs/")
    expect(page.locator(f'a[href="{run_url.removeprefix(base)}"]').locator("..")).to_contain_text(
        "Cancelled"
    )
    assert not problems, problems
    context.close()


def test_think_and_execute_shows_its_plan_live_and_reuses_it(
    stack: Stack, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(30_000)
    base = f"http://127.0.0.1:{stack.port}"
    for index, label in ((0, "new"), (1, "reused")):
        page.goto(f"{base}/library/tasks/navigate/{index}/")
        page.get_by_label("Method").select_option("tae")
        page.get_by_label("Model", exact=True).select_option("oracle")
        page.get_by_role("button", name="Ask the model").click()
        plans = counts_until(page, "#live-plan pre", until="#verdict", seconds=60)
        assert max(plans, default=0) == 1, "the plan did not appear while the model worked"
        expect(page.locator("#verdict")).to_have_attribute("data-verdict", "correct")
        expect(page.locator("#plan .tag")).to_have_text(label)
        expect(page.locator("#plan")).to_contain_text("def solve(instance):")
    page.close()
