"""The ``puzzle`` method: answers are literals checked by sat() in the sandbox, never code."""

from __future__ import annotations

import os
from pathlib import Path

from playground.emulation import puzzle as method
from playground.emulation.base import Item, Session
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import Oracle, oracle_server

SAT = "def sat(li: List[int], n=3):\n    return len(li) == n and sum(li) == 10 and li[0] > li[1]"
ITEM = Item(kind="puzzle", source=SAT, ans_type="List[int]", description="Three numbers.")


def _answering(*answers: str):  # a server that gives these answers in turn
    parts = iter(answers)

    def script(handler) -> None:  # type: ignore[no-untyped-def]
        text = f"[ANSWER]\n{next(parts)}\n[/ANSWER]"
        streaming([chunk(text, finish="stop"), b"data: [DONE]\n\n"])(handler)

    return script


def test_a_correct_literal_passes_in_the_sandbox() -> None:
    with oracle_server(Oracle(solutions={SAT: "[7, 2, 1]"})) as model:
        emulation = method.emulate(ITEM, Session(model))
    assert emulation.verdict == {
        "status": "correct",
        "explanation": "sat(answer) returns True (attempt 1).",
    }
    assert emulation.real_trace is not None
    assert emulation.real_trace["result"] == "True"
    assert emulation.details["call"] == "sat([7, 2, 1])"


def test_a_wrong_answer_fails_with_the_reason_and_the_next_attempt_is_told() -> None:
    with fake_server(_answering("[1, 2, 7]", "[1, 2]", "'ten'")) as (model, seen):
        session = Session(model)
        emulation = method.emulate(ITEM, session)
    attempts = emulation.details["attempts"]
    assert [a["passed"] for a in attempts] == [False, False, False]
    assert attempts[0]["why"] == "sat(answer) returned False, not True."
    assert "wrong type" in attempts[2]["why"]
    assert emulation.verdict is not None
    assert emulation.verdict["status"] == "wrong"
    assert seen["requests"] == 3
    assert "Attempt 2" in session.transcript


def test_code_in_the_answer_is_rejected_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code = f"__import__('os').system('touch {marker}')"
    with fake_server(_answering(code, "[x for x in range(3)]", "(lambda: [7, 2, 1])()")) as (
        model,
        _,
    ):
        emulation = method.emulate(ITEM, Session(model))
    for attempt in emulation.details["attempts"]:
        assert "must be a literal" in attempt["why"]
        assert "call" not in attempt  # nothing went to the sandbox either
    assert not marker.exists()
    assert not os.path.exists(str(marker))


def test_an_answer_that_makes_sat_raise_is_reported() -> None:
    with fake_server(_answering("[5]", "[5]", "[5]")) as (model, _):
        emulation = method.emulate(ITEM, Session(model))
    assert emulation.details["attempts"][0]["why"].startswith("sat(answer) returned False")
    with fake_server(_answering("[]", "[]", "[]")) as (model, _):
        emulation = method.emulate(
            Item(
                kind="puzzle", source="def sat(li: list):\n    return li[0] == 1", ans_type="list"
            ),
            Session(model),
        )
    assert "IndexError" in emulation.details["attempts"][0]["why"]


def test_answer_types_are_checked_one_level_deep() -> None:
    assert method.type_problem([1, 2], "List[int]") is None
    assert method.type_problem([1, "2"], "List[int]") == "an element: expected int, got str"
    assert method.type_problem(True, "int") == "expected int, got a bool"
    assert method.type_problem(3, "float") is None
    assert method.type_problem([[1]], "List[List[int]]") is None


def test_an_answer_whose_repr_is_not_a_literal_still_reaches_sat_intact() -> None:
    # float('inf') reprs as `inf`, which is not a literal: the call must say 1e999.
    item = Item(kind="puzzle", source="def sat(x: float):\n    return x > 1e308", ans_type="float")
    with fake_server(_answering("1e999", "1e999", "1e999")) as (model, _):
        emulation = method.emulate(item, Session(model))
    assert emulation.verdict is not None
    assert emulation.verdict["status"] == "correct", emulation.details
    assert emulation.details["call"] == "sat(1e999)"
