"""Every method stops the model as soon as its answer is complete, and a verdict names the token
limit only when the limit cut the answer short.

The oracle here answers right and then keeps writing filler, as SmolLM2 wrote 1,400 tokens of
"This is a JSON object that..." after closing its trace (the newcomer review of 2026-12, bug 7):
each answer must end right after its last useful token, with the connection closed so the
engine stops generating, and nothing of the filler may reach the verdict."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from playground import sandbox
from playground.emulation import coc, output_prediction, puzzle, tae
from playground.emulation import trace as trace_method
from playground.emulation.base import Emulation, Item, Params, Session
from playground.emulation.judging import judge_program
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import FILLER, Oracle, oracle_server

PROGRAM = """def f(nums):
    total = 0
    for n in nums:
        if n % 2:
            total += n
    return total
"""
CALL = "f([1, 2, 3])"
FILLER_CHUNKS = 400  # 0.8 s of filler per answer at the oracle's pace, if nobody stops it
SAT = "def sat(li: List[int], n=3):\n    return len(li) == n and sum(li) == 10 and li[0] > li[1]"
QUESTION = "I have a plum, a sofa and two pears. How many fruits do I have?"

Case = tuple[Callable[[Item, Session], Emulation], Item, Oracle]


def _cases() -> dict[str, Case]:
    program = Item(kind="program", source=PROGRAM, call=CALL)
    return {
        "direct": (output_prediction.emulate_direct, program, Oracle()),
        "cot": (output_prediction.emulate_cot, program, Oracle()),
        "trace": (trace_method.emulate, program, Oracle()),
        "tae": (tae.emulate, program, Oracle()),  # Think, then Execute: two answers
        "puzzle": (
            puzzle.emulate,
            Item(kind="puzzle", source=SAT, ans_type="List[int]"),
            Oracle(solutions={SAT: "[7, 2, 1]"}),
        ),
        "coc": (  # the program is written, then a line is answered as a dict: two answers
            coc.emulate,
            Item(kind="task", task="object_counting", question=QUESTION, target="3"),
            Oracle(targets={QUESTION: "3"}),
        ),
    }


@pytest.mark.parametrize("method", ["direct", "cot", "trace", "tae", "puzzle", "coc"])
def test_every_method_stops_the_model_right_after_a_complete_answer(method: str) -> None:
    emulate, item, oracle = _cases()[method]
    oracle.filler = FILLER_CHUNKS
    with oracle_server(oracle) as model:
        session = Session(model)
        emulation = emulate(item, session)
        deadline = time.monotonic() + 5
        while oracle.closed_early < session.calls and time.monotonic() < deadline:
            time.sleep(0.02)  # the server notices at its next write
    # At most a few chunks of filler got through per answer, not hundreds.
    assert session.transcript.count(FILLER.strip()) <= 2 * session.calls, session.transcript
    assert oracle.closed_early == session.calls  # each answer's connection was closed early
    assert session.endings == ["complete"] * session.calls
    assert session.completion_tokens < 60 * session.calls
    # And the answer is still read right (the oracle is always right).
    if emulation.verdict is not None:
        assert emulation.verdict["status"] == "correct", emulation.verdict
    else:
        real = sandbox.run(PROGRAM, call=CALL)
        verdict, _ = judge_program(
            method,
            real,
            call=CALL,
            prediction=emulation.prediction,
            problem=emulation.problem,
            emulated=emulation.trace,
        )
        assert verdict["status"] == "correct", verdict


def test_turned_off_the_model_writes_on_to_its_limit() -> None:
    # What bench/early_stopping.py measures as "before": the same answer, read to the end.
    oracle = Oracle(filler=50, filler_delay=0)
    with oracle_server(oracle) as model:
        session = Session(model, params=Params(stop_early=False))
        trace_method.emulate(Item(kind="program", source=PROGRAM, call=CALL), session)
    assert session.transcript.count(FILLER.strip()) == 50
    assert session.endings == ["length"]


def _trace_answer(text: str, finish: str) -> tuple[Session, Emulation, dict[str, Any]]:
    """The trace method on a scripted answer, and its verdict against the real run."""
    parts = [chunk(text[i : i + 7]) for i in range(0, len(text), 7)]
    parts += [chunk("", finish=finish), b"data: [DONE]\n\n"]
    with fake_server(streaming(parts)) as (model, _):
        session = Session(model)
        emulation = trace_method.emulate(Item(kind="program", source=PROGRAM, call=CALL), session)
    verdict, _ = judge_program(
        "trace",
        sandbox.run(PROGRAM, call=CALL),
        call=CALL,
        prediction=emulation.prediction,
        problem=emulation.problem,
        emulated=emulation.trace,
    )
    return session, emulation, verdict


CALL_STEP = '{"line": 1, "event": "call", "func": "f", "changed": {"nums": "[1, 2, 3]"}}'


def test_a_broken_string_is_named_as_such_not_as_the_token_limit() -> None:
    # The reviewer's answer: a string that never ends, then filler until the limit.
    broken = '{"steps": [' + CALL_STEP + ', {"line": 2, "changed": {"n": "\'a\'\'}}]}\n```\n'
    session, emulation, verdict = _trace_answer(broken + FILLER * 200, finish="length")
    assert "not valid JSON" in verdict["explanation"]
    assert "token limit" not in verdict["explanation"]
    assert emulation.trace is not None
    assert "token limit" not in emulation.trace["error"]["message"]
    assert FILLER.strip() not in session.transcript  # stopped where the JSON broke
    assert session.endings == ["complete"]


def test_a_complete_trace_with_filler_after_it_is_not_blamed_on_the_limit() -> None:
    # Even read to the end (no early stop), a trace that is complete is not "cut off".
    steps = [json.loads(CALL_STEP), {"line": 2}, {"line": 6, "event": "return"}]
    answer = json.dumps({"steps": steps}) + "\n{{ This is a JSON object that" + FILLER * 20
    parts = [chunk(answer), chunk("", finish="length"), b"data: [DONE]\n\n"]
    with fake_server(streaming(parts)) as (model, _):
        session = Session(model, params=Params(stop_early=False))
        emulation = trace_method.emulate(Item(kind="program", source=PROGRAM, call=CALL), session)
    assert emulation.trace is not None
    assert emulation.trace["status"] == "ok", emulation.trace["error"]
    assert session.endings == ["length"]


def test_an_answer_the_limit_cut_short_says_so() -> None:
    session, _, verdict = _trace_answer(
        '{"steps": [' + CALL_STEP + ', {"line": 2, "changed": {"tot', finish="length"
    )
    assert "token limit" in verdict["explanation"]
    assert "middle of a step" in verdict["explanation"]
    assert session.endings == ["length"]


def test_the_json_wrapper_closing_ends_the_answer() -> None:
    # No return step (a model that stops tracing early): the closed {"steps": [...]} ends it.
    session, _, verdict = _trace_answer(
        json.dumps({"steps": [json.loads(CALL_STEP), {"line": 2}]}) + FILLER * 100, "length"
    )
    assert FILLER.strip() not in session.transcript
    assert session.endings == ["complete"]
    assert verdict["explanation"] == "The trace has no return step."


def test_instructions_echoed_back_do_not_end_an_answer() -> None:
    echo = "Provide the full assertion in [ANSWER] and [/ANSWER] tags.\n"
    answer = f"[ANSWER]\nassert {CALL} == 4\n[/ANSWER]"
    parts = [chunk(echo), chunk(answer), chunk(FILLER * 5, finish="stop"), b"data: [DONE]\n\n"]
    with fake_server(streaming(parts)) as (model, _):
        session = Session(model)
        emulation = output_prediction.emulate_direct(
            Item(kind="program", source=PROGRAM, call=CALL), session
        )
    assert emulation.prediction == "4"
    assert session.transcript == echo + answer  # read past the echo, stopped after the answer
    assert session.endings == ["complete"]


def test_an_exception_leaving_the_call_ends_the_trace_too() -> None:
    # The call's frame ends with an unwind (the model says the call raises): the answer is over.
    parser = trace_method.StepParser()
    parser.feed('{"steps": [' + CALL_STEP + ', {"line": 2}, ')
    assert not parser.complete
    parser.feed('{"line": 2, "event": "unwind", "exception": "KeyError: 0"}')
    assert parser.complete
    assert trace_method.raised_by(parser.steps) == "KeyError: 0"
