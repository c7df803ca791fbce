"""Judging an emulation against the real run: one function for the site, the CLI and
evaluations, so they can never disagree.

A verdict is one of five statuses, and each reads the same everywhere (run pages, share links,
the API, evaluations, classroom statistics):

- ``correct``: the model's value is the real one;
- ``wrong``: the model gave a value, and it is not the real one;
- ``unparsable``: there is no value to read from the model's answer (the explanation says
  exactly why: no ``assert`` line, a trace that stops before the call returns...);
- ``unknown``: there is nothing to compare with (the real run has no value);
- ``no_model``: Chain of Code ran every line of the program in Python and never asked the
  model, so the run says nothing about the model. It never counts as the model being right.

A method that yields steps (a step trace, Chain of Code's, the probes) gets a second verdict
beside it, ``verdict["path"]``: whether the model went the real run's way (``agrees``,
``diverges``, ``unknown``; ``compare/path.py``, and ``probes.path_verdict`` from the probes
about the path). A right result on a diverging path, or the reverse, is flagged on the run page.
"""

from __future__ import annotations

import json
from typing import Any

from playground.compare import compare_paths, compare_traces, same_repr
from playground.emulation.literals import NotALiteral, parse_literal, same_value
from playground.emulation.output_prediction import Prediction, judge
from playground.emulation.registry import REGISTRY

CORRECT, WRONG, UNPARSABLE, UNKNOWN, NO_MODEL = (
    "correct",
    "wrong",
    "unparsable",
    "unknown",
    "no_model",
)
STATUSES = (CORRECT, WRONG, UNPARSABLE, UNKNOWN, NO_MODEL)
HEADLINES = {
    CORRECT: "The model got it right",
    WRONG: "The model got it wrong",
    UNPARSABLE: "No readable answer",
    UNKNOWN: "Cannot compare",
    NO_MODEL: "No model call was needed",
}
# A trace method's answer that has readable steps but no result is not "unreadable".
NO_RESULT = "The model's trace gives no result"
_SHOWN = 80


def headline(verdict: dict[str, Any] | None, *, emulated_steps: int = 0) -> str:
    """The verdict's headline as every page shows it; "" when there is no verdict."""
    status = (verdict or {}).get("status")
    if not status:
        return ""
    if status == UNPARSABLE and emulated_steps:
        return NO_RESULT
    return HEADLINES.get(str(status), HEADLINES[UNKNOWN])


def needed_no_model(method: str, model_calls: int | None) -> bool:
    """A method where Python runs what it can (Chain of Code), on a program that Python ran
    entirely by itself: the model was never asked."""
    spec = REGISTRY.get(method)
    return spec is not None and spec.lm_lines and model_calls == 0


def _short(text: str, limit: int = _SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge_program(
    method: str,
    real: dict[str, Any],
    *,
    call: str,
    prediction: str | None,
    problem: str | None,
    emulated: dict[str, Any] | None,
    model_calls: int | None = None,
    text: str = "",
    hit_limit: bool = False,
    max_tokens: int | None = None,
    details: dict[str, Any] | None = None,
    source: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The verdict on the predicted value and the comparison. Methods that write a trace get
    the step-by-step comparison; the others a comparison of the final result only (its first
    divergence, if any, is the result). ``model_calls``, ``text`` (the model's whole answer),
    ``hit_limit`` (the answer ended at its token limit) and ``max_tokens`` make the explanation
    exact: the status never claims more than the run shows. A probe method's ``details`` (its
    questions and answers) are graded against ``real`` with the program's ``source``."""
    result = real.get("result") if real.get("status") == "ok" else None
    spec = REGISTRY.get(method)
    if spec is not None and spec.asks_probes:
        from playground.emulation import probes

        if not (details or {}).get("probes"):  # none could be made: not the model's doing
            return _verdict(UNKNOWN, problem or "No probe was asked."), result_comparison(
                result, prediction
            )
        verdict = probes.judge(real, details or {}, source=source, call=call)
        return verdict, result_comparison(result, prediction)
    if spec is not None and spec.graded_per_step:  # each next step graded (stepping.py)
        from playground.emulation import stepping

        if not (details or {}).get("stepping"):  # none was asked: not the model's doing
            return _verdict(UNKNOWN, problem or "No step was asked."), result_comparison(
                result, prediction
            )
        verdict = stepping.judge(real, details or {})
        return verdict, result_comparison(result, prediction)
    if spec is not None and spec.predicts_input:
        verdict = judge_input(real, emulated, prediction, problem)
        called = emulated or {}
        returned = called.get("result") if called.get("status") == "ok" else None
        return verdict, result_comparison(result, returned)
    read = Prediction(prediction, problem or "No readable answer.")
    verdict = judge(read, result, call).as_dict()
    if real.get("status") != "ok" and result is None:
        verdict["explanation"] = (
            f"The real run ended with {real.get('status')}, so there is no value to compare the "
            "prediction with."
        )
    elif verdict["status"] == UNPARSABLE:
        verdict["explanation"] = _why_unreadable(
            method, verdict["explanation"], text, emulated, hit_limit, max_tokens
        )
    if needed_no_model(method, model_calls):
        verdict = no_model_verdict(real, call)
    plan_path = (details or {}).get("plan_path")
    if spec is not None and spec.checks_plan and isinstance(plan_path, dict):
        verdict["path"] = plan_path  # its plan's prints, checked when it ran (tae.plan_path)
    if spec is not None and spec.compares_steps and emulated is not None:
        from_call = spec.compares_from_call and bool(call)
        if verdict["status"] != NO_MODEL:  # the path beside the result: issue 20's second verdict
            verdict["path"] = compare_paths(real, emulated, from_call=from_call)
        return verdict, compare_traces(real, emulated, from_call=from_call).as_dict()
    return verdict, result_comparison(result, prediction)


def judge_input(
    real: dict[str, Any],
    called: dict[str, Any] | None,
    call: str | None,
    problem: str | None,
) -> dict[str, Any]:
    """Input prediction (CRUXEval-I): the model's ``call``, run in the sandbox (``called``, its
    trace), must return the real run's value, by the verdict's ``==`` rule on the two values
    read as literals (``same_value``, as for output prediction)."""
    if real.get("status") != "ok" or real.get("result") is None:
        return _verdict(
            UNKNOWN,
            f"The real run ended with {real.get('status')}, so there is no output the model's "
            "call could be checked against.",
        )
    output = str(real["result"])
    if call is None or called is None:
        return _verdict(UNPARSABLE, problem or "No readable call.")
    shown = _short(call)
    if called.get("status") != "ok":
        error = called.get("error") or {}
        if called.get("status") == "exception":
            message = _short(str(error.get("message", "")))
            how = f"raises {error.get('type', 'an exception')}: {message}"
        else:
            how = f"does not finish ({called.get('status')})"
        return _verdict(WRONG, f"The model's call {shown} {how}; the output is {_short(output)}.")
    returned = str(called.get("result"))
    try:
        same = same_value(parse_literal(returned), parse_literal(output))
    except NotALiteral:
        return _verdict(
            UNKNOWN,
            f"The model's call {shown} returns {_short(returned)}; the output "
            f"{_short(output)} cannot be compared with it as a literal.",
        )
    if same:
        return _verdict(CORRECT, f"The model's call {shown} returns {_short(output)}, the output.")
    return _verdict(
        WRONG, f"The model's call {shown} returns {_short(returned)}, not {_short(output)}."
    )


def _verdict(status: str, explanation: str) -> dict[str, Any]:
    return {"status": status, "explanation": explanation, "leakage": False}


def no_model_verdict(real: dict[str, Any], call: str) -> dict[str, Any]:
    """The verdict of a Chain of Code run that never asked the model."""
    if real.get("status") == "ok" and call:
        outcome = f" (the call returns {_short(str(real.get('result')))})"
    elif real.get("status") == "ok":
        outcome = ""
    else:
        outcome = f" (the real run ended with {real.get('status')})"
    return {
        "status": NO_MODEL,
        "explanation": "Python ran every line of this program itself, so the model was never "
        f"asked: this run says nothing about the model{outcome}.",
        "leakage": False,
    }


def _why_unreadable(
    method: str,
    problem: str,
    text: str,
    emulated: dict[str, Any] | None,
    hit_limit: bool,
    max_tokens: int | None,
) -> str:
    """Why the answer has no value, in words that match what the page shows below it."""
    limit = f" ({max_tokens:,} tokens)" if max_tokens else ""
    spec = REGISTRY.get(method)
    if spec is not None and spec.writes_trace and text:
        steps = len((emulated or {}).get("steps") or [])
        if steps and spec.trace_format == "cwm":
            # CWM's frames, not the trace method's JSON lines: its parser would misplace the break.
            frames = f"{steps} readable frame{'s' if steps != 1 else ''}"
            why = "it ends before the call's return frame"
            if hit_limit:
                why += f", at the model's token limit{limit}"
            shown = f"Its {frames} are compared with the real run."
            return f"The model's trace gives no value: {why}. {shown}"
        if steps:
            return unfinished_trace(text, steps=steps, hit_limit=hit_limit, limit=limit)
    problem = problem.replace(" (cut off at the token limit?)", "").rstrip()
    if hit_limit and "token limit" not in problem:
        problem += f" The answer ended at the model's token limit{limit}."
    return problem


def unfinished_trace(text: str, *, steps: int, hit_limit: bool, limit: str = "") -> str:
    """Why a model-written trace with ``steps`` readable steps gives no result: it breaks off in
    the middle of a step (at the token limit, or not), a step is not valid JSON, or it simply
    ends without a return step."""
    from playground.emulation.trace import StepParser, raised_by

    parser = StepParser()
    parser.feed(text)
    shown = f"Its {steps} readable step{'s' if steps != 1 else ''} are compared with the real run."
    if steps == 1:
        shown = "Its 1 readable step is compared with the real run."
    raised = raised_by(parser.steps)
    if raised is not None:  # the call's frame ends with an exception leaving it: no value
        return f"The model says the call raises {_short(raised)}, so it predicts no value. {shown}"
    start = _open_step(parser.stack)
    if parser.returned:
        # The call's frame ended (early stopping closes the answer there, before the wrapper's
        # "]}"; what follows it is never read), but its return step gives no value.
        why = 'its return step for the call gives no value (no "__return__" in "changed")'
    elif start is not None:
        number = len(parser.steps) + parser.invalid + 1
        head, newline, _ = text[start:].partition("\n")
        line = head.strip()
        if newline and line.startswith("{") and line.endswith("}") and not _is_json(line):
            why = (
                f"step {number} is not valid JSON ({_short(line)}), so nothing after it could "
                "be read"
            )
            if hit_limit:
                why += f"; the model then went on writing until its token limit{limit}"
        elif hit_limit:
            why = f"it was cut off at the token limit{limit} in the middle of step {number}"
        else:
            why = f"the answer ends in the middle of step {number}"
    elif parser.invalid:
        bad = parser.invalid
        why = (
            f"{bad} step{'s are' if bad != 1 else ' is'} not valid JSON, and it ends without a "
            "return step"
        )
    else:
        why = "it ends without a return step for the call"
        if hit_limit:
            why += f" (the answer ended at the model's token limit{limit})"
    return f"The trace stops before the call returns: {why}. {shown}"


def _open_step(stack: list[tuple[str, int]]) -> int | None:
    """Where the step object that never closed begins: the first ``{`` open at top level or
    in an array, not counting a ``{"steps": [`` wrapper."""
    for index, (bracket, offset) in enumerate(stack):
        if bracket != "{" or (index and stack[index - 1][0] != "["):
            continue
        if index + 1 < len(stack) and stack[index + 1][0] == "[":
            continue  # the wrapper object around the array of steps
        return offset
    return None  # only the wrapper (or arrays) is open: no step was left unfinished


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def result_comparison(real_result: str | None, prediction: str | None) -> dict[str, Any]:
    """The comparison of a method that predicts only the value (same keys where they apply)."""
    match = None if real_result is None else same_repr(real_result, prediction)
    divergence = None
    if match is False:
        divergence = {
            "real_step": None,
            "emulated_step": None,
            "line": None,
            "kind": "result",
            "variable": None,
            "expected": real_result,
            "got": prediction,
            "message": f"The call returns {str(real_result)[:80]}; the model says "
            f"{str(prediction)[:80]}.",
        }
    return {
        "result_match": match,
        "real_result": real_result,
        "emulated_result": prediction,
        "first_divergence": divergence,
        "full_match": match is True,
    }
