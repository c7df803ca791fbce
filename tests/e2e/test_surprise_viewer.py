"""The model's surprise on the run page, in a real browser: scored from its button (the oracle
model scoring as vLLM does, the task run at once), the heat map beside the step where the
model's own emulation diverged, zero surprise where the model was certain, the figures in
words; a pending score that updates by itself; and the "not supported by this engine" state."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.emulation import trace as trace_method
from playground.runs import surprise
from playground.runs.models import Run, RunSurprise
from tests.e2e.conftest import signed_in
from tests.oracle import Oracle, oracle_server
from tests.runs.test_surprise import WRONG, finished_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _serve(oracle: Oracle, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    with oracle_server(oracle) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        if oracle.prompt_logprobs:
            entry["tokenizer"] = "vllm"
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield oracle


@pytest.fixture
def scoring(eager: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    yield from _serve(Oracle(error_step=WRONG, prompt_logprobs=True), monkeypatch)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go (``SCREENSHOT_DIR`` to keep them)."""
    where = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_the_heat_map_is_beside_the_divergence_and_zero_where_certain(
    page: Page, live_server: LiveServer, scoring: Oracle, shots: Path
) -> None:
    user = signed_in(page, live_server.url)
    run = finished_run(user)
    called = trace_method.call_steps(run.real_trace.data["steps"])  # type: ignore[union-attr]
    wrong = called[WRONG]["i"] + 1  # as the viewer numbers steps
    assert run.comparison["first_divergence"]["real_step"] + 1 == wrong

    page.goto(live_server.url + run.get_absolute_url())
    section = page.locator("#surprise")
    heading = section.get_by_role("heading", name="The model\u2019s surprise along the real run")
    expect(heading).to_be_visible()
    section.get_by_role("button", name="Score surprise").click()

    table = page.locator("#surprise-table")
    expect(table).to_be_visible()
    expect(page.locator("#surprise-strip li")).to_have_count(len(called))
    expect(page.locator("#surprise-strip li.diverged")).to_have_count(1)
    expect(page.locator("#surprise-divergence")).to_contain_text(
        f"The model\u2019s own emulation first diverged at step {wrong}"
    )
    # The step that diverged is the one that surprised the model, in words beside its colour.
    row = page.locator(f"#surprise-step-{wrong}")
    top = RunSurprise.objects.get(run=run).max_step or 0.0
    expect(row).to_have_class(f"heat-row-{surprise.level(top)} diverged")
    expect(row.locator("th")).to_contain_text("the model\u2019s emulation diverged here")
    assert float(row.locator("td .nats").first.inner_text()) > 0
    for step in called:
        number = step["i"] + 1
        if number != wrong:
            expect(page.locator(f"#surprise-step-{number} td .nats").first).to_have_text("0.00")
    expect(page.locator("#surprise-top")).to_contain_text(f"step {wrong}")
    # Each changed value carries its own figure; a value from the program stays text.
    expect(table.locator("b")).to_have_count(0)
    label = table.locator('.surprise-value[data-name="label"]')
    expect(label.locator("code")).to_have_text("label = '<b>x</b>'")
    expect(label.locator(".nats")).to_have_text("0.00")
    moved = row.locator(".surprise-value")
    expect(moved.locator(".nats")).not_to_have_text("0.00")
    expect(page.locator("#surprise-legend")).to_contain_text("10 or more")

    # The side-by-side viewer's state panel carries each changed value's surprise too.
    page.get_by_role("button", name="Jump to first divergence").click()
    expect(page.locator("#cmp-real-step")).to_contain_text(f"Step {wrong} ·")
    badge = page.locator("#cmp-real-vars tr.diff .surprise-badge")
    expect(badge).to_have_text(f"{top:.2f} nats")
    page.locator("#cmp").screenshot(path=str(shots / "surprise-state-panel.png"))
    page.get_by_role("button", name="Next ▶").click()
    expect(page.locator("#cmp-real-step")).to_contain_text(f"Step {wrong + 1} ·")
    expect(page.locator("#cmp-real-vars .surprise-badge")).to_have_count(0)  # nothing changed
    page.get_by_role("button", name="Next ▶").click()
    expect(page.locator("#cmp-real-vars tr.changed .surprise-badge")).to_have_text("0.00 nats")

    # The strip's cell of a step leads to its row.
    page.locator("#surprise-strip li.diverged a").click()
    expect(page).to_have_url(f"{live_server.url}{run.get_absolute_url()}#surprise-step-{wrong}")
    section.screenshot(path=str(shots / "surprise-heat-map.png"))
    page.screenshot(path=str(shots / "surprise-page.png"), full_page=True)


def test_a_pending_score_updates_by_itself(
    page: Page, live_server: LiveServer, scoring: Oracle, shots: Path
) -> None:
    user = signed_in(page, live_server.url)
    run = finished_run(user)
    surprise.request(run, send=False)  # sent to a worker, which has not finished yet
    page.goto(live_server.url + run.get_absolute_url())
    expect(page.locator("#surprise-pending")).to_contain_text("Being scored")
    section = page.locator("#surprise")
    section.screenshot(path=str(shots / "surprise-pending.png"))
    assert surprise.score(run.pk) == "done"  # the worker finishes
    expect(page.locator("#surprise-table")).to_be_visible(timeout=10_000)
    expect(page.locator("#surprise-pending")).to_have_count(0)


def test_an_engine_without_log_probabilities_says_so(
    page: Page,
    live_server: LiveServer,
    eager: None,
    monkeypatch: pytest.MonkeyPatch,
    shots: Path,
) -> None:
    for _ in _serve(Oracle(error_step=WRONG), monkeypatch):
        user = signed_in(page, live_server.url)
        run = finished_run(user)
        page.goto(live_server.url + run.get_absolute_url())
        note = page.locator("#surprise-unsupported")
        expect(note).to_be_visible()
        expect(note).to_contain_text("Not supported by this engine.")
        expect(note).to_contain_text("its surprise cannot be measured")
        expect(page.get_by_role("button", name="Score surprise")).to_have_count(0)
        page.locator("#surprise").screenshot(path=str(shots / "surprise-unsupported.png"))


def test_the_trace_viewer_of_a_run_without_a_step_comparison_shows_it_too(
    page: Page, live_server: LiveServer, scoring: Oracle
) -> None:
    user = signed_in(page, live_server.url)
    run = finished_run(user)
    # A direct answer's run: no emulated trace, so the page steps through the real run alone.
    Run.objects.filter(pk=run.pk).update(method="direct", comparison=None)
    run.traces.filter(kind="emulated").delete()
    called = trace_method.call_steps(run.real_trace.data["steps"])  # type: ignore[union-attr]
    wrong = called[WRONG]["i"] + 1
    page.goto(live_server.url + run.get_absolute_url())
    expect(page.locator("#cmp")).to_have_count(0)
    page.get_by_role("button", name="Score surprise").click()
    expect(page.locator("#surprise-table")).to_be_visible()
    expect(page.locator("#surprise-divergence")).to_have_count(0)  # no emulated trace to diverge
    page.locator("#step-slider").fill(str(wrong - 1))
    expect(page.locator("#step-info")).to_contain_text(f"Step {wrong} of")
    expect(page.locator("#vars .surprise-badge")).to_have_count(1)
    expect(page.locator("#vars tr.changed .surprise-badge")).not_to_have_text("0.00 nats")
    page.locator("#step-slider").fill(str(called[0]["i"]))
    expect(page.locator("#vars .surprise-badge")).to_have_text("0.00 nats")  # the call's n = 3
