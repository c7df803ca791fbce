"""A stepping run's page in a real browser (issue 22): the real trace and the model's prediction
of each step move together with the debugger's moves and their keys (step, back, over, out, go
to step n, the next wrong step); the step the model got wrong shows the true value beside its
prediction; steps it was not asked for (the module's, past the cap) say so; the model's text
stays text; nothing scrolls sideways at 390 px. The run is a real one: the program run in the
sandbox and stepped by the oracle model (tests/oracle.py), wrong at one known step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.emulation import stepping
from playground.emulation.base import Item, Session
from playground.emulation.trace import call_steps
from playground.runs.models import Run, Trace
from tests.e2e.conftest import signed_in
from tests.factories import ProgramFactory
from tests.oracle import Oracle, oracle_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

IMG = "<img src=x onerror=alert(1)>"
SOURCE = (
    "def g(x):\n    return x * 2\n\n\ndef f(n):\n"
    f"    label = '{IMG}'\n"
    "    s = 0\n    for i in range(n):\n        s += g(i)\n        print(label, s)\n    return s\n"
)
CALL = "f(9)"  # 60 steps from the call on: more than the 40 model calls a run
WRONG = 14  # step 14 of the call (line 10, s = 2): the oracle gives s a wrong value there
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _stepping_run(
    user: Any, *, free: bool = False, unreadable: int | None = None
) -> tuple[Run, list[dict[str, Any]]]:
    """A finished stepping run of SOURCE by the oracle, wrong at step WRONG (re-synced, or free);
    ``unreadable``: that step's stored answer replaced by text with no step in it, and the run
    judged again against its real trace, as the pipeline judges it."""
    real = sandbox.run(SOURCE, call=CALL)
    assert real["status"] == "ok"
    item = Item(kind="program", source=SOURCE, call=CALL)
    with oracle_server(Oracle(error_step=WRONG)) as model:
        session = Session(model)
        emulation = (stepping.emulate_free if free else stepping.emulate)(item, session)
    verdict = emulation.verdict
    if unreadable is not None:
        emulation.details["stepping"]["answers"][unreadable] = f"{IMG} is the next line"
        verdict = stepping.judge(real, emulation.details)
    program = ProgramFactory(source=SOURCE, call=CALL, owner=user)
    run = Run.objects.create(
        program=program, owner=user, method="step-free" if free else "step", model=model.name,
        status=Run.Status.DONE, emulation_done=True, verdict=verdict, details=emulation.details,
        prediction=emulation.prediction or "", source=SOURCE, call=CALL,
        model_calls=session.calls, prompt_tokens=session.prompt_tokens,
    )  # fmt: skip
    Trace.objects.create(run=run, kind="real", status=real["status"],
                         step_count=len(real["steps"]), data=real)  # fmt: skip
    return run, real["steps"]


def test_both_sides_step_together_and_the_wrong_step_shows_the_truth(
    page: Page, live_server: LiveServer
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    run, steps = _stepping_run(signed_in(page, live_server.url))
    called = call_steps(steps)
    wrong_at = called[WRONG]["i"]  # its index among all the steps (the module's come first)
    assert called[WRONG]["locals"] == {"s": "2"}
    marks = run.verdict["steps"]
    assert [m["step"] for m in marks if m["status"] != "correct"] == [WRONG]
    total = len(steps)

    page.goto(live_server.url + run.get_absolute_url())
    info = page.locator("#step-info")
    mark = page.locator("#model-mark")
    expect(info).to_contain_text(f"Step 1 of {total}")
    expect(mark).to_contain_text("Not asked: the model predicts the call's steps")
    expect(page.locator("#viewer .keys")).to_contain_text("D the next step the model got wrong")

    # D runs to the wrong step: the model's value of s beside the run's.
    page.keyboard.press("d")
    expect(info).to_contain_text(f"Step {wrong_at + 1} of {total} · line 10 in f()")
    expect(mark).to_have_text("✗ wrong: variables")
    row = page.locator("#model-vs tr.wrong")
    expect(row).to_have_count(1)
    expect(row.locator("th")).to_have_text("s =")
    expect(row.locator("td").nth(0)).to_have_text("✗ 'the oracle is wrong here'")
    expect(row.locator("td.truth")).to_have_text("2")
    expect(row.locator("td.truth")).to_be_visible()
    expect(page.locator("#vars tr.changed", has_text="s")).to_contain_text("2")  # the real side
    # The next divergence: there is none after this one.
    page.keyboard.press("d")
    expect(mark).to_have_text("No step after this one was predicted wrong.")

    # Forward and back with the keys: both sides move, a right step shows no truth column.
    page.keyboard.press("ArrowRight")
    expect(info).to_contain_text(f"Step {wrong_at + 2} of {total}")
    expect(mark).to_have_text("✓ right: every part of this step predicted")
    expect(page.locator("#model-vs td.truth").first).to_be_hidden()
    page.keyboard.press("b")
    page.keyboard.press("b")
    expect(info).to_contain_text(f"Step {wrong_at} of {total} · return from g()")
    expect(page.locator("#model-vs tr", has_text="returns")).to_contain_text("✓ 2")

    # Over: from line 9 (s += g(i)) to line 10 in the same frame, past g's steps.
    page.locator("#goto-step").fill(str(wrong_at - 3))
    page.get_by_role("button", name="Go to this step (G)").click()
    expect(info).to_contain_text(f"Step {wrong_at - 3} of {total} · line 9 in f()")
    page.keyboard.press("n")
    expect(info).to_contain_text(f"Step {wrong_at + 1} of {total} · line 10 in f()")
    # Out: from inside g to the step after it returns.
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(info).to_contain_text("line 2 in g()")
    page.keyboard.press("o")
    expect(info).to_contain_text(f"Step {wrong_at + 1} of {total} · line 10 in f()")
    # The button keeps focus after a move (no redraw takes it).
    over = page.get_by_role("button", name="Step over: the next step in this frame (N)")
    over.focus()
    page.keyboard.press("Enter")
    expect(over).to_be_focused()

    # G, a number, Enter: past the cap of model calls, the step was not asked.
    page.keyboard.press("g")
    expect(page.locator("#goto-step")).to_be_focused()
    page.keyboard.type("50")
    page.keyboard.press("Enter")
    expect(info).to_contain_text(f"Step 50 of {total}")
    expect(mark).to_contain_text(f"past the cap of {stepping.MAX_CALLS} model calls")
    expect(page.locator("#model-vs")).to_be_hidden()
    page.locator("#goto-step").fill("999")
    page.locator("#goto-step").press("Enter")
    expect(info).to_have_text(f"There is no step 999: the steps go from 1 to {total}.")
    # The call's last step is always asked: right, with the value.
    page.locator("#step-slider").focus()
    page.keyboard.press("End")
    expect(info).to_contain_text(f"Step {total} of {total}")
    expect(mark).to_have_text("✓ right: every part of this step predicted")

    # The program's string, as the model wrote it, is text.
    page.locator("#goto-step").fill(str(called[2]["i"] + 1))
    page.locator("#goto-step").press("Enter")
    expect(page.locator("#model-vs tr", has_text="label =")).to_contain_text(IMG)
    assert page.locator("#viewer img, #stepping img").count() == 0

    # The page's list of steps moves the viewer too.
    page.locator(f'#stepping-list a[href="#step-{wrong_at + 1}"]').click()
    expect(info).to_contain_text(f"Step {wrong_at + 1} of {total}")
    expect(mark).to_have_text("✗ wrong: variables")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#viewer").screenshot(path=str(ARTIFACTS / "stepping_viewer.png"))

    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("#next-wrong")).to_be_visible()
    page.locator("#viewer").screenshot(path=str(ARTIFACTS / "stepping_viewer_phone.png"))
    assert dialogs == []
    assert errors == []


def test_free_mode_says_where_it_re_synced_and_an_unreadable_answer_stays_text(
    page: Page, live_server: LiveServer
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    run, steps = _stepping_run(signed_in(page, live_server.url), free=True, unreadable=3)
    called = call_steps(steps)
    assert run.verdict["figures"]["resyncs"] == 1  # at the wrong step (as the model ran)
    page.goto(live_server.url + run.get_absolute_url())
    expect(page.locator("#model-step-title")).to_contain_text("re-synced at each wrong one")
    mark = page.locator("#model-mark")
    # The first wrong step met is the unreadable answer: the model's text, as text.
    page.get_by_role("button", name="Run to the next step the model got wrong (D)").click()
    expect(page.locator("#step-info")).to_contain_text(f"Step {called[3]['i'] + 1} of ")
    expect(mark).to_have_text(
        "✗ unreadable: no step object in the trace format · re-synced here: the real step was "
        "given back"
    )
    expect(page.locator("#model-raw code")).to_have_text(f"{IMG} is the next line")
    expect(page.locator("#model-vs")).to_be_hidden()
    page.keyboard.press("D")
    expect(page.locator("#step-info")).to_contain_text(f"Step {called[WRONG]['i'] + 1} of ")
    expect(mark).to_contain_text("✗ wrong: variables · re-synced here")
    assert page.locator("#viewer img").count() == 0
    assert dialogs == []
