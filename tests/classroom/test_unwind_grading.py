"""Classroom grading reads exceptions as the viewer shows them: an exception leaving a function
(an ``unwind`` step) ends that function's frame, exactly as a return does, so a checkpoint after
a caught exception reads the caller's variables, and spot-the-divergence names the exception."""

from __future__ import annotations

from typing import Any

from playground import sandbox
from playground.classroom import grading

SOURCE = (
    "def parse(s):\n"
    "    v = int(s)\n"
    "    return v\n"
    "\n"
    "def total(items):\n"
    "    n = 0\n"
    "    for s in items:\n"
    "        try:\n"
    "            n += parse(s)\n"
    "        except ValueError:\n"
    "            n -= 1\n"
    "    return n\n"
)
CALL = "total(['1', 'x', '3'])"


def _real() -> dict[str, Any]:
    trace = sandbox.run(SOURCE, call=CALL)
    assert trace["status"] == "ok"
    assert trace["result"] == "3"
    assert any(s.get("event") == "unwind" for s in trace["steps"])
    return trace


def test_a_checkpoint_after_a_caught_exception_reads_the_callers_frame() -> None:
    steps = _real()["steps"]
    # Line 11 (n -= 1) runs once, right after parse('x') raised: n is 1 and s is 'x' in total.
    [found] = grading.checkpoint_values(
        steps, [{"line": 11, "occurrence": 1, "variables": ["n", "s"]}]
    )
    assert found["values"] == {"n": "1", "s": "'x'"}
    assert "v" not in found["names"]  # parse's variable is gone with its frame
    # And the return line after the loop sees the final n, not parse's leftovers.
    [after] = grading.checkpoint_values(steps, [{"line": 12, "occurrence": 1, "variables": ["n"]}])
    assert after["values"] == {"n": "3"}


def _model_from_real(steps: list[dict[str, Any]], upto: int) -> dict[str, Any]:
    """The model's trace: Python's own steps from the call, up to ``upto`` (1-based, included)."""
    shown = grading._from_call([s for s in steps if isinstance(s, dict)])[:upto]
    out = [{**s, "i": i, "by": "lm"} for i, s in enumerate(shown)]
    return {"schema": 2, "status": "ok", "steps": out, "result": None, "stdout": ""}


def test_saying_return_where_the_exception_leaves_is_the_mistake_and_says_so() -> None:
    steps = _real()["steps"]
    from_call = grading._from_call([s for s in steps if isinstance(s, dict)])
    unwind = next(k for k, s in enumerate(from_call, start=1) if s.get("event") == "unwind")
    model = _model_from_real(steps, unwind)
    # The model says parse returned where Python's ValueError leaves it.
    wrong = dict(model["steps"][-1])
    wrong.update(event="return", locals={"__return__": "None"})
    wrong.pop("exception", None)
    model["steps"][-1] = wrong
    key = grading.first_mistake(steps, model, from_call=True)
    assert key.step == unwind
    assert key.reason == (
        "Python is at ValueError: invalid literal for int() with base 10: 'x' leaving parse() "
        "at line 2; the model says a return at line 2."
    )


def test_a_model_that_follows_the_exception_through_makes_no_mistake() -> None:
    steps = _real()["steps"]
    whole = len(grading._from_call([s for s in steps if isinstance(s, dict)]))
    key = grading.first_mistake(steps, _model_from_real(steps, whole), from_call=True)
    assert (key.step, key.early, key.answer) == (None, False, "none")
