"""direct/cot output prediction: the prompt, reading the answer, and judging it by value."""

from __future__ import annotations

import pytest

from playground.emulation.output_prediction import Prediction, extract, judge, messages

SOURCE = "def f(nums):\n    return [n * 2 for n in nums]\n"
CALL = "f([1, 2])"


@pytest.mark.parametrize("method", ["direct", "cot"])
def test_prompt_shows_the_program_and_the_blank_assertion(method: str) -> None:
    (message,) = messages(method, SOURCE, CALL)
    assert message["role"] == "user"
    question = f"[PYTHON]\n{SOURCE}assert f([1, 2]) == ??\n[/PYTHON]"
    assert question in message["content"]
    assert ("step by step" in message["content"]) == (method == "cot")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[ANSWER]\nassert f([1, 2]) == [2, 4]\n[/ANSWER]", "[2, 4]"),
        ("assert f([1, 2]) == [2, 4]", "[2, 4]"),
        (
            "[THOUGHT]\nassert f([1, 2]) == [9]\n[/THOUGHT]\n"
            "[ANSWER]\nassert f([1, 2]) == [2, 4]\n[/ANSWER]",
            "[2, 4]",
        ),
        (
            "[ANSWER]\nassert f([1, 2]) == [1]\n[/ANSWER]\n"
            "[ANSWER]\nassert f([1, 2]) == (2, 4)\n[/ANSWER]",
            "(2, 4)",
        ),
        ("[ANSWER]\nassert f([1, 2]) == 'a == b'\n", "'a == b'"),  # cut off before the closing tag
        ("[ANSWER]\n[2, 4]\n[/ANSWER]", "[2, 4]"),
    ],
)
def test_the_prediction_is_read_from_the_answer(text: str, expected: str) -> None:
    assert extract(text, CALL) == Prediction(expected)


def test_an_answer_without_an_assertion_is_unparsable() -> None:
    prediction = extract("The output is two and four.", CALL)
    assert prediction.text is None
    verdict = judge(prediction, "[2, 4]", CALL)
    assert verdict.status == "unparsable"
    assert "no `assert f(...) == value`" in verdict.explanation


@pytest.mark.parametrize(
    ("predicted", "real", "status"),
    [
        ("[2, 4]", "[2, 4]", "correct"),
        ("1.0", "1", "correct"),  # equal under Python semantics
        ("True", "1", "correct"),
        ("(2, 4)", "[2, 4]", "wrong"),
        ("'2'", "2", "wrong"),
        ("f([1, 2])", "[2, 4]", "unparsable"),  # a call is never evaluated
        ("__import__('os').system('id')", "0", "unparsable"),
        ("[2, 4]", "<Foo object>", "unknown"),
    ],
)
def test_judging_compares_values_and_never_runs_model_text(
    predicted: str, real: str, status: str
) -> None:
    assert judge(Prediction(predicted), real, CALL).status == status


def test_a_prediction_that_repeats_the_input_is_flagged() -> None:
    verdict = judge(Prediction("[1, 2]"), "[2, 4]", CALL)
    assert verdict.leakage
    assert verdict.status == "wrong"
    assert not judge(Prediction("[2, 4]"), "[2, 4]", CALL).leakage
    assert judge(Prediction("'abc'"), "'abc'", "f('abc', 3)").leakage
