"""The ``trace`` method: the prompt's worked example is what the sandbox records, steps are
parsed while the answer streams, and bad answers end in ``parse_error`` with the steps kept."""

from __future__ import annotations

import json
from typing import Any

from playground import sandbox
from playground.compare import compare_traces
from playground.emulation import trace as method
from playground.emulation.base import Item, Session
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import Oracle, oracle_server

PROGRAM = """def f(nums):
    total = 0
    for n in nums:
        if n % 2:
            total += n
    print('total', total)
    return total
"""


def _as_taught(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps without what the trace method's format does not teach: object identity (schema
    v3's ``ids`` and ``heap``), which the model is not asked to write."""
    return [{k: v for k, v in step.items() if k not in ("ids", "heap")} for step in steps]


def test_the_worked_example_is_what_the_sandbox_records() -> None:
    real = sandbox.run(method.EXAMPLE_SOURCE, call=method.EXAMPLE_CALL)
    assert _as_taught(method.call_steps(real["steps"])) == method.EXAMPLE_STEPS
    assert method.result_of(method.EXAMPLE_STEPS) == real["result"] == "2"


def test_the_raising_example_is_what_the_sandbox_records_and_the_prompt_teaches_unwinding() -> None:
    real = sandbox.run(method.RAISING_SOURCE, call=method.RAISING_CALL)
    assert _as_taught(method.call_steps(real["steps"])) == method.RAISING_STEPS
    assert real["status"] == "exception"
    assert method.result_of(method.RAISING_STEPS) is None
    assert method.raised_by(method.RAISING_STEPS) == "KeyError: 'missing'"
    prompt = method.messages("def h():\n    return 1", "h()")[0]["content"]
    # Both examples, and the unwind in the format the model is asked to write: no __return__.
    assert prompt.count("[TRACE]") == 3
    assert '{"line": 2, "event": "unwind", "exception": "KeyError: \'missing\'"}' in prompt
    assert '"event": "unwind"' in prompt.split("[PYTHON]")[0]  # the instructions say it too
    assert '__return__": "None' not in prompt


def test_exception_and_unwind_steps_keep_their_exception() -> None:
    parser = method.StepParser()
    parser.feed(method.render(method.RAISING_STEPS) + "\n[/TRACE]")
    assert parser.problem() is None
    assert [(s.get("event"), s.get("exception")) for s in parser.steps[-4:]] == [
        ("exception", "KeyError: 'missing'"),
        ("unwind", "KeyError: 'missing'"),
        ("exception", "KeyError: 'missing'"),
        ("unwind", "KeyError: 'missing'"),
    ]


def test_the_oracle_tracing_a_raising_call_matches_and_its_trace_says_it_raises() -> None:
    item = Item(kind="program", source=method.RAISING_SOURCE, call=method.RAISING_CALL)
    real = sandbox.run(item.source, call=item.call)
    with oracle_server(Oracle()) as model:
        emulation = method.emulate(item, Session(model))
    trace = emulation.trace
    assert trace is not None
    assert trace["status"] == "exception"
    assert trace["error"] == {"type": "KeyError", "message": "'missing'", "line": 2}
    assert emulation.prediction is None
    assert emulation.problem == (
        "The model says the call raises KeyError: 'missing', so it predicts no value."
    )
    comparison = compare_traces(real, trace, from_call=True)
    assert comparison.first_divergence is None
    assert comparison.full_match


def test_steps_arrive_one_by_one_while_the_text_streams() -> None:
    text = method.render(method.EXAMPLE_STEPS) + "\n[/TRACE]"
    parser = method.StepParser()
    seen_after: list[int] = []
    for ch in text:
        parser.feed(ch)
        seen_after.append(len(parser.steps))
    # A step is published the moment its closing brace arrives, not at the end.
    first_newline = text.index("\n")
    assert seen_after[first_newline - 1] == 1
    assert seen_after[first_newline - 2] == 0
    assert len(parser.steps) == len(method.EXAMPLE_STEPS)
    assert parser.problem() is None
    assert [s["line"] for s in parser.steps] == [s["line"] for s in method.EXAMPLE_STEPS]
    assert parser.steps[0]["event"] == "call"
    assert parser.steps[0]["locals"] == {"text": "'ab'"}
    assert parser.steps[9]["stdout"] == "1\n"
    assert all(s["by"] == "lm" for s in parser.steps)


def test_constrained_json_and_chatter_are_read_the_same_way() -> None:
    wrapped = json.dumps({"steps": [{"line": 1, "event": "call", "func": "f"}, {"line": 2}]})
    parser = method.StepParser()
    parser.feed("Let's trace it, it's easy: " + wrapped)
    assert [s["line"] for s in parser.steps] == [1, 2]
    assert parser.problem() is None


def test_off_format_values_are_kept_as_python_reprs() -> None:
    parser = method.StepParser()
    parser.feed('{"line": "3", "changed": {"n": 3, "ok": true, "xs": [1, 2], "s": "\'a\'"}}\n')
    assert parser.steps[0]["line"] == 3
    assert parser.steps[0]["locals"] == {"n": "3", "ok": "True", "xs": "[1, 2]", "s": "'a'"}


def test_a_cut_off_answer_keeps_the_steps_parsed_so_far() -> None:
    parser = method.StepParser()
    parser.feed(
        '{"line": 1, "event": "call", "func": "f"}\n{"line": 2}\n{"line": 3, "changed": {"x'
    )
    assert len(parser.steps) == 2
    assert "middle of a step" in (parser.problem() or "")


def test_garbage_has_no_steps_and_says_so() -> None:
    parser = method.StepParser()
    parser.feed('I think the answer is 42. {not json} [1, 2, {"a": }]')
    assert parser.steps == []
    assert "no step" in (parser.problem() or "")


def test_the_oracle_scores_a_full_match_and_one_error_is_found_at_its_step() -> None:
    item = Item(kind="program", source=PROGRAM, call="f([1, 2, 3])")
    real = sandbox.run(PROGRAM, call=item.call)
    oracle = Oracle()
    with oracle_server(oracle) as model:
        events: list[tuple[str, dict]] = []
        session = Session(model, emit=lambda kind, **data: events.append((kind, data)))
        emulation = method.emulate(item, session)
        assert emulation.trace is not None
        assert emulation.trace["status"] == "ok"
        assert emulation.prediction == "4"
        comparison = compare_traces(real, emulation.trace, from_call=True)
        assert comparison.as_dict()["full_match"]
        # Steps went out as live events, one per step, before the answer was complete.
        step_events = [d["step"] for kind, d in events if kind == "step"]
        assert step_events == emulation.trace["steps"]

        module_steps = len(real["steps"]) - len(method.call_steps(real["steps"]))
        for k in (0, 3, 7):
            oracle.error_step = k
            wrong = method.emulate(item, Session(model))
            assert wrong.trace is not None
            divergence = compare_traces(real, wrong.trace, from_call=True).first_divergence
            assert divergence is not None
            assert divergence["real_step"] == module_steps + k
            assert divergence["kind"] == "value"


def test_an_answer_that_is_not_a_trace_ends_in_parse_error_with_the_text_kept() -> None:
    garbage = "The function adds numbers. Result: 4 {{{"
    script = streaming(
        [chunk(garbage[:20]), chunk(garbage[20:], finish="stop"), b"data: [DONE]\n\n"]
    )
    with fake_server(script) as (model, _):
        session = Session(model)
        emulation = method.emulate(Item(kind="program", source=PROGRAM, call="f([1])"), session)
    assert emulation.trace is not None
    assert emulation.trace["status"] == "parse_error"
    assert emulation.trace["steps"] == []
    assert session.transcript == garbage
    assert emulation.prediction is None
