"""``check_sat``, the one judge of a P3 answer (the puzzle method, the classroom's puzzle items,
P3 evaluations through the method's verdict): solved only when ``sat(answer)`` returns exactly
``True``; a wrong type, another result, an exception or an unfinished run is not solved."""

from __future__ import annotations

from typing import Any

import pytest

from playground import sandbox
from playground.emulation.puzzle import PRELUDE, check_sat

SAT = "def sat(li: List[int]):\n    return sum(li) == 10\n"


def _returning(trace: dict[str, Any]) -> Any:
    """A runner that records what it was asked and answers with ``trace``."""
    asked: list[tuple[str, str]] = []

    def run(source: str, call: str) -> dict[str, Any]:
        asked.append((source, call))
        return trace

    run.asked = asked  # type: ignore[attr-defined]
    return run


def test_true_is_solved_and_the_answer_is_written_back_as_a_literal() -> None:
    run = _returning({"status": "ok", "result": "True"})
    check = check_sat(SAT, [7, 3], ans_type="List[int]", run=run)
    assert check.solved
    assert check.why == "sat(answer) returns True."
    assert check.call == "sat([7, 3])"
    assert run.asked == [(PRELUDE + SAT, "sat([7, 3])")]


def test_an_answer_of_the_wrong_type_is_not_run() -> None:
    run = _returning({"status": "ok", "result": "True"})
    check = check_sat(SAT, "ten", ans_type="List[int]", run=run)
    assert not check.solved
    assert check.why == "The answer has the wrong type: expected List, got str."
    assert (check.call, check.trace, run.asked) == ("", None, [])


@pytest.mark.parametrize(
    ("trace", "why"),
    [
        ({"status": "ok", "result": "False"}, "sat(answer) returned False, not True."),
        ({"status": "ok", "result": "1"}, "sat(answer) returned 1, not True."),
        ({"status": "ok", "result": "None"}, "sat(answer) returned None, not True."),
        ({"status": "ok", "result": "'True'"}, "sat(answer) returned 'True', not True."),
        (
            {"status": "exception", "error": {"type": "TypeError", "message": "bad"}},
            "sat(answer) raised TypeError: bad",
        ),
        ({"status": "time_limit", "error": None}, "sat(answer) did not finish (time_limit)."),
        ({"status": "memory_limit"}, "sat(answer) did not finish (memory_limit)."),
    ],
)
def test_anything_but_true_is_not_solved(trace: dict[str, Any], why: str) -> None:
    check = check_sat(SAT, [1, 2], ans_type="List[int]", run=_returning(trace))
    assert not check.solved
    assert check.why == why
    assert check.trace == trace


def test_in_the_sandbox_a_truthy_result_is_not_true() -> None:
    def run(source: str, call: str) -> dict[str, Any]:
        return sandbox.run(source, call=call)

    truthy = "def sat(n: int):\n    return n + 1\n"
    assert not check_sat(truthy, 1, ans_type="int", run=run).solved
    assert check_sat("def sat(n: int):\n    return n == 2\n", 2, ans_type="int", run=run).solved
