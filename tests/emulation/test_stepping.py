"""Stepping (``playground/emulation/stepping.py``): a model that is always right scores every step
in both modes, with prompts that each extend the one before; a model wrong at a known step is
graded wrong exactly there (and, re-synced, right again after it; free, re-synced once); the cap
keeps the call's last step; a rule's run is the one stepped; hostile answers are unreadable."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from playground import sandbox
from playground.emulation import stepping
from playground.emulation.base import Item, Session
from playground.emulation.judging import judge_program
from playground.emulation.trace import call_steps, render_step
from playground.llm.client import MIN_ANSWER_TOKENS, estimate_tokens
from tests.oracle import Oracle, oracle_server

# A helper call, a loop going round, a print and a return: every step kind but an exception.
PROGRAM = (
    "def g(x):\n    return x * 2\n\ndef f(n):\n    s = 0\n    for i in range(n):\n"
    "        s += g(i)\n        print(s)\n    return s\n"
)
CALL = "f(2)"
RAISING = "def f(d):\n    k = 'b'\n    return d[k]\n"


class Recording(Oracle):
    """The oracle, keeping every stepping prompt it was sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompts: list[str] = []

    def _step(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return super()._step(prompt)


def _step(oracle: Oracle, *, free: bool = False, source: str = PROGRAM, call: str = CALL,
          rule: str = "") -> tuple[Any, Session]:  # fmt: skip
    item = Item(kind="program", source=source, call=call, rule=rule)
    with oracle_server(oracle) as model:
        session = Session(model)
        method = stepping.emulate_free if free else stepping.emulate
        return method(item, session), session


@pytest.mark.parametrize("free", [False, True], ids=["resync", "free"])
def test_the_oracle_predicts_every_step_and_each_prompt_extends_the_last(free: bool) -> None:
    oracle = Recording()
    emulation, session = _step(oracle, free=free)
    real = sandbox.run(PROGRAM, call=CALL)
    steps = call_steps(real["steps"])
    verdict = emulation.verdict
    assert verdict["status"] == "correct", verdict["explanation"]
    assert verdict["explanation"].startswith(f"Every step predicted right (all {len(steps)} ")
    figures = verdict["figures"]
    assert figures["graded"] == figures["total"] == len(steps) == session.calls
    assert figures["accuracy"]["line"] == figures["accuracy"]["variables"] == 1.0
    assert figures["by_index"] == [1] * len(steps)
    assert set(figures["by_kind"]) == {"call", "line", "back-edge", "return"}
    assert figures["resyncs"] == (0 if free else None)
    assert verdict["path"]["status"] == "agrees"
    assert emulation.prediction == real["result"] == "2"
    # Each prompt is the one before it with one more step: an engine's prefix cache applies.
    assert len(oracle.prompts) == len(steps)
    for before, after in zip(oracle.prompts, oracle.prompts[1:], strict=False):
        assert after.startswith(before)
        assert after.count("\n") == before.count("\n") + 1
    # Judged against the page's real trace, the verdict is the same, with the call's value.
    judged, comparison = judge_program(
        "step-free" if free else "step", real, call=CALL, prediction=emulation.prediction,
        problem=None, emulated=None, details=emulation.details, source=PROGRAM,
    )  # fmt: skip
    assert judged["status"] == "correct"
    assert judged["steps"] == verdict["steps"]
    assert comparison["result_match"] is True
    # The prompts' sizes are kept: all but the last are what a prefix cache need not compute.
    sizes = [len(p) for p in oracle.prompts]
    assert emulation.details["stepping"]["prompt_chars"] == sizes
    assert judged["figures"]["prompt_chars"] == sum(sizes)
    assert judged["figures"]["cached_chars"] == sum(sizes) - sizes[-1]


# The call's argument, g's return value, a variable where none changed.
@pytest.mark.parametrize(("k", "part"), [(0, "variables"), (6, "value"), (7, "variables")])
def test_a_model_wrong_at_one_step_is_graded_wrong_there_only(k: int, part: str) -> None:
    emulation, _ = _step(Oracle(error_step=k))
    verdict = emulation.verdict
    assert verdict["status"] == "wrong"
    marks = verdict["steps"]
    assert [m["step"] for m in marks if m["status"] != "correct"] == [k]
    assert marks[k]["wrong"] == [part]
    real = call_steps(sandbox.run(PROGRAM, call=CALL)["steps"])
    assert marks[k]["truth"] == render_step(real[k])  # the true step, shown where it was wrong
    by_index = verdict["figures"]["by_index"]
    assert by_index[k] == 0
    assert sum(by_index) == len(by_index) - 1
    # What the viewer shows beside the true step: the model's step as read.
    predicted = marks[k]["predicted"]
    assert predicted["line"] == real[k]["line"]
    said = [*predicted["changed"].values(), predicted.get("returns")]
    assert "'the oracle is wrong here'" in said
    # The counts an evaluation sums: one part wrong at one step, each mark's step index.
    figures = verdict["figures"]
    assert figures["right"][part] == len(marks) - 1
    assert figures["right"]["line"] == len(marks)
    assert figures["at"] == [m["step"] for m in marks] == list(range(len(marks)))
    right, graded = figures["variables"]
    assert graded >= right == graded - (part == "variables")
    assert verdict["path"]["status"] == "agrees"  # a wrong value, not a wrong line


def test_free_mode_counts_one_resync_for_one_wrong_step() -> None:
    emulation, _ = _step(Oracle(error_step=4), free=True)
    verdict = emulation.verdict
    assert verdict["figures"]["resyncs"] == 1
    assert "Re-synced 1 time." in verdict["explanation"]
    assert [m["step"] for m in verdict["steps"] if m["status"] != "correct"] == [4]


def test_an_exception_leaving_the_call_is_a_step_graded_like_the_others() -> None:
    emulation, _ = _step(Oracle(), source=RAISING, call="f({'a': 1})")
    verdict = emulation.verdict
    assert verdict["status"] == "correct"
    assert verdict["figures"]["by_kind"]["exception"]["correct"] == 2  # raised, then unwound
    assert emulation.prediction is None  # the call has no value
    real = {"event": "unwind", "line": 3, "exception": "KeyError: 'b'"}
    answer = '{"line": 3, "event": "unwind", "exception": "KeyError: \'c\'"}'
    wrong = stepping.grade(0, "exception", real, answer)
    assert wrong["wrong"] == ["value"]


def test_a_long_run_is_capped_and_its_last_step_still_asked() -> None:
    source = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n"
    emulation, session = _step(Oracle(), source=source, call="f(30)")
    total = len(call_steps(sandbox.run(source, call="f(30)")["steps"]))
    assert total > stepping.MAX_CALLS
    assert session.calls == stepping.MAX_CALLS
    verdict = emulation.verdict
    assert verdict["status"] == "correct"
    assert f"{stepping.MAX_CALLS} of the {total} steps graded" in verdict["explanation"]
    assert verdict["steps"][-1]["step"] == total - 1  # the return, after every real step
    assert verdict["path"]["status"] == "unknown"
    assert emulation.prediction == "435"


def test_a_run_under_a_rule_steps_through_the_rules_run() -> None:
    source = "def f(a, b):\n    if a < b:\n        return 'less'\n    return 'not less'\n"
    oracle = Recording()
    emulation, _ = _step(oracle, source=source, call="f(1, 2)", rule="swap-lt-gt")
    assert emulation.verdict["status"] == "correct"
    assert emulation.prediction == "'not less'"  # 1 < 2 is false under the rule
    assert all("[RULE]" in p for p in oracle.prompts)


@pytest.mark.parametrize(
    ("answer", "status", "wrong"),
    [
        ('{"line": 6, "changed": {"i": "0"}}', "correct", None),
        ('{"line": 6, "changed": {"i": "0.0"}}', "correct", None),  # 0 == 0.0, as the verdict
        ('{"line": 6, "changed": {"i": "1"}}', "wrong", ["variables"]),
        ('{"line": 6}', "wrong", ["variables"]),
        ('{"line": 6, "changed": {"i": "0", "j": "2"}}', "wrong", ["variables"]),
        ('{"line": 7, "changed": {"i": "0"}}', "wrong", ["line"]),
        ('{"line": 6, "changed": {"i": "0"}, "printed": "0\\n"}', "wrong", ["output"]),
        ('{"line": 6, "changed": {"i": "__import__(\'os\').system(\'x\')"}}', "wrong",
         ["variables"]),
        ("the next line is 6", "unparsable", None),
    ],
)  # fmt: skip
def test_answers_are_graded_in_parts(answer: str, status: str, wrong: list[str] | None) -> None:
    real = {"i": 7, "line": 6, "func": "f", "locals": {"i": "0"}}
    mark = stepping.grade(3, "line", real, answer)
    assert mark["status"] == status
    assert mark.get("wrong") == wrong
    if status == "unparsable":
        assert mark["why"]
        assert not any(mark["parts"].values())


def test_step_kinds_mark_loop_back_edges_per_frame() -> None:
    steps = call_steps(sandbox.run(PROGRAM, call=CALL)["steps"])
    kinds = stepping.kinds_of(steps)
    # f's call; lines 5, 6, 7; g's call, line, return; 8 (back in f), then 6 again: the loop.
    assert kinds[:8] == ["call", "line", "line", "line", "call", "line", "return", "line"]
    assert kinds[8] == "back-edge"
    assert steps[8]["line"] == 6
    assert kinds[-1] == "return"


def test_a_prompt_past_the_context_stops_the_run_with_the_steps_graded_so_far() -> None:
    item = Item(kind="program", source=PROGRAM, call=CALL)
    steps = call_steps(sandbox.run(PROGRAM, call=CALL)["steps"])
    # Room for the prompts of the first 8 steps (and a 256-token answer), not the 9th's.
    shown = [render_step(s) for s in steps[:8]]
    room = estimate_tokens(stepping.prompt(item, shown[:7])) + MIN_ANSWER_TOKENS
    assert estimate_tokens(stepping.prompt(item, shown)) + MIN_ANSWER_TOKENS > room
    with oracle_server(Oracle()) as model:
        emulation = stepping.emulate(item, Session(replace(model, context_length=room)))
    verdict = emulation.verdict
    assert verdict["figures"]["graded"] == 8
    assert verdict["status"] == "correct"
    assert "Stopped before step 9: The program is too long" in verdict["explanation"]
    assert emulation.prediction is None  # the call's return was never asked
