"""Scoring as the benchmarks define it: a fixed table of hand-written answers gets exactly the
expected verdict, checked by the real sandbox; answers that are code never run anywhere."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playground.benchmarks.scoring import (
    literal_source,
    pass_at_k,
    score_bbh,
    score_cruxeval_output,
)
from playground.emulation.literals import parse_literal
from playground.sandbox import BatchSandbox, Limits, SandboxUnavailable


@pytest.fixture(scope="module")
def batch() -> Iterator[BatchSandbox]:
    # Short limits so the infinite loop costs one second; keep_running as an evaluation uses.
    sandbox = BatchSandbox(Limits(cpu_s=1, wall_s=2.0, keep_running=True))
    yield sandbox
    sandbox.close()


class Recording:
    """A runner that records every call it is asked to run, then runs it in the batch."""

    def __init__(self, batch: BatchSandbox) -> None:
        self.batch = batch
        self.calls: list[tuple[str, str]] = []

    def __call__(self, source: str, call: str) -> dict[str, Any]:
        self.calls.append((source, call))
        return self.batch.run(source, call)


PLUS_ONE = "def f(n):\n    return n + 1\n"
WRAP = "def f(x):\n    return [x]\n"
PAIR = "def f(a, b):\n    return [a, b]\n"
SET = "def f(n):\n    return {n, n + 1}\n"
QUOTES = "def f(s):\n    return s + \"'\" + '\"' + '\\n'\n"  # returns s + '\'"\n'
IDENTITY = "def f(x):\n    return x\n"
SORT = "def f(x):\n    return sorted(x)\n"
DIVIDE = "def f(x):\n    return 1 // x\n"
LOOP = "def f(x):\n    while True:\n        x += 1\n    return x\n"
BIG = "def f(n):\n    return 16 ** n - 1\n"
INF = "def f():\n    return float('inf')\n"

CRUXEVAL = [
    # (program, call, prediction, status)
    (PLUS_ONE, "f(0)", "1", "pass"),
    (PLUS_ONE, "f(0)", "2", "fail"),
    (PLUS_ONE, "f(0)", "1.0", "pass"),
    (PLUS_ONE, "f(0)", "True", "pass"),  # True == 1 in Python, so the assert holds
    (PLUS_ONE, "f(0)", "'1'", "fail"),
    (PLUS_ONE, "f(0)  # a comment", "1", "pass"),
    (WRAP, "f(1)", "[1]", "pass"),
    (WRAP, "f(1)", "(1,)", "fail"),
    (PAIR, "f(1, 2)", "[1,2]", "pass"),
    (PAIR, "f(1, 2)", "[ 1 , 2 ]", "pass"),
    (PAIR, "f(1, 2)", "[1,\n 2,\n]", "pass"),
    (PAIR, "f(1, 2)", "[2, 1]", "fail"),
    (SET, "f(1)", "{2, 1}", "pass"),
    (SET, "f(1)", "{1, 2, 3}", "fail"),
    (QUOTES, "f('a')", r"""'a\'"\n'""", "pass"),
    (QUOTES, "f('a')", r'''"a'\"\n"''', "pass"),
    (QUOTES, "f('a')", r"""'a\'"\\n'""", "fail"),  # a backslash and an n, not a newline
    pytest.param(BIG, "f(5000)", "0x" + "f" * 5000, "pass", id="past-the-int-digit-limit"),
    pytest.param(BIG, "f(5000)", "0x" + "e" * 5000, "fail", id="past-the-int-digit-limit-wrong"),
    (INF, "f()", "1e999", "pass"),  # repr would write inf, which is not a literal
    (INF, "f()", "-1e999", "fail"),
]


@pytest.mark.parametrize(("code", "call", "prediction", "status"), CRUXEVAL)
def test_cruxeval_predictions_get_exactly_the_expected_verdict(
    batch: BatchSandbox, code: str, call: str, prediction: str, status: str
) -> None:
    score = score_cruxeval_output(code, call, prediction, runner=batch.run)
    assert (score.status, score.passed, score.leakage) == (status, status == "pass", False), score


def test_the_default_runner_is_the_sandbox() -> None:
    assert score_cruxeval_output(PLUS_ONE, "f(0)", "1").passed
    assert not score_cruxeval_output(PLUS_ONE, "f(0)", "(1,)").passed


@pytest.mark.parametrize(
    "prediction",
    [
        "__import__('os').system('touch {marker}')",
        "open('{marker}', 'w')",
        "f(1)",
        "[x for x in range(3)]",
        "1 + 1",
        "().__class__",
        "lambda: 1",
        "[1] * 3",
        pytest.param("[" + "1, " * 10_000 + "]", id="over-the-20000-character-cap"),
        "assert f(0) == 1",
        "",
        "   ",
        None,
    ],
)
def test_a_prediction_that_is_not_a_literal_is_unparsable_and_never_runs(
    batch: BatchSandbox, tmp_path: Path, prediction: str | None
) -> None:
    marker = tmp_path / "marker"
    runner = Recording(batch)
    text = None if prediction is None else prediction.replace("{marker}", str(marker))
    score = score_cruxeval_output(PLUS_ONE, "f(0)", text, runner=runner)
    assert (score.status, score.passed) == ("unparsable", False)
    assert runner.calls == []
    assert not marker.exists()


def test_the_prediction_reaches_the_sandbox_only_as_a_literal(batch: BatchSandbox) -> None:
    runner = Recording(batch)
    score_cruxeval_output(PAIR, "f(1, 2)", "[ 1 ,\n 2 ]", runner=runner)
    assert runner.calls == [(PAIR, "(f(1, 2)\n) == ([1, 2])")]


def test_a_prediction_that_repeats_the_input_is_leakage_and_wrong_even_when_right(
    batch: BatchSandbox,
) -> None:
    equal = score_cruxeval_output(IDENTITY, "f([3, 1])", "[3, 1]", runner=batch.run)
    assert (equal.passed, equal.leakage, equal.status) == (False, True, "fail")
    assert "only repeats an argument" in equal.reason
    assert "happens to equal the output" in equal.reason
    spaced = score_cruxeval_output(IDENTITY, "f([3, 1])", "[3,1]", runner=batch.run)
    assert (spaced.passed, spaced.leakage) == (False, True)
    keyword = score_cruxeval_output(IDENTITY, "f(x='ab')", '"ab"', runner=batch.run)
    assert (keyword.passed, keyword.leakage) == (False, True)
    different = score_cruxeval_output(SORT, "f([3, 1])", "[3, 1]", runner=batch.run)
    assert (different.passed, different.leakage) == (False, True)
    assert "not the output either" in different.reason
    right = score_cruxeval_output(SORT, "f([3, 1])", "[1, 3]", runner=batch.run)
    assert (right.passed, right.leakage) == (True, False)


def test_a_call_that_raises_fails_with_the_exception_in_the_reason(batch: BatchSandbox) -> None:
    score = score_cruxeval_output(DIVIDE, "f(0)", "1", runner=batch.run)
    assert (score.status, score.passed) == ("fail", False)
    assert "ZeroDivisionError" in score.reason


def test_a_call_that_never_ends_fails_on_the_time_limit(batch: BatchSandbox) -> None:
    score = score_cruxeval_output(LOOP, "f(0)", "1", runner=batch.run)
    assert (score.status, score.passed) == ("fail", False)
    assert "time_limit" in score.reason


def test_a_sandbox_that_cannot_run_is_an_error_not_a_wrong_answer() -> None:
    def unavailable(source: str, call: str) -> dict[str, Any]:
        raise SandboxUnavailable("bubblewrap is not installed")

    def nonsense(source: str, call: str) -> dict[str, Any]:
        error = {"type": "TraceInvalid", "message": "nonsense", "line": None}
        return {"status": "crash", "error": error, "result": None}

    for runner in (unavailable, nonsense):
        score = score_cruxeval_output(PLUS_ONE, "f(0)", "1", runner=runner)
        assert (score.status, score.passed) == ("error", False)


@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        pytest.param(16**5000, id="huge-int"),
        pytest.param(-(16**5000), id="huge-negative-int"),
        1.5,
        math.inf,
        -math.inf,
        complex(math.inf, 1),
        complex(0, -math.inf),
        1 + 2j,
        'it\'s "quoted"\n\x00',
        b"\xff'",
        None,
        True,
        (),
        (1,),
        (1, (2,), [3, {4: (5,)}]),
        [],
        set(),
        {1, -math.inf},
        {},
        {"a": [1.0, None], (1, 2): {b"x"}},
        ...,
    ],
)
def test_a_literal_is_written_back_as_source_that_reads_back_to_it(value: object) -> None:
    source = literal_source(value)
    if isinstance(value, complex) and not math.isfinite(abs(value)):
        assert eval(source, {"__builtins__": {"complex": complex}}) == value  # noqa: S307
    else:
        assert parse_literal(source) == value
        assert type(parse_literal(source)) is type(value)


BBH = [
    # (answer, target, passed)
    ("(A)", "(A)", True),
    ("A", "(A)", True),
    ("(A", "(A)", True),
    ("(B)", "(A)", False),
    ("true", "True", True),
    ("  No ", "no", True),
    ("valid.", "valid", True),
    ("'invalid'", "invalid", True),
    ("False", "True", False),
    ("[ ( ) ]", "] ) (", False),
    ("24", "24.0", False),  # exact match: BBH's numbers are compared as text
]


@pytest.mark.parametrize(("answer", "target", "passed"), BBH)
def test_bbh_answers_match_exactly_after_normalisation(
    answer: str, target: str, passed: bool
) -> None:
    score = score_bbh(answer, target)
    assert (score.passed, score.status) == (passed, "pass" if passed else "fail")
    assert not score.leakage


@pytest.mark.parametrize("answer", [None, "", "  "])
def test_a_missing_bbh_answer_is_unparsable(answer: str | None) -> None:
    assert score_bbh(answer, "(A)").status == "unparsable"


def _pass_at_k_by_enumeration(n: int, c: int, k: int) -> float:
    """The share of all k-subsets of the n samples (c of them passing) with a passing sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return sum(any(subset) for subset in subsets) / len(subsets)


def test_pass_at_k_matches_enumerating_every_subset() -> None:
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                expected = _pass_at_k_by_enumeration(n, c, k)
                assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12), (n, c, k)


def test_pass_at_k_edge_cases() -> None:
    assert pass_at_k(1, 1, 1) == 1.0
    assert pass_at_k(1, 0, 1) == 0.0
    assert pass_at_k(200, 0, 100) == 0.0
    assert pass_at_k(200, 200, 1) == 1.0
    assert pass_at_k(10, 3, 8) == 1.0  # n - c < k: every 8-subset holds a passing sample
    assert pass_at_k(200, 37, 1) == pytest.approx(37 / 200)
    # Far past what comb(n, k) as a float could hold.
    assert pass_at_k(2000, 1, 1000) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(5, 2, 6), (5, 2, 0), (5, -1, 1), (5, 6, 1), (0, 0, 1), (-1, 0, 1), (5, 2.0, 1), (5, True, 1)],
)
def test_pass_at_k_rejects_bad_inputs(n: Any, c: Any, k: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        pass_at_k(n, c, k)
