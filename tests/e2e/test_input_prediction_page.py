"""A CRUXEval-I run's page in a real browser: the output the model was given, its call, what the
call returned when run in the sandbox (with its steps), the verdict, and the program's own run,
at desktop and phone widths, with a hostile string in the program escaped."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.emulation.judging import judge_program
from playground.runs.models import Run
from tests.e2e.conftest import signed_in
from tests.factories import ProgramFactory, store_traces

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

IMG = "<img src=x onerror=alert(1)>"
SOURCE = f"def f(text, n):\n    tag = '{IMG}'\n    return text[::-1] * n\n"


def _input_run(user: object, model_call: str) -> Run:
    real = sandbox.run(SOURCE, call="f('ab', 2)")
    called = sandbox.run(SOURCE, call=model_call)
    verdict, comparison = judge_program(
        "input-direct",
        real,
        call="f('ab', 2)",
        prediction=model_call,
        problem=None,
        emulated=called,
    )
    program = ProgramFactory(source=SOURCE, call="f('ab', 2)", owner=user)
    run = Run.objects.create(
        program=program, owner=user, method="input-direct", model="test-model",
        status=Run.Status.DONE, emulation_done=True, verdict=verdict, comparison=comparison,
        source=SOURCE, call="f('ab', 2)", prediction=model_call,
        emulated_text=f"[ANSWER]\nassert {model_call} == 'baba'\n[/ANSWER]",
        details={"output": real["result"], "output_from": "sandbox"},
    )  # fmt: skip
    store_traces(run, real, called)
    return run


def test_the_call_its_run_and_the_verdict_at_both_widths(
    page: Page, live_server: LiveServer
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    user = signed_in(page, live_server.url)
    artifacts = Path(__file__).parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)

    wrong = _input_run(user, "f('ba', 2)")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + wrong.get_absolute_url())
    expect(page.locator("#verdict-headline")).to_have_text("The model got it wrong")
    expect(page.locator("#verdict-explanation")).to_contain_text(
        "The model's call f('ba', 2) returns 'abab', not 'baba'."
    )
    values = page.locator("#verdict-values")
    expect(values).to_contain_text("The output")
    expect(values).to_contain_text("'baba'")
    expect(values).to_contain_text("The model\u2019s call")
    expect(page.locator("#call-returned")).to_have_text("returns 'abab'")
    expect(page.locator("#model-call-run")).to_contain_text("The model\u2019s call, run for real")
    expect(page.locator("#emulated-trace li").first).to_be_visible()
    expect(page.get_by_text("The real execution of the program\u2019s own call")).to_be_visible()
    page.screenshot(path=str(artifacts / "input-prediction-1280.png"), full_page=True)

    right = _input_run(user, "f(text='abab', n=1)")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + right.get_absolute_url())
    expect(page.locator("#verdict-headline")).to_have_text("The model got it right")
    expect(page.locator("#call-returned")).to_have_text("returns 'baba'")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    page.screenshot(path=str(artifacts / "input-prediction-390.png"), full_page=True)

    raises = _input_run(user, "f(3, 2)")
    page.goto(live_server.url + raises.get_absolute_url())
    expect(page.locator("#verdict-explanation")).to_contain_text("raises TypeError")
    expect(page.locator("#call-returned")).to_have_text("raised an exception")
    assert dialogs == []  # the program's <img onerror> never ran
