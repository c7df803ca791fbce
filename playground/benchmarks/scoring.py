"""Scoring one answer as each benchmark defines it (pure Python, no Django).

CRUXEval-O is decided by running code in the sandbox, never in this process: a model's answer is
first read with ``parse_literal`` (a literal or nothing) and written back as Python source, so an
answer can never be code. A P3 puzzle is scored by the puzzle method's own check (``sat(answer)``
in the sandbox, ``emulation/puzzle.py``): its run's verdict is the score. ``pass_at_k`` is the
unbiased estimator of Chen et al. (2021, arXiv 2107.03374).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from playground import sandbox
from playground.benchmarks import official
from playground.emulation.literals import (
    NotALiteral,
    literal_source,
    parse_literal,
    repeats_input,
)
from playground.emulation.tae import normalise
from playground.runs import sandboxing

# "no_model": Chain of Code ran the whole program in Python and never asked the model; such an
# item is not the model's success or failure and is counted apart (never as passed).
# The version of the site's own rules below (CRUXEval-O with LiveCodeBench's leakage rule, BBH
# by the task format's normalisation, P3 by sat): stored with each evaluation they score, so
# that a change of them can be re-scored (rescoring.py). CRUXEval-I and imports are scored by
# the benchmarks' own rules instead (official.RULES_VERSION).
RULES_VERSION = "site-1"
# "skipped": an input prediction CRUXEval's official scorer does not check (no call of f): left
# out of pass@k's n, as there (summary.py).
# "no_value": under a semantic rule the program raised (or did not finish): there is no value
# to predict, so the item is left out and counted apart, as "no_model" is.
Status = Literal["pass", "fail", "unparsable", "error", "no_model", "skipped", "no_value"]
NO_MODEL_REASON = (
    "Python ran every line of this program itself: the model was never asked, so this item is "
    "counted apart, not as the model's."
)
# (source, call) -> trace; ``BatchSandbox(Limits(keep_running=True)).run`` fits.
Runner = Callable[[str, str], dict[str, Any]]


@dataclass(frozen=True)
class Score:
    """The verdict on one answer. ``status`` is "error" only when the check itself could not be
    carried out (no sandbox, a broken trace): that is not the answer's fault and must not be
    counted as wrong. ``leakage``: the answer only restated an argument of the call."""

    passed: bool
    leakage: bool
    reason: str
    status: Status

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "leakage": self.leakage,
            "reason": self.reason,
            "status": self.status,
        }


def no_model() -> Score:
    """The score of a Chain of Code run that needed no model call."""
    return Score(passed=False, leakage=False, reason=NO_MODEL_REASON, status="no_model")


def no_value(trace: dict[str, Any], rule: str) -> Score:
    """The score of an item whose program, under ``rule``, returned no value to predict."""
    error = trace.get("error") or {}
    what = (
        f"raises {error.get('type')}: {_short(str(error.get('message', '')), 120)}"
        if trace.get("status") == "exception"
        else f"does not finish ({trace.get('status')})"
    )
    return Score(
        passed=False, leakage=False, status="no_value",
        reason=f"Under the rule {rule} the program {what}: there is no value to predict, so "
        "the item is counted apart, not as right or wrong.",
    )  # fmt: skip


def _passed(reason: str) -> Score:
    return Score(passed=True, leakage=False, reason=reason, status="pass")


def _not_passed(status: Status, reason: str, *, leakage: bool = False) -> Score:
    return Score(passed=False, leakage=leakage, reason=reason, status=status)


def _default_runner(source: str, call: str) -> dict[str, Any]:
    # The verdict needs the call to finish; a trace of its first steps is enough.
    return sandboxing.run(source, call=call, limits=sandbox.Limits(keep_running=True))


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run(runner: Runner | None, source: str, call: str) -> dict[str, Any] | Score:
    """The trace of the check, or an "error" Score when it could not be carried out."""
    try:
        trace = (runner or _default_runner)(source, call)
    except sandbox.SandboxUnavailable as exc:
        return _not_passed("error", f"The sandbox is unavailable: {exc}")
    error = trace.get("error") or {}
    if trace.get("status") == "crash" and error.get("type") == "TraceInvalid":
        return _not_passed("error", f"The sandbox failed: {error.get('message', '')}")
    return trace


def _why_not(trace: dict[str, Any], what: str) -> str:
    """Why a check that did not return True failed, for the reason of a Score."""
    status, error = trace.get("status"), trace.get("error") or {}
    if status == "ok":
        return f"{what} is {_short(str(trace.get('result')), 200)}, not True"
    if status == "exception" and error:
        return f"{what} raised {error.get('type')}: {_short(str(error.get('message')), 200)}"
    detail = f": {_short(str(error.get('message')), 200)}" if error.get("message") else ""
    return f"{what} did not finish ({status}{detail})"


def score_cruxeval_output(
    code: str, call: str, prediction: str | None, *, runner: Runner | None = None
) -> Score:
    """CRUXEval-O: passes when ``assert <call> == <prediction>`` holds in the sandbox (so
    ``1.0`` passes for ``1``, ``(1,)`` fails for ``[1]``). A prediction that only repeats an
    argument of the call is wrong (LiveCodeBench's rule) and flagged ``leakage``."""
    if prediction is None or not prediction.strip():
        return _not_passed("unparsable", "There is no prediction.")
    try:
        value = parse_literal(prediction)
    except NotALiteral as exc:
        return _not_passed("unparsable", f"The prediction is not a literal: {exc}.")
    # The newline ends a comment the call may carry, which would otherwise swallow the rest.
    check = f"({call}\n) == ({literal_source(value)})"
    trace = _run(runner, code, check)
    if isinstance(trace, Score):
        return trace
    holds = trace.get("status") == "ok" and trace.get("result") == "True"
    if repeats_input(prediction, call):
        also = "it happens to equal the output" if holds else "it is not the output either"
        return _not_passed(
            "fail",
            f"The prediction {_short(prediction.strip())} only repeats an argument of the call; "
            f"that counts as wrong (LiveCodeBench's rule), and {also}.",
            leakage=True,
        )
    if holds:
        return _passed(f"{_short(call)} == {_short(prediction.strip())} holds.")
    return _not_passed("fail", _why_not(trace, f"{_short(call)} == {_short(prediction.strip())}"))


def holds_cruxeval_output(
    code: str, call: str, prediction: str | None, *, runner: Runner | None = None
) -> bool | None:
    """Whether ``<call> == <prediction>`` holds in the sandbox, whatever the answer repeats;
    None when it cannot be told (no literal, the check could not be carried out)."""
    if prediction is None or not prediction.strip():
        return None
    try:
        value = parse_literal(prediction)
    except NotALiteral:
        return None
    trace = _run(runner, code, f"({call}\n) == ({literal_source(value)})")
    if isinstance(trace, Score):
        return None
    return trace.get("status") == "ok" and trace.get("result") == "True"


def _check_runner(source: str, call: str) -> dict[str, Any]:
    # CRUXEval's own check: the official 3 s, the verdict is whether it finishes cleanly.
    return sandboxing.run(source, call=call or None, limits=official.CHECK_LIMITS)


def score_cruxeval_input(
    code: str, output: str, generation: str | None, *, function: str = "f",
    runner: Runner | None = None,
) -> Score:  # fmt: skip
    """CRUXEval-I by the official rules (official.py): a generation without a call of the
    function (``f(`` in CRUXEval) is skipped, as the official scorer skips it; otherwise
    ``<code>\nassert <output> == <generation>`` must finish without an exception in the
    sandbox, within the official 3 s. ``output`` is the data set's (or the real run's) value."""
    if not generation or f"{function}(" not in generation:
        return _not_passed(
            "skipped",
            f"Skipped, as CRUXEval's official scorer skips it: the answer holds no call of "
            f"{function}.",
        )
    program = f"{code}\nassert {output} == {generation}"  # official.check_program's text
    trace = _run(runner or _check_runner, program, "")
    if isinstance(trace, Score):
        return trace
    shown = f"{_short(output)} == {_short(generation)}"
    if trace.get("status") == "ok":
        return _passed(f"{shown} holds.")
    return _not_passed("fail", f"{shown}: {official.why_not(trace)}.")


def score_cruxeval_input_under_rule(
    code: str, output: str, generation: str | None, *, rule: str, function: str = "f",
    runner: Runner | None = None,
) -> Score:  # fmt: skip
    """CRUXEval-I under a semantic rule, by the site's rules: skipped as the official scorer
    skips (no call of the function); otherwise ``(<output>) == (<generation>)`` must be True,
    evaluated as the call of the program run under ``rule`` in the sandbox (the official 3 s),
    so that the program's function is rewritten and the comparison and the model's call are
    not (an item's call never is). The official check appends an assert to the program, which
    the rule would rewrite too."""
    if not generation or f"{function}(" not in generation:
        return _not_passed(
            "skipped",
            f"Skipped, as CRUXEval's official scorer skips it: the answer holds no call of "
            f"{function}.",
        )
    trace = _run(runner or _rule_check_runner(rule), code, _input_check(output, generation))
    if isinstance(trace, Score):
        return trace
    shown = f"{_short(output)} == {_short(generation)}"
    if trace.get("status") == "ok" and trace.get("result") == "True":
        return _passed(f"{shown} holds under {rule}.")
    return _not_passed("fail", _why_not(trace, f"{shown} under {rule}"))


def holds_cruxeval_input(
    code: str, output: str, generation: str | None, *, runner: Runner | None = None
) -> bool | None:
    """Whether the model's call returns ``output`` under Python's own semantics (the check of
    ``score_cruxeval_input_under_rule`` with no rule); None when it cannot be told."""
    if not generation:
        return None
    trace = _run(runner or _check_runner, code, _input_check(output, generation))
    if isinstance(trace, Score):
        return None
    return trace.get("status") == "ok" and trace.get("result") == "True"


def _input_check(output: str, generation: str) -> str:
    # The newlines end a comment either may carry, which would otherwise swallow the rest.
    return f"({output}\n) == ({generation}\n)"


def _rule_check_runner(rule: str) -> Runner:
    return lambda source, call: sandboxing.run(
        source, call=call or None, limits=official.CHECK_LIMITS, rule=rule
    )


def score_bbh(answer: str | None, target: str) -> Score:
    """BIG-Bench Hard: exact match after the task format's normalisation (``tae.normalise``)."""
    if answer is None or not answer.strip():
        return _not_passed("unparsable", "There is no answer.")
    if normalise(answer) == normalise(target):
        return _passed(f"Answered {_short(answer.strip())}, as expected.")
    return _not_passed(
        "fail",
        f"Answered {_short(answer.strip())}, but the answer is {_short(target.strip())}.",
    )


def score_probes(verdict: dict[str, Any] | None) -> Score:
    """A probe run (``emulation/probes.py``): it passes when every probe was answered right, as
    its verdict (graded against the real trace) says; no probe made is not the model's fault."""
    verdict = verdict or {}
    statuses: dict[str, Status] = {
        "correct": "pass", "wrong": "fail", "unparsable": "unparsable", "unknown": "error",
    }  # fmt: skip
    status = statuses.get(str(verdict.get("status", "")), "error")
    return Score(status == "pass", False, str(verdict.get("explanation", "")), status)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` passed: ``1 - C(n-c, k) / C(n, k)``,
    in the numerically stable product form of Chen et al. (2021)."""
    for name, v in (("n", n), ("c", c), ("k", k)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{name} must be an int, not {type(v).__name__}")
    if n < 1 or k < 1:
        raise ValueError(f"n and k must be at least 1 (n={n}, k={k})")
    if not 0 <= c <= n:
        raise ValueError(f"c must be between 0 and n={n} (c={c})")
    if k > n:
        raise ValueError(f"k={k} is larger than the number of samples n={n}")
    if n - c < k:
        return 1.0  # every k-subset holds a passing sample
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
