"""The side-by-side view of a run's real and emulated traces, in a real browser: stepping both
together, the first divergence, the Chain of Code badge, escaping, and a 10,000-step pair."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.compare import compare_traces
from playground.runs.models import Run
from tests.e2e.conftest import signed_in
from tests.factories import ProgramFactory, store_traces

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

IMG = "<img src=x onerror=alert(1)>"
SOURCE = (
    "def f(n):\n"
    f"    label = '{IMG}'\n"
    "    total = 0\n"
    "    for i in range(n):\n"
    "        total += i\n"
    "    print(label, total)\n"
    "    return total\n"
)
# The real trace of f(3), by step i: 5 arrives at line 3 with label set, 6 at line 4 with
# total = 0, 7 at line 5 with i = 0, ... 10 at line 4 with total = 1.
WRONG_STEP = 10
LM_STEP = 7  # line 5, "simulated by the model" in the emulated copy
EXTRA_STEP = 13  # the model invents a variable here: missing on the real side


def _compared_run(
    user: AbstractBaseUser, source: str, call: str, emulated_steps: Any, real: dict[str, Any]
) -> Run:
    """A finished Chain of Code run whose emulated trace is ``emulated_steps``."""
    emulated = {**copy.deepcopy(real), "source": "emulated", "method": "coc"}
    emulated["steps"] = emulated_steps
    comparison = compare_traces(real, emulated).as_dict()
    program = ProgramFactory(source=source, call=call, owner=user)
    run = Run.objects.create(
        program=program,
        owner=user,
        method="coc",
        model="test-model",
        status=Run.Status.DONE,
        emulation_done=True,
        verdict={"status": "wrong", "explanation": "The trace departs from the real run."},
        comparison=comparison,
        source=source,
        call=call,
    )
    store_traces(run, real, emulated)
    return run


def test_both_traces_step_together_and_the_divergence_is_marked(
    page: Page, live_server: LiveServer
) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    user = signed_in(page, live_server.url)
    real = sandbox.run(SOURCE, call="f(3)")
    assert real["status"] == "ok"
    steps = real["steps"]
    assert steps[WRONG_STEP]["locals"] == {"total": "1"}
    assert steps[LM_STEP]["line"] == 5
    emulated_steps = copy.deepcopy(steps)
    emulated_steps[WRONG_STEP]["locals"]["total"] = "42"
    emulated_steps[LM_STEP]["by"] = "lm"
    emulated_steps[EXTRA_STEP]["locals"] = {"extra": "'made up'"}
    run = _compared_run(user, SOURCE, "f(3)", emulated_steps, real)
    divergence = run.comparison["first_divergence"]
    assert divergence["real_step"] == WRONG_STEP
    assert divergence["variable"] == "total"

    page.goto(live_server.url + run.get_absolute_url())
    section = page.locator("#cmp")
    expect(
        section.get_by_role("heading", name="Side by side: the real run and the model's")
    ).to_be_visible()
    expect(page.locator("#cmp-real")).to_be_visible()
    expect(page.locator("#cmp-emu")).to_be_visible()
    pairs = len(run.comparison["steps"])
    expect(page.locator("#cmp-info")).to_have_text(f"Pair 1 of {pairs} · the model agrees")
    expect(page.locator("#cmp-strip .cmp-cell")).to_have_count(pairs)
    expect(page.locator("#cmp-strip .cmp-cell.first-div")).to_have_count(1)
    expect(page.locator("#cmp-divergence")).to_be_hidden()

    # The model's Chain of Code line carries the badge, and only that line.
    expect(page.locator(".lm-line")).to_have_count(1)
    expect(page.locator("#line-5 .lm-badge")).to_have_text("LM")
    expect(page.locator("#cmp-lm-key")).to_be_visible()

    page.get_by_role("button", name="Jump to first divergence").click()
    expect(page).to_have_url(f"{live_server.url}{run.get_absolute_url()}#pair-{WRONG_STEP + 1}")
    expect(page.locator("#cmp-info")).to_contain_text(f"Pair {WRONG_STEP + 1} of {pairs}")
    expect(page.locator("#cmp-info")).to_contain_text("a value differs: total")
    expect(page.locator("#cmp-real-step")).to_contain_text(f"Step {WRONG_STEP + 1} · line 4 in f()")
    expect(page.locator("#cmp-emu-step")).to_contain_text(f"Step {WRONG_STEP + 1} · line 4 in f()")
    for side, value in (("real", "1"), ("emu", "42")):
        diff = page.locator(f"#cmp-{side}-vars tr.diff")
        expect(diff).to_have_count(1)
        expect(diff.locator("th")).to_have_text("total")
        expect(diff.locator("td")).to_have_text(value)
    expect(page.locator("#cmp-divergence")).to_be_visible()
    expect(page.locator("#cmp-divergence")).to_have_text(divergence["message"])
    expect(page.locator("#cmp-strip .cmp-cell.here")).to_have_class(
        "cmp-cell s-value first-div here"
    )
    # Both on line 4: shown as agreeing.
    expect(page.locator(".agree-line")).to_have_attribute("id", "line-4")
    # The program's string is shown as text in both panels and in the code.
    for side in ("real", "emu"):
        expect(page.locator(f"#cmp-{side}-vars")).to_contain_text(f"'{IMG}'")
    expect(page.locator("#line-2")).to_contain_text(IMG)

    # Next / Prev and the arrow keys move both panels together.
    page.get_by_role("button", name="Next ▶").click()
    expect(page.locator("#cmp-real-step")).to_contain_text(f"Step {WRONG_STEP + 2} · line 5")
    expect(page.locator("#cmp-emu-step")).to_contain_text(f"Step {WRONG_STEP + 2} · line 5")
    expect(page.locator("#cmp-divergence")).to_be_hidden()
    expect(page.locator("#cmp-real-vars tr.diff")).to_have_count(0)
    # Step 8 (its "i" is 7) is the one on line 5 the model simulated.
    page.get_by_role("button", name="◀ Prev").click()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#cmp-real-step")).to_have_text(f"Step {LM_STEP + 1} · line 5 in f()")
    expect(page.locator("#cmp-emu-step")).to_have_text(
        f"Step {LM_STEP + 1} · line 5 in f() · simulated by the model"
    )
    page.keyboard.press("ArrowRight")
    expect(page.locator("#cmp-real-step")).to_contain_text(f"Step {LM_STEP + 2} ")
    expect(page.locator("#cmp-emu-step")).to_contain_text(f"Step {LM_STEP + 2} ")

    # A variable the model made up is "(missing)" on the real side.
    page.locator(f'#cmp-strip .cmp-cell[data-pair="{EXTRA_STEP}"]').click()
    expect(page.locator("#cmp-real-vars tr.diff")).to_have_text("extra(missing)")
    expect(page.locator("#cmp-emu-vars tr.diff")).to_have_text("extra'made up'")

    page.keyboard.press("End")
    expect(page.locator("#cmp-info")).to_contain_text(f"Pair {pairs} of {pairs}")
    expect(page.locator("#cmp-real-output")).to_have_text(f"{IMG} 3\n")
    expect(page.locator("#cmp-emu-output")).to_have_text(f"{IMG} 3\n")
    assert page.locator("#cmp img, #cmp-divergence img").count() == 0
    assert dialogs == []


def test_ten_thousand_step_pair_renders_and_steps_fast(page: Page, live_server: LiveServer) -> None:
    user = signed_in(page, live_server.url)
    source = (
        "def f():\n    total = 0\n    i = 0\n    while True:\n        total += i\n        i += 1\n"
    )
    real = sandbox.run(source, call="f()")
    assert len(real["steps"]) == 10_000
    emulated_steps = copy.deepcopy(real["steps"])
    wrong = next(s for s in emulated_steps[5000:] if "total" in s.get("locals", {}))
    wrong["locals"]["total"] = "-1"
    run = _compared_run(user, source, "f()", emulated_steps, real)
    assert len(run.comparison["steps"]) == 10_000

    t0 = time.monotonic()
    page.goto(live_server.url + run.get_absolute_url())
    expect(page.locator("#cmp-info")).to_have_text("Pair 1 of 10000 · the model agrees")
    loaded = time.monotonic() - t0
    expect(page.locator("#cmp-strip .cmp-cell")).to_have_count(2000)  # capped
    expect(page.locator("#cmp-lm-key")).to_be_hidden()  # no line was simulated by the model

    page.keyboard.press("End")
    expect(page.locator("#cmp-info")).to_contain_text("Pair 10000 of 10000")
    page.locator("#cmp-slider").fill("5000")
    expect(page.locator("#cmp-info")).to_contain_text("Pair 5001 of 10000")
    for _ in range(20):
        page.keyboard.press("ArrowLeft")
    expect(page.locator("#cmp-info")).to_contain_text("Pair 4981 of 10000")
    page.get_by_role("button", name="Jump to first divergence").click()
    expect(page.locator("#cmp-info")).to_contain_text(f"Pair {wrong['i'] + 1} of 10000")
    expect(page.locator("#cmp-real-vars tr.diff")).to_contain_text("total")

    # The time a move costs in the page itself (its handler, the new pair drawn and laid
    # out), not the test's round trips to the browser, which a busy machine stretches (24
    # moves took 2.16 s that way in a CI run).
    per_move = page.evaluate(
        """() => {
          const t0 = performance.now();
          for (let i = 0; i < 100; i++) {
            const move = new KeyboardEvent("keydown", {key: "ArrowRight", bubbles: true});
            document.dispatchEvent(move);
            document.body.offsetHeight;  // lay the page out, as the next frame would
          }
          return (performance.now() - t0) / 100;
        }"""
    )
    expect(page.locator("#cmp-info")).to_contain_text(f"Pair {wrong['i'] + 101} of 10000")
    print(f"\n10,000 pairs: page ready in {loaded:.2f} s, {per_move:.2f} ms a move")
    assert loaded < 5
    # 10 to 25 ms here (most of it laying out the page); a response within 100 ms feels
    # immediate, and a move that drew every pair would take far longer.
    assert per_move < 100, f"{per_move:.1f} ms a move"
    # Only the current pair is rendered: one row per variable, not per step.
    assert page.locator("#cmp-real-vars tr").count() <= 3


def test_skipped_and_added_steps_are_shown_as_such(page: Page, live_server: LiveServer) -> None:
    user = signed_in(page, live_server.url)
    real = sandbox.run(SOURCE, call="f(3)")
    # The model leaves out the loop test at step 8 and takes an extra step at the end.
    emulated_steps = copy.deepcopy(real["steps"])
    del emulated_steps[8]
    emulated_steps.append({"i": 0, "line": 7, "func": "f", "locals": {"done": "True"}})
    for i, step in enumerate(emulated_steps):
        step["i"] = i
    run = _compared_run(user, SOURCE, "f(3)", emulated_steps, real)
    pairs = run.comparison["steps"]
    skipped = next(p for p, pair in enumerate(pairs) if pair["emulated"] is None)
    added = next(p for p, pair in enumerate(pairs) if pair["real"] is None)

    page.goto(live_server.url + run.get_absolute_url())
    page.get_by_role("button", name="Jump to first divergence").click()
    expect(page.locator("#cmp-info")).to_have_text(
        f"Pair {skipped + 1} of {len(pairs)} · the model skipped a step of the real run"
        " · the first divergence"
    )
    expect(page.locator("#cmp-emu-step")).to_have_text("(the model skipped this step)")
    expect(page.locator("#cmp-real-step")).to_contain_text(f"Step {pairs[skipped]['real'] + 1} ·")
    expect(page.locator("#cmp-divergence")).to_have_text(
        run.comparison["first_divergence"]["message"]
    )
    expect(page.locator("#cmp-strip .cmp-cell.first-div")).to_have_class(
        "cmp-cell s-flow first-div here"
    )
    # The model's panel keeps showing its state so far: i = 0 from the step before.
    expect(page.locator("#cmp-emu-vars")).to_have_text(f"n3label'{IMG}'total0i0")

    page.goto(f"{live_server.url}{run.get_absolute_url()}#pair-{added + 1}")
    page.reload()
    expect(page.locator("#cmp-info")).to_contain_text(f"Pair {added + 1} of {len(pairs)}")
    expect(page.locator("#cmp-real-step")).to_have_text("(the model added this step)")
    expect(page.locator("#cmp-emu-step")).to_contain_text("line 7 in f()")
    expect(page.locator("#cmp-emu-vars tr.changed")).to_contain_text("done")


def test_a_copy_where_the_program_shares_one_list_is_an_identity_divergence(
    page: Page, live_server: LiveServer
) -> None:
    """Both sides record identity (Chain of Code's trace comes from the sandbox): the model's b
    equals a but is another list, which the viewer shows with the objects' badges."""
    from pathlib import Path

    user = signed_in(page, live_server.url)
    source = "a = [1]\nb = a\nb.append(2)\nprint(a)\n"
    real = sandbox.run(source)
    emulated_steps = copy.deepcopy(real["steps"])
    for step in emulated_steps:
        if "b" in step.get("ids", {}):
            step["ids"]["b"] = 2
    emulated_steps[3]["heap"] = {"2": {"kind": "list", "items": ["1"]}}
    run = _compared_run(user, source, "", emulated_steps, real)
    assert run.comparison["first_divergence"]["kind"] == "identity"
    page.goto(live_server.url + run.get_absolute_url())
    expect(page.locator("#cmp-ids-key")).to_be_visible()
    page.get_by_role("button", name="Jump to first divergence").click()
    expect(page.locator("#cmp-divergence")).to_contain_text(
        "b is the same object as a in the real run; in the model's run it is an object of its own"
    )
    expect(page.locator("#cmp-info")).to_contain_text("the values agree but not the objects")
    expect(page.locator("#cmp-real-vars .ref")).to_have_text(["#1", "#1"])  # a, b: one list
    expect(page.locator("#cmp-emu-vars .ref")).to_have_text(["#1", "#2"])  # two lists
    expect(page.locator("#cmp-emu-vars tr.diff th")).to_have_text("b")
    # Each side draws its own objects: the real run one list under two names, the model two.
    real_objects = page.locator("#cmp-real-heap .obj")
    emu_objects = page.locator("#cmp-emu-heap .obj")
    expect(real_objects).to_have_count(1)
    expect(real_objects.first.locator(".obj-names")).to_have_text(" · a, b")
    expect(emu_objects).to_have_count(2)
    expect(emu_objects.locator(".obj-names")).to_have_text([" · a", " · b"])
    page.get_by_role("button", name="Next ▶").click()  # b.append(2) ran
    expect(real_objects.first.locator(".obj-items li")).to_have_text(["1", "2"])
    expect(real_objects.first.locator(".tag")).to_have_text("changed in place")
    expect(emu_objects.nth(1).locator(".obj-items li")).to_have_text(["1"])
    # A badge leads to its object on its own side only (each side numbers its own).
    page.locator("#cmp-emu-vars .ref").nth(1).hover()
    expect(page.locator("#cmp-emu-heap .obj.linked")).to_have_count(1)
    expect(page.locator("#cmp-real-heap .obj.linked")).to_have_count(0)
    artifacts = Path(__file__).parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.locator("#cmp").screenshot(path=str(artifacts / "compare-identity-1280.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    expect(emu_objects).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    page.locator("#cmp").screenshot(path=str(artifacts / "compare-identity-390.png"))


def test_a_model_written_trace_has_no_objects_pane(page: Page, live_server: LiveServer) -> None:
    """A model-written trace (the trace method) records values only: its side draws no objects,
    while the real side does."""
    user = signed_in(page, live_server.url)
    source = "a = [1]\nb = a\nb.append(2)\n"
    real = sandbox.run(source)
    emulated_steps = [
        {k: v for k, v in step.items() if k not in ("ids", "heap")}
        for step in copy.deepcopy(real["steps"])
    ]
    run = _compared_run(user, source, "", emulated_steps, real)
    page.goto(live_server.url + run.get_absolute_url())
    page.get_by_role("button", name="Last »").click()
    expect(page.locator("#cmp-real-objects")).to_be_visible()
    expect(page.locator("#cmp-real-heap .obj")).to_have_count(1)
    expect(page.locator("#cmp-emu-objects")).to_be_hidden()
    expect(page.locator("#cmp-emu-vars .ref")).to_have_count(0)
