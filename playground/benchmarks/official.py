"""The benchmarks' own scoring rules, exactly as their authors score published outputs (issue 16).

Pure Python, no Django: the checks that run code go through a ``Runner`` (the sandbox), never
this process, since a generation may be any Python expression.

**CRUXEval** (both tasks), as the official scorer does (facebookresearch/cruxeval,
``evaluation/utils_general.py:evaluate_score`` and ``evaluate_generations.py``):

- output prediction: a generation that contains ``f(<input>)`` (the call itself) is skipped;
  input prediction: a generation without ``f(`` is skipped;
- otherwise the program ``<code>\\nassert <output> == <generation>`` runs (``check_program``,
  the text byte for byte: ``assert o == 1, 2`` is an assert with a message, as there) with a
  3-second limit, and the generation passes when it finishes without an exception;
- skipped generations are left out of n; an item none of whose checked generations passed
  counts as all-false over every generation (n = all of them, c = 0);
- pass@k is the official estimator (``pass_at_k``): ``1`` when ``n - c < k``, else
  ``1 - prod(1 - k / i for i in n-c+1..n)``.

The repository also holds an earlier form that counted a skipped generation as a failure in n;
the figures here follow the form described above. The stricter LiveCodeBench rule (an output
prediction that repeats an argument of the call is wrong) is not part of this score: the site's
own evaluations report it (``scoring.py``), and a summary may report it beside, never mixed in.

**BIG-Bench Hard**, as the published Codex outputs were scored (suzgunmirac/BIG-Bench-Hard): for a
chain-of-thought output, the text after the first ``"So the answer is "`` up to the end of that
line, stripped, without a final ``"."``; for an answer-only output, the stripped text; then exact
match with the target. A chain-of-thought output without that phrase has no answer (wrong).

``RULES_VERSION`` names these rules; a score stores it, so that a rule change can re-score.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from playground.sandbox.limits import Limits

RULES_VERSION = "official-1"
CHECK_SECONDS = 3  # the official check_correctness(check_program, 3)
# A check's limits in the sandbox: the official 3 s, no trace kept past the first step (the
# verdict is whether it finishes without an exception), and room for what it prints (the
# official scorer swallows it). The sandbox's memory cap (256 MB) stays: the official scorer has
# none, a difference no CRUXEval item comes near.
CHECK_LIMITS = Limits(
    cpu_s=CHECK_SECONDS,
    wall_s=float(CHECK_SECONDS),
    max_steps=1,
    keep_running=True,
    max_stdout=1_000_000,
)
ANSWER_PHRASE = "So the answer is "

Task = Literal["output", "input"]
# How a BIG-Bench Hard output gives its answer (a method's ``task_answer`` in the registry).
AnswerStyle = Literal["after-reasoning", "alone"]
Outcome = Literal["pass", "fail", "skipped"]
# (source, call) -> trace, e.g. ``BatchSandbox(CHECK_LIMITS).run`` (each check a fresh process
# forked inside the sandbox) or ``sandbox.run`` with ``CHECK_LIMITS``.
Runner = Callable[[str, str | None], dict[str, Any]]


def check_program(code: str, input_: str, output: str, generation: str, task: Task) -> str | None:
    """The program the official scorer runs for one generation, or None when it skips it."""
    if task == "input" and "f(" not in generation:
        return None
    if task == "output" and f"f({input_})" in generation:
        return None
    return f"{code}\nassert {output} == {generation}"


@dataclass(frozen=True)
class ItemScore:
    """One item's generations: each one's outcome (and why), and the official n and c."""

    outcomes: tuple[Outcome, ...]
    reasons: tuple[str, ...]
    n: int
    c: int

    def pass_at(self, k: int) -> float:
        return pass_at_k(self.n, self.c, k)


def why_not(trace: dict[str, Any]) -> str:
    """Why a check failed (or that it held), in words for a reason column."""
    status, error = trace.get("status"), trace.get("error") or {}
    if status == "ok":
        return "the assertion holds"
    if status == "exception":
        kind, message = error.get("type", "an exception"), str(error.get("message") or "")
        if kind == "AssertionError":
            return "the assertion fails" + (f" ({message[:200]})" if message else "")
        return f"{kind}: {message[:200]}" if message else str(kind)
    if status == "time_limit":
        return f"did not finish in {CHECK_SECONDS} s"
    detail = str(error.get("message") or "")
    return f"did not finish ({status}{': ' + detail[:200] if detail else ''})"


def score_cruxeval_item(
    code: str, input_: str, output: str, generations: list[str], task: Task, runner: Runner
) -> ItemScore:
    """Every generation of one item under the official rules (see the module's docstring)."""
    outcomes: list[Outcome] = []
    reasons: list[str] = []
    for generation in generations:
        program = check_program(code, input_, output, generation, task)
        if program is None:
            outcomes.append("skipped")
            reasons.append(
                "skipped: it holds no call of f"
                if task == "input"
                else f"skipped: it contains the call f({input_[:80]})"
            )
            continue
        trace = runner(program, None)
        passed = trace.get("status") == "ok"
        outcomes.append("pass" if passed else "fail")
        reasons.append(why_not(trace))
    checked = [o for o in outcomes if o != "skipped"]
    c = checked.count("pass")
    n = len(checked) if c else len(generations)  # none passed: all-false over every generation
    return ItemScore(tuple(outcomes), tuple(reasons), n, c)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The official estimator (``utils_general.pass_at_k``), its edge cases included: 1.0 when
    ``n - c < k`` (so also when k exceeds n); 0 items checked (n = 0) gives 1.0 there too, which
    cannot happen here (an item with no pass has n = every generation)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def bbh_answer(text: str, how: AnswerStyle) -> str | None:
    """The answer the BBH scoring reads in a model's output (None: a chain of thought without
    ``So the answer is``)."""
    if how == "alone":
        return text.strip()
    at = text.find(ANSWER_PHRASE)
    if at < 0:
        return None
    answer = text[at + len(ANSWER_PHRASE) :].split("\n", 1)[0].strip()
    return answer[:-1] if answer.endswith(".") else answer


def score_bbh(text: str, target: str, how: AnswerStyle) -> tuple[bool, str]:
    """Exact match of the extracted answer with the target, and why."""
    answer = bbh_answer(text, how)
    if answer is None:
        return False, f'no answer: the output never says "{ANSWER_PHRASE.strip()}"'
    if answer == target:
        return True, f"answered {answer[:80]}, as expected"
    return False, f"answered {answer[:80]}, but the answer is {target[:80]}"
