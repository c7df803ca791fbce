"""Properties of compare_traces over random traces: a copy always matches, and one change at step
k is reported at step k, with the right kind."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from playground.compare import compare_traces

NAMES = ["a", "b", "n", "total", "xs"]
FUNCS = ["<module>", "f", "g", "helper"]
UNUSED_LINE = 999  # generated lines are 1..30

PROPERTY = settings(max_examples=200, deadline=None)

ints = st.integers(-1000, 1000)
values = st.one_of(
    ints.map(repr), st.text(max_size=5).map(repr), st.lists(ints, max_size=4).map(repr)
)
stdouts = st.one_of(st.just(""), st.text(alphabet="ab \n\t", max_size=8))


MOVES = ["line", "line", "line", "call", "return"]
# One integer per step says everything about it (drawing each part separately is ten times
# slower): line, move, callee, which names change, which values they get, which output.
STEP_CHOICES = 30 * len(MOVES) * len(FUNCS) * 2 ** len(NAMES) * 16 * 8


def _split(x: int, *sizes: int) -> list[int]:
    parts = []
    for size in sizes:
        x, part = divmod(x, size)
        parts.append(part)
    return parts


@st.composite
def traces(draw: st.DrawFn) -> dict[str, Any]:
    """A trace of 1..60 steps: either well nested calls and returns, or all "line" steps in one
    frame; a few changed locals (reprs of ints, strings and lists) and some output per step."""
    n = draw(st.integers(1, 60))
    codes = draw(st.lists(st.integers(0, STEP_CHOICES - 1), min_size=n, max_size=n))
    pool = draw(st.lists(values, min_size=1, max_size=8))
    outputs = draw(st.lists(stdouts, min_size=1, max_size=4))
    nested = draw(st.booleans())
    stack: list[str] = []
    steps: list[dict[str, Any]] = []
    for i, code in enumerate(codes):
        line, move, callee, mask, pick, out = _split(
            code, 30, len(MOVES), len(FUNCS), 2 ** len(NAMES), 16, 8
        )
        locals_ = {
            name: pool[(pick + b) % len(pool)] for b, name in enumerate(NAMES) if mask >> b & 1
        }
        event, func = "line", "f"
        if nested:
            event = "call" if not stack else MOVES[move]
            if event == "call" and len(stack) >= 5:
                event = "line"
            if event == "call":
                stack.append(FUNCS[callee])
            func = stack[-1]
            if event == "return":
                locals_["__return__"] = repr(i)
                stack.pop()
        step: dict[str, Any] = {"i": i, "line": line + 1, "func": func}
        if event != "line":
            step["event"] = event
        if locals_:
            step["locals"] = locals_
        stdout = outputs[out] if out < len(outputs) else ""
        if stdout:
            step["stdout"] = stdout
        steps.append(step)
    return {
        "schema": 1,
        "source": "real",
        "status": "ok",
        "steps": steps,
        "stdout": "".join(s.get("stdout", "") for s in steps),
        "result": draw(values),
    }


def _first_compared(trace: dict[str, Any], from_call: bool) -> int:
    """Index of the first step compare_traces looks at."""
    start = 0
    if from_call:
        while start < len(trace["steps"]) and trace["steps"][start]["func"] == "<module>":
            start += 1
    return start


@PROPERTY
@given(trace=traces(), from_call=st.booleans())
def test_a_copy_is_a_full_match(trace: dict[str, Any], from_call: bool) -> None:
    result = compare_traces(trace, copy.deepcopy(trace), from_call=from_call)
    compared = len(trace["steps"]) - _first_compared(trace, from_call)
    assert result.full_match
    assert result.first_divergence is None
    assert result.compared_steps == result.correct_prefix == compared
    assert result.step_agreement == 1.0
    assert result.result_match is True
    assert result.output_match is True
    assert result.variable_agreement in (None, 1.0)
    assert all(s["status"] == "match" for s in result.steps)


@PROPERTY
@given(
    trace=traces(),
    from_call=st.booleans(),
    change=st.sampled_from(["value", "output", "control_flow"]),
    data=st.data(),
)
def test_one_change_at_step_k_is_found_at_step_k(
    trace: dict[str, Any], from_call: bool, change: str, data: st.DataObject
) -> None:
    steps = trace["steps"]
    start = _first_compared(trace, from_call)
    if start == len(steps):  # only module steps: nothing is compared
        start = 0
        from_call = False
    k = data.draw(st.integers(start, len(steps) - 1), label="k")
    if change == "value" and not steps[k].get("locals"):
        steps[k]["locals"] = {"zz": "0"}  # give step k a variable, in both traces

    model = copy.deepcopy(trace)
    changed = model["steps"][k]
    if change == "value":
        name = data.draw(st.sampled_from(sorted(changed["locals"])), label="name")
        # Generated ints are within ±1000: this is no value the real frame can hold.
        changed["locals"][name] = repr(10**12 + k)
    elif change == "output":
        suffix = data.draw(st.text(alphabet="xyz", min_size=1, max_size=5), label="suffix")
        changed["stdout"] = changed.get("stdout", "") + suffix
    else:
        changed["line"] = UNUSED_LINE

    result = compare_traces(trace, model, from_call=from_call)
    d = result.first_divergence
    assert d is not None
    assert d["real_step"] == k
    assert d["emulated_step"] == k
    assert d["kind"] == change
    assert result.correct_prefix == k - start
    assert not result.full_match
    if change == "value":
        assert d["variable"] == name
        assert d["got"] == repr(10**12 + k)
