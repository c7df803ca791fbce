"""In a real browser: the start form offers more models beside the main one (a list to pick
from with the keyboard or a tap), and one start makes one evaluation per model, listed under
"My evaluations" with a line that names them. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.benchmarks import services
from playground.benchmarks.models import Evaluation
from playground.programs.models import Dataset, Program
from tests.e2e.conftest import signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_one_start_makes_an_evaluation_per_model(
    page: Page, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = [{"name": n, "base_url": f"http://127.0.0.1:9/{n}", "model": n,
               "label": label} for n, label in
              [("coder", "Coder 7B"), ("chat", "Chat 8B"), ("tiny", "Tiny 135M")]]  # fmt: skip
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps(models))
    monkeypatch.setattr(services, "send", lambda pk, origin: None)  # no worker here
    Program.objects.create(title="CRUXEval sample_0", source="def f(x):\n    return x\n",
                           call="f(1)", dataset=Dataset.CRUXEVAL, external_id="sample_0",
                           is_public=True)  # fmt: skip
    signed_in(page, live_server.url)
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(live_server.url + "/evaluations/start/")
    page.get_by_label("Model", exact=True).select_option("coder")
    also = page.get_by_label("Also with (optional)")
    expect(also).to_be_visible()
    also.select_option(["chat", "tiny"])
    page.get_by_label("Items at most").fill("1")
    page.screenshot(path=str(ARTIFACTS / "start-several-models.png"), full_page=True)
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".messages")).to_contain_text("Started 3 evaluations, one per model")
    expect(page.locator("#my-evaluations tbody tr")).to_have_count(3)
    assert sorted(Evaluation.objects.values_list("model", flat=True)) == ["chat", "coder", "tiny"]
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/evaluations/start/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    page.screenshot(path=str(ARTIFACTS / "start-several-models-390.png"), full_page=True)
