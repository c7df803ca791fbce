"""The benchmarks' own scoring rules (benchmarks/official.py), on hand-built tricky cases, with
the checks run for real in the sandbox: CRUXEval's skip rules and all-false items, generations
that are expressions and not literals, the 3-second limit, hostile generations that never reach
the host and cannot reach the next check; BIG-Bench Hard's answer extraction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground import sandbox
from playground.benchmarks.official import (
    CHECK_LIMITS,
    bbh_answer,
    check_program,
    pass_at_k,
    score_bbh,
    score_cruxeval_item,
)
from playground.sandbox.batch import BatchSandbox

DOUBLE = "def f(x):\n    return x * 2"  # CRUXEval's code has no final newline


@pytest.fixture
def checks() -> Iterator[BatchSandbox]:
    """One batch sandbox, as an import scores with: each check forked fresh inside it."""
    batch = BatchSandbox(CHECK_LIMITS)
    try:
        yield batch
    finally:
        batch.close()


def test_the_check_is_the_official_program_text() -> None:
    assert check_program(DOUBLE, "'ab'", "'abab'", "'abab'", "output") == (
        "def f(x):\n    return x * 2\nassert 'abab' == 'abab'"
    )
    assert check_program(DOUBLE, "'ab'", "'abab'", "f('ab')", "output") is None  # the call
    assert check_program(DOUBLE, "'ab'", "'abab'", "f( 'ab')", "output") is not None  # not it
    assert check_program(DOUBLE, "'ab'", "'abab'", "'ab'", "input") is None  # no call of f
    assert check_program(DOUBLE, "'ab'", "'abab'", "f('ab')", "input") is not None


def test_output_prediction_takes_expressions_and_skips_the_call(checks: BatchSandbox) -> None:
    generations = [
        "'abab'",  # the literal
        "'ab' * 2",  # not a literal: the official check evaluates it
        "f('ab')",  # the call itself: skipped
        "'abab', 1",  # assert 'abab' == 'abab', 1: an assert with a message, which holds
        "'ab'",  # wrong
        "[1,",  # not even Python: the check fails (SyntaxError), not the scorer
    ]
    score = score_cruxeval_item(DOUBLE, "'ab'", "'abab'", generations, "output", checks.run)
    assert score.outcomes == ("pass", "pass", "skipped", "pass", "fail", "fail")
    assert "contains the call f('ab')" in score.reasons[2]
    assert score.reasons[4] == "the assertion fails"
    assert score.reasons[5].startswith("SyntaxError")
    # Skipped generations are left out of n: 5 checked, 3 passed.
    assert (score.n, score.c) == (5, 3)
    assert score.pass_at(1) == pytest.approx(3 / 5)


def test_input_prediction_runs_the_call_and_skips_what_is_not_one(checks: BatchSandbox) -> None:
    code = "def f(x):\n    return x + 1"
    generations = ["f(2)", "2", "f(1)", "f(1) + 1", "f(x=2)"]
    score = score_cruxeval_item(code, "2", "3", generations, "input", checks.run)
    assert score.outcomes == ("pass", "skipped", "fail", "pass", "pass")
    assert (score.n, score.c) == (4, 3)


def test_an_item_with_no_passing_generation_counts_all_of_them_as_false(
    checks: BatchSandbox,
) -> None:
    only_skipped = score_cruxeval_item(
        DOUBLE, "'ab'", "'abab'", ["f('ab')", "x = f('ab')"], "output", checks.run
    )
    assert only_skipped.outcomes == ("skipped", "skipped")
    assert (only_skipped.n, only_skipped.c) == (2, 0)
    assert only_skipped.pass_at(1) == 0.0
    skipped_and_wrong = score_cruxeval_item(
        DOUBLE, "'ab'", "'abab'", ["f('ab')", "'ba'", "'x'"], "output", checks.run
    )
    assert (skipped_and_wrong.n, skipped_and_wrong.c) == (3, 0)  # n: every generation


def test_pass_at_k_is_the_official_estimator_edge_cases_included() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - (7 * 6 * 5 * 4 * 3) / (10 * 9 * 8 * 7 * 6))
    assert pass_at_k(4, 1, 5) == 1.0  # k past n (skips left 4 checked): 1.0, as numpy's form
    assert pass_at_k(5, 5, 5) == 1.0


def test_a_check_that_never_ends_fails_after_three_seconds(checks: BatchSandbox) -> None:
    t0 = time.monotonic()
    score = score_cruxeval_item(
        DOUBLE,
        "'ab'",
        "'abab'",
        ["any(x for x in iter(int, 1) if x)", "'abab'"],
        "output",
        checks.run,
    )
    elapsed = time.monotonic() - t0
    assert score.outcomes == ("fail", "pass")
    assert score.reasons[0] == "did not finish in 3 s"
    assert 2.5 < elapsed < 10, elapsed


def test_hostile_generations_stay_in_the_sandbox_and_out_of_the_next_check(
    checks: BatchSandbox,
) -> None:
    marker = Path("/tmp/crux-official-pwned")  # the host path a generation tries
    marker.unlink(missing_ok=True)
    code = "def f(x):\n    return abs(x)"
    tamper = (
        "[__import__('builtins').__setattr__('abs', lambda x: 42),"
        " open('/tmp/crux-official-pwned', 'w').write('x'), 3][2]"
    )
    after = [
        "abs(-3)",  # the builtins the first check replaced are intact here
        "3 if not __import__('os').path.exists('/tmp/crux-official-pwned') else 4",  # its /tmp too
        "f(-3)",  # and f is the item's own
    ]
    score = score_cruxeval_item(code, "-3", "3", [tamper, *after], "output", checks.run)
    assert score.outcomes == ("pass", "pass", "pass", "skipped")  # f(-3) is the call itself
    assert not marker.exists()  # the file was written inside the sandbox only
    # Input prediction: the call first, then the tampering; the next check's f is intact.
    call_then_tamper = "[f(-3), __import__('builtins').__setattr__('abs', lambda x: 42)][0]"
    inputs = score_cruxeval_item(code, "-3", "3", [call_then_tamper, "f(3)"], "input", checks.run)
    assert inputs.outcomes == ("pass", "pass")
    assert not marker.exists()


def test_a_single_sandbox_run_scores_the_same_as_the_batch(checks: BatchSandbox) -> None:
    def one(source: str, call: str | None) -> dict[str, object]:
        return sandbox.run(source, call=call, limits=CHECK_LIMITS)

    generations = ["'abab'", "'ab' * 2", "f('ab')", "'ab'"]
    batch = score_cruxeval_item(DOUBLE, "'ab'", "'abab'", generations, "output", checks.run)
    alone = score_cruxeval_item(DOUBLE, "'ab'", "'abab'", generations, "output", one)
    assert batch == alone


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Let's think step by step.\n... So the answer is (A).", "(A)"),
        ("So the answer is Yes.\nQ: next question... So the answer is No.", "Yes"),  # the first
        ("... So the answer is 12", "12"),
        ("... So the answer is ] ) ).  \nmore", "] ) )"),  # stripped, one final '.' dropped
        ("... So the answer is 3.5.", "3.5"),
        ("... so the answer is (B).", None),  # the phrase is case-sensitive: no answer
        ("The answer is (B).", None),
    ],
)
def test_the_bbh_chain_of_thought_answer(text: str, answer: str | None) -> None:
    assert bbh_answer(text, "after-reasoning") == answer


def test_bbh_scores_by_exact_match_of_the_extracted_answer() -> None:
    assert bbh_answer("  (C)\n", "alone") == "(C)"
    assert score_bbh(" (C) ", "(C)", "alone")[0]
    assert not score_bbh("(c)", "(C)", "alone")[0]  # exact: no case folding
    assert score_bbh("... So the answer is valid.", "valid", "after-reasoning") == (
        True,
        "answered valid, as expected",
    )
    passed, why = score_bbh("I think it is valid.", "valid", "after-reasoning")
    assert not passed
    assert why.startswith("no answer")
