"""The verdict taxonomy: right, wrong, unreadable, nothing to compare, and "no model call was
needed"; an explanation that says exactly why a trace gives no result (malformed JSON, the
token limit, or neither), so that the headline never contradicts the comparison under it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from playground.emulation.judging import (
    HEADLINES,
    NO_RESULT,
    headline,
    judge_program,
    needed_no_model,
)
from playground.emulation.trace import StepParser

SOURCE = "def f(s):\n    t = s + 'q'\n    return t\n"
CALL = "f('ab')"
REAL: dict[str, Any] = {
    "schema": 1,
    "status": "ok",
    "result": "'abq'",
    "steps": [
        {"i": 0, "line": 1, "func": "<module>"},
        {"i": 1, "line": 1, "func": "<module>", "event": "call"},
        {"i": 2, "line": 1, "func": "f", "event": "call", "locals": {"s": "'ab'"}},
        {"i": 3, "line": 2, "func": "f"},
        {"i": 4, "line": 3, "func": "f", "locals": {"t": "'abq'"}},
        {"i": 5, "line": 3, "func": "f", "event": "return", "locals": {"__return__": "'abq'"}},
    ],
}
GOOD = [
    '{"line": 1, "event": "call", "func": "f", "changed": {"s": "\'ab\'"}}',
    '{"line": 2}',
]


def _emulated(text: str) -> dict[str, Any]:
    parser = StepParser()
    parser.feed(text)
    return {"status": "parse_error", "steps": parser.steps, "result": None}


def _judge(text: str, **kw: Any) -> dict[str, Any]:
    verdict, comparison = judge_program(
        "trace",
        REAL,
        call=CALL,
        prediction=None,
        problem=StepParser().problem(),
        emulated=_emulated(text),
        text=text,
        **kw,
    )
    assert "steps" in comparison  # the parsed steps are compared below the verdict
    return verdict


def test_a_malformed_step_is_named_not_blamed_on_the_token_limit() -> None:
    # The newcomer's case: step 3 has an unbalanced quote, then the model wrote filler prose
    # until its token limit. The trace did not need the limit; the JSON broke.
    text = "\n".join([*GOOD, '{"line": 3, "changed": {"t": "\'a\'\'}}'])
    text += "\nThis is a JSON object that describes the trace. " * 40
    verdict = _judge(text, hit_limit=True, max_tokens=2048)
    assert verdict["status"] == "unparsable"
    explanation = verdict["explanation"]
    assert "step 3 is not valid JSON" in explanation
    assert "cut off" not in explanation
    assert "went on writing until its token limit (2,048 tokens)" in explanation
    assert "Its 2 readable steps are compared with the real run." in explanation
    assert headline(verdict, emulated_steps=2) == NO_RESULT


def test_cut_off_at_the_token_limit_only_when_the_limit_was_hit() -> None:
    text = "\n".join([*GOOD, '{"line": 3, "changed": {"t": "\'ab'])
    hit = _judge(text, hit_limit=True, max_tokens=64)["explanation"]
    assert "cut off at the token limit (64 tokens) in the middle of step 3" in hit
    not_hit = _judge(text, hit_limit=False, max_tokens=64)["explanation"]
    assert "the answer ends in the middle of step 3" in not_hit
    assert "token limit" not in not_hit


def test_constrained_json_cut_off_inside_the_wrapper() -> None:
    steps = ", ".join(GOOD)
    text = '{"steps": [' + steps + ', {"line": 3, "changed": {"t'
    explanation = _judge(text, hit_limit=True, max_tokens=100)["explanation"]
    assert "cut off at the token limit (100 tokens) in the middle of step 3" in explanation


def test_a_trace_stopped_at_its_return_step_is_not_in_the_middle_of_a_step() -> None:
    # Early stopping closes the answer at the call's return step, before the wrapper's "]}".
    # Measured with the embedded model on CRUXEval sample_3: the return step gave no value, and
    # the verdict said "the answer ends in the middle of step 3" (there is no step 3).
    text = '{"steps": [' + GOOD[0] + ', {"line": 3, "event": "return"}'
    explanation = _judge(text)["explanation"]
    assert "middle of step" not in explanation
    assert 'its return step for the call gives no value (no "__return__" in "changed")' in (
        explanation
    )


def test_a_trace_whose_call_raises_says_so_not_that_its_return_gives_no_value() -> None:
    text = '{"steps": [' + GOOD[0] + ', {"line": 2, "event": "unwind", "exception": "KeyError: 0"}'
    explanation = _judge(text)["explanation"]
    assert explanation.startswith("The model says the call raises KeyError: 0, so it predicts")
    assert "return step" not in explanation
    assert "middle of step" not in explanation


def test_a_trace_without_a_return_step() -> None:
    explanation = _judge("\n".join(GOOD) + "\n[/TRACE]")["explanation"]
    assert "it ends without a return step for the call" in explanation
    assert "token limit" not in explanation


def test_an_answer_with_no_step_at_all_is_unreadable() -> None:
    verdict, _ = judge_program(
        "trace",
        REAL,
        call=CALL,
        prediction=None,
        problem="The answer contains no step in the trace format.",
        emulated={"status": "parse_error", "steps": [], "result": None},
        text="I cannot do that.",
    )
    assert verdict["status"] == "unparsable"
    assert headline(verdict) == "No readable answer"
    assert verdict["explanation"] == "The answer contains no step in the trace format."


def test_direct_without_an_assertion_says_when_the_limit_was_hit() -> None:
    kwargs: dict[str, Any] = {
        "call": CALL,
        "prediction": None,
        "problem": "The answer has no `assert f(...) == value` line to read.",
        "emulated": None,
        "text": "Let me think " * 50,
        "max_tokens": 256,
    }
    hit, _ = judge_program("direct", REAL, hit_limit=True, **kwargs)
    assert hit["explanation"].endswith("The answer ended at the model's token limit (256 tokens).")
    fine, _ = judge_program("direct", REAL, hit_limit=False, **kwargs)
    assert "token limit" not in fine["explanation"]


def test_chain_of_code_without_a_model_call_is_its_own_verdict() -> None:
    coc_trace = {**REAL, "source": "emulated", "method": "coc"}
    verdict, comparison = judge_program(
        "coc", REAL, call=CALL, prediction="'abq'", problem=None, emulated=coc_trace,
        model_calls=0,
    )  # fmt: skip
    assert verdict["status"] == "no_model"
    assert "never asked" in verdict["explanation"]
    assert "(the call returns 'abq')" in verdict["explanation"]
    assert headline(verdict) == "No model call was needed"
    assert comparison["full_match"] is True  # the comparison itself is still true
    # With a model call it is judged as the model's answer.
    asked, _ = judge_program(
        "coc", REAL, call=CALL, prediction="'abq'", problem=None, emulated=coc_trace,
        model_calls=1,
    )  # fmt: skip
    assert asked["status"] == "correct"


@pytest.mark.parametrize(
    ("method", "calls", "expected"),
    [("coc", 0, True), ("coc", 2, False), ("coc", None, False), ("direct", 0, False)],
)
def test_only_chain_of_code_with_zero_calls_needs_no_model(
    method: str, calls: int | None, expected: bool
) -> None:
    assert needed_no_model(method, calls) is expected


def test_every_status_has_one_headline() -> None:
    for status, words in HEADLINES.items():
        assert headline({"status": status}) == words
    assert headline({}) == ""
    assert headline({"status": "something new"}) == "Cannot compare"
    assert json.dumps(HEADLINES)  # plain strings, for the API and the templates alike


def test_a_cut_off_cwm_trace_is_explained_in_frames_not_json_steps() -> None:
    # CWM's format is not the trace method's JSON lines: reading it with that parser named a
    # wrong "step 1" as the break. Two frames were readable, then the token limit.
    text = '<|frame_sep|><|call_sep|>{}<|action_sep|>def f(x):\n<|frame_sep|><|line_sep|>{"x":"1"'
    verdict, _ = judge_program(
        "cwm-trace",
        REAL,
        call=CALL,
        prediction=None,
        problem="no return frame",
        emulated=_emulated("\n".join(GOOD)),
        text=text,
        hit_limit=True,
        max_tokens=4096,
    )
    assert verdict["status"] == "unparsable"
    explanation = verdict["explanation"]
    assert "ends before the call's return frame, at the model's token limit (4,096 tokens)" in (
        explanation
    )
    assert "Its 2 readable frames are compared with the real run." in explanation
    assert "JSON" not in explanation
