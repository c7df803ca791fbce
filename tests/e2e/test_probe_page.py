"""A probe run's page in a real browser: every probe listed with its mark, the model's answer and
the true one; a probe's step link moves the trace viewer to that step; a hostile string the program
prints (a true answer) is shown as text, at desktop and phone widths."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.emulation import probes
from playground.emulation.judging import judge_program
from playground.runs.models import Run, Trace
from tests.e2e.conftest import signed_in
from tests.factories import ProgramFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

IMG = "<img src=x onerror=alert(1)>"
SOURCE = (
    f"def f(xs):\n    total = 0\n    tag = {IMG!r}\n    for x in xs:\n        if x > 1:\n"
    "            total += x\n        else:\n            print(tag)\n    return total, tag\n"
)
CALL = "f([1, 2, 3])"


def _probe_run(user: object, wrong: int) -> tuple[Run, list[dict[str, object]]]:
    """A finished probe run whose model answered every probe right but number ``wrong``."""
    real = sandbox.run(SOURCE, call=CALL)
    asked = probes.generate(real, SOURCE, call=CALL, seed=0)
    answers = [p.truth for p in asked]
    true = ast.literal_eval(answers[wrong - 1])
    answers[wrong - 1] = repr(not true) if isinstance(true, bool) else "'not this'"
    details = {"probes": [p.as_dict() for p in asked], "answers": answers}
    verdict, comparison = judge_program(
        "probe", real, call=CALL, prediction=None, problem=None, emulated=None,
        details=details, source=SOURCE,
    )  # fmt: skip
    program = ProgramFactory(source=SOURCE, call=CALL, owner=user)
    run = Run.objects.create(
        program=program, owner=user, method="probe", model="test-model",
        status=Run.Status.DONE, emulation_done=True, verdict=verdict, comparison=comparison,
        source=SOURCE, call=CALL, details=details, model_calls=1,
        emulated_text="[ANSWERS]\n" + "\n".join(f"{n}: {a}" for n, a in enumerate(answers, 1)),
    )  # fmt: skip
    Trace.objects.create(
        run=run, kind="real", status=real["status"], step_count=len(real["steps"]), data=real
    )
    return run, verdict["probes"]


def test_probes_are_marked_and_their_steps_shown_in_the_viewer(
    page: Page, live_server: LiveServer
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    user = signed_in(page, live_server.url)
    artifacts = Path(__file__).parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    run, marks = _probe_run(user, wrong=2)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + run.get_absolute_url())
    expect(page.locator("#verdict-headline")).to_have_text("The model got it wrong")
    items = page.locator("#probe-list > li")
    expect(items).to_have_count(len(marks))
    expect(items.nth(1)).to_have_attribute("data-status", "wrong")
    expect(items.nth(1).locator(".probe-mark")).to_have_text("✗ wrong")
    expect(items.nth(0).locator(".probe-mark")).to_have_text("✓ right")
    for index, mark in enumerate(marks):
        step = int(mark["step"]) + 1  # type: ignore[call-overload]
        link = items.nth(index).locator("a.probe-step")
        link.click()
        expect(page.locator("#step-info")).to_contain_text(f"Step {step} of ")
        assert page.url.endswith(f"#step-{step}")
    output = page.locator('#probe-list > li[data-kind="output"]')
    expect(output.locator("dd code").last).to_have_text(f"(5, {IMG!r})")  # as text
    page.screenshot(path=str(artifacts / "probes-1280.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + run.get_absolute_url())
    expect(items.first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    page.screenshot(path=str(artifacts / "probes-390.png"), full_page=True)
    assert dialogs == []  # the program's <img onerror> never ran
