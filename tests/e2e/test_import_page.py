"""Importing outputs from the evaluations page in a real browser: a bad file comes back with the
reason next to the file field and nothing made; a good one makes the evaluation, whose page says
it is imported, by which rules it is scored and with what configuration (desktop and phone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.benchmarks.models import Evaluation
from playground.programs.library import import_library
from playground.programs.models import Dataset, Program
from tests.e2e.conftest import signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_an_upload_is_checked_then_becomes_an_evaluation(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    import_library()
    ARTIFACTS.mkdir(exist_ok=True)
    signed_in(page, live_server.url)
    programs = list(Program.objects.filter(dataset=Dataset.CRUXEVAL).order_by("id")[:3])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "<script>alert(1)</script>", "predictions": ["1"]}\n')
    good = tmp_path / "good.jsonl"
    good.write_text(
        "".join(
            json.dumps({"id": p.external_id, "predictions": [p.expected_output]}) + "\n"
            for p in programs
        )
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/evaluations/")
    page.get_by_role("link", name="import a model's outputs").click()
    expect(page.locator("h1")).to_have_text("Import outputs to score")
    page.get_by_label("Data set").select_option("cruxeval")
    page.get_by_label("Model (a label)").fill("my-model")
    page.get_by_label("File").set_input_files(str(bad))
    page.get_by_role("button", name="Import and score").click()
    error = page.locator("#id_file-error")
    expect(error).to_contain_text("is not an item of cruxeval")
    expect(error).to_contain_text("<script>alert(1)</script>")  # shown as text, escaped
    expect(page.get_by_label("Model (a label)")).to_have_value("my-model")  # nothing typed lost
    page.screenshot(path=str(ARTIFACTS / "import-error-1280.png"), full_page=True)
    assert not Evaluation.objects.exists()

    page.get_by_label("File").set_input_files(str(good))
    page.get_by_role("button", name="Import and score").click()
    evaluation = Evaluation.objects.get()
    page.wait_for_url(live_server.url + evaluation.get_absolute_url())
    expect(page.locator("#rules")).to_contain_text("Imported outputs (good.jsonl)")
    expect(page.locator("#rules")).to_contain_text("official-1")
    page.locator("#configuration summary").click()
    expect(page.locator("#configuration")).to_contain_text("jsonl")
    page.screenshot(path=str(ARTIFACTS / "import-evaluation-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "import-evaluation-390.png"), full_page=True)
