"""An exception leaving a frame is recorded as an unwind (which exception, from where, to where),
never as a return of None: in-process, in the sandbox, in a batch and in Chain of Code mode."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from playground import sandbox
from playground.sandbox import BatchSandbox, schema
from playground.sandbox.inside.tracer import Execution, LimitReached
from playground.sandbox.lmulator import LMRequest

FIXTURE = Path(__file__).parent / "fixtures" / "traces_v1_3103616.json"
# The newcomer review's repro: the KeyError raised in g passes through f.
REPRO = "def g(d): return d['missing']\ndef f(): return g({'a': 1})\n"


def _trace(source: str, call: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    execution = Execution(
        source, call, max_steps=10_000, max_stdout=64_000, emit=steps.extend, finish=final.update
    )
    with contextlib.suppress(LimitReached):
        execution.run()
    return steps, final


def _exits(steps: list[dict[str, Any]]) -> list[tuple[str, str, Any, Any, Any]]:
    """(func, event, exception, to, to_line) of every step that leaves a frame or raises."""
    return [
        (s["func"], s["event"], s.get("exception"), s.get("to"), s.get("to_line"))
        for s in steps
        if s.get("event") in ("return", "unwind", "exception")
    ]


def test_the_repro_unwinds_g_then_f_and_nothing_returns_none() -> None:
    steps, final = _trace(REPRO, "f()")
    assert final["status"] == "exception"
    missing = "KeyError: 'missing'"
    assert _exits(steps) == [
        ("<module>", "return", None, None, None),  # the definitions: a real return
        ("g", "exception", missing, None, None),  # raised in g, at line 1
        ("g", "unwind", missing, "f", 2),  # leaves g, back to f at line 2
        ("f", "exception", missing, None, None),  # arrives in f
        ("f", "unwind", missing, None, None),  # leaves f and the program's code
    ]
    # The bug of 3103616: "return from g() · return value None" after each exception.
    for step in steps:
        if step.get("event") == "unwind":
            assert "__return__" not in step.get("locals", {})
    raised = schema.raise_step(steps)
    assert raised is not None
    assert (steps[raised]["func"], steps[raised]["event"], steps[raised]["line"]) == (
        "g",
        "exception",
        1,
    )


def test_a_caught_exception_unwinds_only_the_frame_it_leaves() -> None:
    source = (
        "def parse(s):\n    return int(s)\n\n"
        "def total(items):\n    n = 0\n    for s in items:\n        try:\n"
        "            n += parse(s)\n        except ValueError:\n            n -= 1\n    return n\n"
    )
    steps, final = _trace(source, "total(['1', 'x', '3'])")
    assert final["result"] == "3"
    bad = "ValueError: invalid literal for int() with base 10: 'x'"
    assert [e for e in _exits(steps) if e[0] == "parse"] == [
        ("parse", "return", None, None, None),
        ("parse", "exception", bad, None, None),
        ("parse", "unwind", bad, "total", 8),
        ("parse", "return", None, None, None),
    ]
    # total catches it, goes on, and returns normally, its value recorded.
    assert steps[-1]["event"] == "return"
    assert steps[-1]["locals"]["__return__"] == "3"
    assert schema.raise_step(steps) is None  # the run did not end with an exception


def test_a_finally_that_reraises_unwinds_after_its_lines() -> None:
    source = (
        "def h():\n    try:\n        return 1 / 0\n    finally:\n        done = True\n"
        "def m():\n    try:\n        h()\n    except ZeroDivisionError:\n        return 'caught'\n"
    )
    steps, _ = _trace(source, "m()")
    h = [s for s in steps if s["func"] == "h"]
    assert [s.get("event", "line") for s in h][-3:] == ["exception", "line", "unwind"]
    assert h[-1]["locals"] == {"done": "True"}  # the finally ran, then the exception went on
    assert (h[-1]["to"], h[-1]["to_line"]) == ("m", 8)
    assert steps[-1]["locals"]["__return__"] == "'caught'"


def test_returning_none_is_still_a_return_and_a_closed_generator_reaches_no_caller() -> None:
    source = (
        "def show(x):\n    print(x)\n\n"
        "def first_big(xs):\n    return any(x > 1 for x in xs)\n\n"
        "def main():\n    show(3)\n    return first_big([1, 2, 3])\n"
    )
    steps, final = _trace(source, "main()")
    assert final["result"] == "True"
    show = [s for s in steps if s["func"] == "show" and s.get("event") == "return"]
    assert show[0]["locals"]["__return__"] == "None"
    closed = [s for s in steps if s.get("event") == "unwind"]
    assert [(s["func"], s["exception"], "to" in s) for s in closed] == [
        ("<genexpr>", "GeneratorExit", False)
    ]


def test_an_exception_without_a_message_reads_as_its_type_alone() -> None:
    steps, final = _trace("raise MemoryError\n")
    assert [s["exception"] for s in steps if "exception" in s] == ["MemoryError", "MemoryError"]
    assert final["error"] == {"type": "MemoryError", "message": "", "line": 1}


def test_the_sandbox_records_the_same_unwinds_and_validates_them() -> None:
    in_process, _ = _trace(REPRO, "f()")
    trace = sandbox.run(REPRO, call="f()")
    assert trace["schema"] == schema.SCHEMA_VERSION == 3
    assert trace["steps"] == in_process
    assert trace["error"] == {"type": "KeyError", "message": "'missing'", "line": 1}


def test_a_batch_records_unwinds_too() -> None:
    batch = BatchSandbox()
    try:
        trace = batch.run(REPRO, "f()")
    finally:
        batch.close()
    assert [s["event"] for s in trace["steps"] if s.get("event") == "unwind"] == ["unwind"] * 2


def test_chain_of_code_shows_an_exception_the_model_declined_as_an_unwind() -> None:
    def decline(request: LMRequest) -> str:
        return "not a dict"  # unreadable: Python's own outcome stands

    trace = sandbox.run(REPRO, call="f()", lmulator=decline)
    assert trace["status"] == "exception"
    unwinds = [(s["func"], s.get("to")) for s in trace["steps"] if s.get("event") == "unwind"]
    assert unwinds == [("g", "f"), ("f", None)]
    returns = [s["func"] for s in trace["steps"] if s.get("event") == "return"]
    assert returns == ["<module>"]  # the definitions; g and f do not return


def test_an_exception_the_model_answers_leaves_a_normal_return() -> None:
    def value(request: LMRequest) -> str:
        return repr({"__value__": 0})

    trace = sandbox.run(REPRO, call="f()", lmulator=value)
    assert trace["status"] == "ok", trace["error"]
    assert trace["result"] == "0"
    assert [s["func"] for s in trace["steps"] if s.get("event") == "return"][-2:] == ["g", "f"]
    assert not [s for s in trace["steps"] if s.get("event") == "unwind"]


# -- stored traces of 3103616 (schema 1) ---------------------------------------------------------


def _without_identity(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k not in ("ids", "heap")}


def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


@pytest.mark.parametrize(
    "name", ["uncaught_keyerror", "caught_in_caller", "recursion_raises", "returns_none"]
)
def test_an_upgraded_v1_trace_is_what_the_sandbox_records_today(name: str) -> None:
    saved = _fixture()[name]
    old = saved["trace"]
    assert old["schema"] == 1
    today = sandbox.run(saved["source"], call=saved["call"])
    upgraded = schema.upgrade(old)
    assert upgraded["schema"] == schema.SCHEMA_VERSION
    assert upgraded["upgraded_from"] == 1
    # ...except for what v3 added (object identity), which no older trace has.
    assert upgraded["steps"] == [_without_identity(step) for step in today["steps"]]
    assert (upgraded["status"], upgraded["result"], upgraded["error"]) == (
        today["status"],
        today["result"],
        today["error"],
    )


def test_upgrading_leaves_current_traces_model_steps_and_garbage_alone() -> None:
    old = _fixture()["uncaught_keyerror"]["trace"]
    upgraded = schema.upgrade(old)
    assert schema.upgrade(upgraded) is upgraded  # current: as it is
    assert old["steps"][9]["event"] == "return"  # the stored dict is not changed in place
    written = dict(old, source="emulated", method="trace")  # a model's steps, as it wrote them
    assert schema.upgrade(written)["steps"] == old["steps"]
    for value in (None, "ok", [1], {"steps": []}, {"schema": 3, "steps": []}):
        assert schema.upgrade(value) == value
    assert schema.upgrade({"schema": 1, "steps": "x"}) == {
        "schema": schema.SCHEMA_VERSION,
        "upgraded_from": 1,
        "steps": "x",
    }
    assert schema.upgrade({"schema": 1, "steps": [7, None]})["steps"] == [7, None]


def test_upgrading_rewords_v1_limit_messages_that_repeated_the_status() -> None:
    old = _fixture()["sleeps_past_wall_clock"]["trace"]
    assert old["error"]["message"] == "Stopped after 2 s of wall-clock time."
    assert schema.upgrade(old)["error"] == {
        "type": "TimeLimit",
        "message": "The program ran for 2 s of wall-clock time.",
        "line": None,
    }
    cpu = {"type": "TimeLimit", "message": "Stopped after 2 s of CPU time.", "line": None}
    assert schema.upgrade(dict(old, error=cpu))["error"]["message"] == (
        "The program used 2 s of CPU time."
    )
    memory = {"type": "MemoryError", "message": "", "line": 1}
    upgraded = schema.upgrade(dict(old, status="memory_limit", error=memory))
    assert upgraded["error"]["message"] == "out of memory"


def test_the_v1_fixture_shows_the_bugs_it_documents() -> None:
    # Made by 3103616's own tracer (tests/sandbox/fixtures/make_v1_traces.py): what was wrong.
    fixture = _fixture()
    repro = fixture["uncaught_keyerror"]["trace"]["steps"]
    assert repro[9] == {
        "i": 9,
        "line": 1,
        "func": "g",
        "event": "return",
        "locals": {"__return__": "None"},
    }
    assert fixture["sleeps_past_wall_clock"]["trace"]["steps"] == []
