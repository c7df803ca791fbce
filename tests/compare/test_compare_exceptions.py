"""Exceptions in the comparison: a model that says "return None" where the exception unwound the
frame, that misses an exception, invents one or names another one diverges with kind
``exception``; one that gets the unwinding right matches."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from playground.compare import compare_traces
from playground.sandbox import schema

FIXTURE = Path(__file__).parents[1] / "sandbox" / "fixtures" / "traces_v1_3103616.json"


def _real(name: str) -> dict[str, Any]:
    """A real trace as the sandbox records it today (the upgraded v1 fixture equals it:
    tests/sandbox/test_unwind.py)."""
    trace: dict[str, Any] = schema.upgrade(json.loads(FIXTURE.read_text())[name]["trace"])
    return trace


def _model(steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    trace = {"schema": 2, "source": "emulated", "method": "trace", "status": "ok",
             "stdout": "", "result": None, "error": None, "steps": steps}  # fmt: skip
    trace.update(fields)
    return trace


def _as_v1(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps with every unwind written as a return of None (what 3103616 recorded and what
    a model that does not know better writes)."""
    out = copy.deepcopy(steps)
    for step in out:
        if step.get("event") == "unwind":
            step["event"] = "return"
            step["locals"] = {"__return__": "None"}
            for key in ("exception", "to", "to_line"):
                step.pop(key, None)
    return out


def test_a_model_that_gets_the_unwinding_right_matches() -> None:
    real = _real("uncaught_keyerror")
    model = _model(copy.deepcopy(real["steps"]), status="exception", error=real["error"])
    comparison = compare_traces(real, model)
    assert comparison.full_match
    assert comparison.first_divergence is None
    assert {s["status"] for s in comparison.steps} == {"match"}


def test_return_none_where_the_exception_unwound_is_a_divergence_of_its_own_kind() -> None:
    real = _real("uncaught_keyerror")
    comparison = compare_traces(real, _model(_as_v1(real["steps"])))
    divergence = comparison.first_divergence
    assert divergence is not None
    assert divergence["kind"] == "exception"
    assert (divergence["real_step"], divergence["emulated_step"], divergence["line"]) == (9, 9, 1)
    assert divergence["message"] == (
        "Step 10 (line 1): KeyError: 'missing' leaves g() here; the model says g() returns None."
    )
    assert (divergence["expected"], divergence["got"]) == (
        "unwind: KeyError: 'missing'",
        "return None",
    )
    # The steps still pair up (the frames are left on the same lines): the strip shows where.
    statuses = [s["status"] for s in comparison.steps]
    assert statuses[9] == statuses[11] == "exception"
    assert statuses.count("exception") == 2
    assert comparison.correct_prefix == 9


def test_a_model_that_misses_the_exception_diverges_where_it_is_raised() -> None:
    real = _real("uncaught_keyerror")
    written = [s for s in _as_v1(real["steps"]) if s.get("event") != "exception"]
    divergence = compare_traces(real, _model(written)).first_divergence
    assert divergence is not None
    assert divergence["kind"] == "exception"
    assert divergence["real_step"] == 8
    assert divergence["message"] == (
        "Step 9 (line 1): KeyError: 'missing' is raised here; the model skips this step."
    )


def test_a_model_that_invents_an_exception_diverges_with_kind_exception() -> None:
    real = _real("returns_none")
    steps = copy.deepcopy(real["steps"])
    show_return = next(
        n for n, s in enumerate(steps) if s["func"] == "show" and s.get("event") == "return"
    )
    steps[show_return] = {
        "i": show_return, "line": 2, "func": "show", "event": "unwind", "exception": "TypeError",
    }  # fmt: skip
    divergence = compare_traces(real, _model(steps)).first_divergence
    assert divergence is not None
    assert divergence["kind"] == "exception"
    assert divergence["message"] == (
        f"Step {show_return + 1} (line 2): show() returns None; the model says TypeError leaves it."
    )


def test_the_exception_must_be_the_same_type_and_a_message_left_out_is_no_mistake() -> None:
    real = _real("uncaught_keyerror")
    other = copy.deepcopy(real["steps"])
    other[8]["exception"] = "IndexError: list index out of range"
    divergence = compare_traces(real, _model(other)).first_divergence
    assert divergence is not None
    assert divergence["kind"] == "exception"
    assert divergence["real_step"] == 8
    assert "IndexError" in divergence["message"]
    wrong_message = copy.deepcopy(real["steps"])
    wrong_message[8]["exception"] = "KeyError: 'b'"
    assert compare_traces(real, _model(wrong_message)).first_divergence is not None
    bare = copy.deepcopy(real["steps"])
    for step in bare:
        if "exception" in step:
            step["exception"] = "KeyError"
    assert compare_traces(real, _model(bare)).first_divergence is None


def test_after_a_caught_exception_the_callers_variables_are_compared() -> None:
    # parse() unwinds into total(): its frame is popped, so what follows is total's.
    real = _real("caught_in_caller")
    steps = copy.deepcopy(real["steps"])
    assert steps[21]["line"] == 10
    assert steps[22]["locals"] == {"n": "0"}
    # Repeating an unchanged argument of total is no mistake (it is in total's frame, not in
    # parse's, which a comparison that kept the unwound frame would look in).
    steps[22]["locals"] = {"n": "0", "items": "['1', 'x', '3']"}
    assert compare_traces(real, _model(steps, result="3")).first_divergence is None
    steps[22]["locals"] = {"n": "2"}  # the model gets n wrong after the except
    divergence = compare_traces(real, _model(steps, result="3")).first_divergence
    assert divergence is not None
    assert (divergence["kind"], divergence["variable"], divergence["real_step"]) == (
        "value",
        "n",
        22,
    )
    assert (divergence["expected"], divergence["got"]) == ("0", "2")
