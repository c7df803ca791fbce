"""``input`` and ``input-cot`` (CRUXEval-I): the model's call is read, run in the sandbox (never
here), and judged by the value it returns against the real output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from playground import sandbox
from playground.emulation import input_prediction as method
from playground.emulation import prompts
from playground.emulation.base import Item, Session
from playground.emulation.judging import judge_program
from tests.llm.fake_server import chunk, fake_server, streaming

SOURCE = "def f(text, n):\n    return text[::-1] * n\n"
ITEM = Item(kind="program", source=SOURCE, call="f('ab', 2)")


def _answering(text: str):  # a server that gives this answer
    def script(handler) -> None:  # type: ignore[no-untyped-def]
        streaming([chunk(text, finish="stop"), b"data: [DONE]\n\n"])(handler)

    return script


def _judged(emulation: Any, item: Item = ITEM) -> dict[str, Any]:
    real = sandbox.run(item.source, call=item.call)
    verdict, _ = judge_program(
        "input-direct",
        real,
        call=item.call,
        prediction=emulation.prediction,
        problem=emulation.problem,
        emulated=emulation.trace,
    )
    return verdict


def test_the_prompt_is_cruxevals_own_with_the_real_output() -> None:
    direct = method.messages(False, SOURCE, "f", "'baba'")[0]["content"]
    assert direct.startswith(prompts.INPUT_DIRECT_INSTRUCTIONS)
    assert direct.endswith("assert f(??) == 'baba'\n[/PYTHON]\n[ANSWER]\n")
    assert 'assert f(["mq", "px", "zy"]) == 3' in direct  # the benchmark's two examples
    cot = method.messages(True, SOURCE, "f", "'baba'")[0]["content"]
    assert cot.startswith(prompts.INPUT_COT_INSTRUCTIONS)
    assert cot.endswith("[/PYTHON]\n[THOUGHT]\n")


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        ("[ANSWER]\nassert f('ba', 2) == 'abab'\n[/ANSWER]", "f('ba', 2)"),
        ("[ANSWER]assert f(text='ba', n=2) == 'abab'[/ANSWER]", "f(text='ba', n=2)"),
        ("[ANSWER]\nf('x', 1)\n[/ANSWER]", "f('x', 1)"),  # the call alone
        ("I think assert f('q', 3) == 'qqq'", "f('q', 3)"),  # no tags at all
        # An expression as argument is kept as written: the sandbox runs it, nothing here does.
        ("[ANSWER]\nassert f('a' * 2, 1 + 1) == 'aaaa'\n[/ANSWER]", "f('a' * 2, 1 + 1)"),
        # The last block with a call wins; an echoed instruction block is skipped.
        (
            "[ANSWER]one such input[/ANSWER]\n[ANSWER]\nassert f('z', 1) == 'z'\n[/ANSWER]",
            "f('z', 1)",
        ),
    ],
)
def test_the_call_is_read_from_the_answer(answer: str, call: str) -> None:
    assert method.extract(answer, "f") == method.Call(call)


@pytest.mark.parametrize(
    "answer",
    [
        "[ANSWER]\nassert g('ba', 2) == 'abab'\n[/ANSWER]",  # another function
        "[ANSWER]\nassert 'abab' == 'abab'\n[/ANSWER]",  # no call
        "[ANSWER]\nassert f.__globals__ == 1\n[/ANSWER]",
        "[ANSWER]\n('ba', 2)\n[/ANSWER]",
        "",
    ],
)
def test_an_answer_without_a_call_of_the_function_is_unparsable(answer: str) -> None:
    read = method.extract(answer, "f")
    assert read.text is None
    assert read.problem is not None
    assert "assert f(...) == output" in read.problem


def test_a_right_call_is_run_and_judged_correct() -> None:
    answer = "[ANSWER]\nassert f('ba', 2) == 'abab'\n[/ANSWER]"
    with fake_server(_answering(answer)) as (model, seen):
        emulation = method.emulate_direct(ITEM, Session(model))
    assert seen["requests"] == 1
    assert emulation.details == {"output": "'baba'", "output_from": "sandbox"}
    assert emulation.prediction == "f('ba', 2)"
    assert emulation.trace is not None
    assert emulation.trace["result"] == "'abab'"
    # f('ba', 2) is 'abab', not the output 'baba': a run, not a string match, decides.
    verdict = _judged(emulation)
    assert verdict["status"] == "wrong"
    assert verdict["explanation"] == "The model's call f('ba', 2) returns 'abab', not 'baba'."


def test_another_input_with_the_same_output_is_correct() -> None:
    answer = "[ANSWER]\nassert f(text='abab', n=1) == 'baba'\n[/ANSWER]"
    with fake_server(_answering(answer)) as (model, _):
        emulation = method.emulate_cot(ITEM, Session(model))
    verdict = _judged(emulation)
    assert verdict["status"] == "correct", verdict
    assert "returns 'baba', the output" in verdict["explanation"]


def test_a_call_that_raises_is_wrong_and_says_so() -> None:
    answer = "[ANSWER]\nassert f(3, 2) == 'baba'\n[/ANSWER]"
    with fake_server(_answering(answer)) as (model, _):
        emulation = method.emulate_direct(ITEM, Session(model))
    verdict = _judged(emulation)
    assert verdict["status"] == "wrong"
    assert "raises TypeError" in verdict["explanation"]


def test_a_hostile_call_runs_only_in_the_sandbox(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    answer = f"[ANSWER]\nassert f(__import__('os').system('touch {marker}'), 1) == 1\n[/ANSWER]"
    with fake_server(_answering(answer)) as (model, _):
        emulation = method.emulate_direct(ITEM, Session(model))
    assert not marker.exists()  # the host's file system never saw it
    assert emulation.trace is not None
    assert _judged(emulation)["status"] == "wrong"


def test_the_library_output_is_used_without_running_the_call_first() -> None:
    item = Item(kind="program", source=SOURCE, call="f('ab', 2)", output="'baba'")
    answer = "[ANSWER]\nassert f('ab', 2) == 'baba'\n[/ANSWER]"
    runs: list[str | None] = []
    with fake_server(_answering(answer)) as (model, _):
        session = Session(model)
        real_run = session.run

        def counted(source: str, **kwargs: Any) -> dict[str, Any]:
            runs.append(kwargs.get("call"))
            return real_run(source, **kwargs)

        session.run = counted  # type: ignore[method-assign]
        emulation = method.emulate_direct(item, session)
    assert runs == ["f('ab', 2)"]  # only the model's call
    assert emulation.details["output_from"] == "data set"


def test_no_output_means_no_question() -> None:
    item = Item(kind="program", source=SOURCE, call="f(1, 2)")  # raises: no output to predict
    with fake_server(_answering("unused")) as (model, seen):
        emulation = method.emulate_direct(item, Session(model))
    assert seen["requests"] == 0
    assert emulation.problem == (
        "There is no output to predict an input for: the call raises TypeError."
    )
    assert _judged(emulation, item)["status"] == "unknown"


def test_a_call_that_is_not_a_named_function_is_refused_before_asking() -> None:
    item = Item(kind="program", source="x = [3, 1]\n", call="sorted(x)[0]")
    with fake_server(_answering("unused")) as (model, seen):
        emulation = method.emulate_direct(item, Session(model))
    assert seen["requests"] == 0
    assert emulation.problem is not None
    assert "call of a function by its name" in emulation.problem


def test_a_direct_answer_inside_the_open_block_is_read_and_stops_the_model() -> None:
    """The direct prompt ends with an open [ANSWER]: an answer that only closes it is read, and
    the stream is closed there, not left to run to the token limit."""
    answer = "assert f('abab', 1) == 'baba'\n[/ANSWER]"
    filler = [chunk("\nMore text the model goes on writing.") for _ in range(200)]
    script = streaming(
        [chunk(answer), *filler, chunk("", finish="stop"), b"data: [DONE]\n\n"], 0.01
    )
    with fake_server(script) as (model, seen):
        session = Session(model)
        emulation = method.emulate_direct(ITEM, session)
    assert emulation.prediction == "f('abab', 1)"
    assert session.endings == ["complete"]
    assert seen["broken"] == 1  # the client closed the stream early
