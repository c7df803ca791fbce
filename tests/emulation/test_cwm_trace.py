"""The ``cwm-trace`` method: the prompt is CWM's trace-prediction layout, its worked example is
what the sandbox records, frames become steps while the answer streams, the oracle (answering
from the real trace in CWM's format) scores a full match, and a frame made wrong is graded
exactly at its step."""

from __future__ import annotations

from typing import Any

import pytest

from playground import sandbox
from playground.compare import compare_traces, cwm
from playground.emulation import cwm_trace as method
from playground.emulation import prompts
from playground.emulation.base import Item, Session
from playground.emulation.judging import judge_program
from playground.emulation.trace import call_steps
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import Oracle, oracle_server

PROGRAM = """def count(xs, x):
    n = 0
    for y in xs:
        if y == x:
            n += 1
    return n

def f(words):
    seen = {}
    for w in words:
        seen[w] = count(words, w)
    return seen
"""
CALL = "f(['a', 'b', 'a'])"
RAISING = "def f(d):\n    k = 'x'\n    return d[k]\n"


def _untaught(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k not in ("ids", "heap")} for s in steps]


def test_the_worked_example_is_what_the_sandbox_records() -> None:
    real = sandbox.run(method.EXAMPLE_SOURCE, call=method.EXAMPLE_CALL)
    assert _untaught(call_steps(real["steps"])) == method.EXAMPLE_STEPS
    example = cwm.export(real, method.EXAMPLE_SOURCE, call=method.EXAMPLE_CALL)
    assert example in method.messages(PROGRAM, CALL)[0]["content"]


def test_the_prompt_is_cwms_trace_prediction_layout_after_the_instructions() -> None:
    content = method.messages(PROGRAM, CALL)[0]["content"]
    assert content.startswith(method.INSTRUCTIONS)
    question = content.rsplit("Now continue this one:\n", 1)[1]
    assert question == cwm.prompt(PROGRAM, CALL)
    assert question.startswith("<|begin_of_text|><|trace_context_start|>def count(xs, x):\n")
    assert "\ndef f(words):  # << START_OF_TRACE\n" in question
    assert question.endswith("\n    return seen\n\nf(['a', 'b', 'a'])\n<|frame_sep|>")


def test_the_oracle_scores_a_full_match_and_steps_stream_live() -> None:
    item = Item(kind="program", source=PROGRAM, call=CALL)
    real = sandbox.run(PROGRAM, call=CALL)
    events: list[tuple[str, dict[str, Any]]] = []
    with oracle_server(Oracle()) as model:
        session = Session(model, emit=lambda kind, **data: events.append((kind, data)))
        emulation = method.emulate(item, session)
    trace = emulation.trace
    assert trace is not None
    assert trace["status"] == "ok"
    assert emulation.prediction == real["result"] == "{'a': 2, 'b': 1}"
    assert compare_traces(real, trace, from_call=True).full_match
    assert [d["step"] for kind, d in events if kind == "step"] == trace["steps"]
    assert len(trace["steps"]) == len(call_steps(real["steps"]))
    verdict, comparison = judge_program(
        "cwm-trace", real, call=CALL, prediction=emulation.prediction, problem=None,
        emulated=trace, text=session.transcript,
    )  # fmt: skip
    assert verdict["status"] == "correct"
    assert verdict["path"]["status"] == "agrees"
    assert comparison["full_match"]


@pytest.mark.parametrize("k", [0, 4, 9, 15])
def test_a_frame_made_wrong_is_graded_exactly_at_its_step(k: int) -> None:
    item = Item(kind="program", source=PROGRAM, call=CALL)
    real = sandbox.run(PROGRAM, call=CALL)
    module_steps = len(real["steps"]) - len(call_steps(real["steps"]))
    oracle = Oracle(error_step=k)
    with oracle_server(oracle) as model:
        session = Session(model)
        emulation = method.emulate(item, session)
    assert emulation.trace is not None
    divergence = compare_traces(real, emulation.trace, from_call=True).first_divergence
    assert divergence is not None
    assert divergence["real_step"] == module_steps + k
    assert divergence["kind"] == "value"
    assert divergence["got"] == "'the oracle is wrong here'"
    frames = cwm.parse(session.transcript, PROGRAM).frames
    found = cwm.compare_frames(cwm.frames_of(real, PROGRAM, call=CALL), frames)
    assert found["first_divergence"]["frame"] == k
    assert found["matched"] == k


def test_a_raising_call_predicts_no_value_and_says_what_it_raises() -> None:
    item = Item(kind="program", source=RAISING, call="f({})")
    real = sandbox.run(RAISING, call="f({})")
    with oracle_server(Oracle()) as model:
        emulation = method.emulate(item, Session(model))
    trace = emulation.trace
    assert trace is not None
    assert trace["status"] == "exception"
    assert trace["error"] == {"type": "KeyError", "message": "'x'", "line": 3}
    assert emulation.prediction is None
    assert (
        emulation.problem
        == "The model says the call raises KeyError: 'x', so it predicts no value."
    )
    assert compare_traces(real, trace, from_call=True).full_match


def test_a_step_is_published_the_moment_its_frame_is_whole() -> None:
    real = sandbox.run(PROGRAM, call=CALL)
    text = cwm.render(cwm.frames_of(real, PROGRAM, call=CALL))
    reader = method.FrameReader(PROGRAM)
    seen: list[int] = []
    for ch in text:
        reader.feed(ch)
        seen.append(len(reader.steps))
    first = text.index(cwm.FRAME_SEP) + len(cwm.FRAME_SEP)
    assert seen[first - 2] == 0
    assert seen[first - 1] == 1
    assert reader.complete
    assert reader.steps[0] == {
        "i": 0, "line": 8, "func": "f", "by": "lm", "event": "call",
        "locals": {"words": "['a', 'b', 'a']"},
    }  # fmt: skip


def test_an_answer_that_is_not_a_trace_ends_in_parse_error_with_the_text_kept() -> None:
    garbage = "The function counts words: {'a': 2, 'b': 1}"
    script = streaming([chunk(garbage, finish="stop"), b"data: [DONE]\n\n"])
    with fake_server(script) as (model, _):
        session = Session(model)
        emulation = method.emulate(Item(kind="program", source=PROGRAM, call=CALL), session)
    assert emulation.trace is not None
    assert emulation.trace["status"] == "parse_error"
    assert emulation.trace["steps"] == []
    assert emulation.problem == "The answer contains no frame in CWM's trace format."
    assert session.transcript == garbage


def test_a_cut_off_answer_keeps_its_frames_and_says_where_it_stopped() -> None:
    real = sandbox.run(PROGRAM, call=CALL)
    text = cwm.render(cwm.frames_of(real, PROGRAM, call=CALL))
    cut = text[: text.index(cwm.FRAME_SEP, 200) + len(cwm.FRAME_SEP) + 20]
    script = streaming([chunk(cut, finish="length"), b"data: [DONE]\n\n"])
    with fake_server(script) as (model, _):
        emulation = method.emulate(Item(kind="program", source=PROGRAM, call=CALL), Session(model))
    assert emulation.trace is not None
    assert emulation.trace["status"] == "parse_error"
    assert emulation.trace["steps"]
    assert emulation.problem == "The model reached its token limit before the call returned."
    verdict, comparison = judge_program(
        "cwm-trace", real, call=CALL, prediction=None, problem=emulation.problem,
        emulated=emulation.trace, text=cut, hit_limit=True,
    )  # fmt: skip
    assert verdict["status"] == "unparsable"
    assert comparison["first_divergence"]["kind"] == "control_flow"


def test_an_answer_that_echoes_the_prompt_is_read_from_after_the_programs_context() -> None:
    """A chat model may repeat the whole message, the worked example's finished trace first:
    the frames read are the ones after this program's context, not the example's."""
    real = sandbox.run(PROGRAM, call=CALL)
    frames = cwm.render(cwm.frames_of(real, PROGRAM, call=CALL))
    echo = method.messages(PROGRAM, CALL)[0]["content"] + frames
    reader = method.FrameReader(PROGRAM, CALL)
    for at in range(0, len(echo), 7):
        reader.feed(echo[at : at + 7])
    assert reader.problem() is None
    assert reader.steps[0]["func"] == "f"
    assert len(reader.steps) == len(call_steps(real["steps"]))
    parsed = cwm.parse(echo, PROGRAM)
    assert [f.key() for f in parsed.frames] == [
        f.key() for f in cwm.frames_of(real, PROGRAM, call=CALL)
    ]
    chatty = method.FrameReader(PROGRAM, CALL)
    chatty.feed("Sure, here is the trace:\n" + frames)
    assert len(chatty.steps) == len(reader.steps)
    assert chatty.problem() is None


def test_under_a_rule_the_prompt_states_it_right_before_the_program() -> None:
    plain = method.messages(PROGRAM, CALL)[0]["content"]
    stated = method.messages(PROGRAM, CALL, "swap-add-sub")[0]["content"]
    note = prompts.rule_note("swap-add-sub")
    assert stated.replace(note, "") == plain
    assert stated.index(note) > stated.index("Example:")  # the example keeps standard Python
    assert stated.endswith(note + "Now continue this one:\n" + cwm.prompt(PROGRAM, CALL))
