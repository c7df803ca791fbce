"""Judging an emulation against the real run: one function for the site, the CLI and
evaluations, so they can never disagree."""

from __future__ import annotations

from typing import Any

from playground.compare import compare_traces, same_repr
from playground.emulation.output_prediction import Prediction, judge
from playground.emulation.registry import REGISTRY


def judge_program(
    method: str,
    real: dict[str, Any],
    *,
    call: str,
    prediction: str | None,
    problem: str | None,
    emulated: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The verdict on the predicted value and the comparison. Methods that write a trace get
    the step-by-step comparison; the others a comparison of the final result only (its first
    divergence, if any, is the result)."""
    result = real.get("result") if real.get("status") == "ok" else None
    read = Prediction(prediction, problem or "No readable answer.")
    verdict = judge(read, result, call).as_dict()
    if real.get("status") != "ok" and result is None:
        verdict["explanation"] = (
            f"The real run ended with {real.get('status')}, so there is no value to compare the "
            "prediction with."
        )
    spec = REGISTRY.get(method)
    if spec is not None and spec.compares_steps and emulated is not None:
        from_call = method == "trace" and bool(call)
        return verdict, compare_traces(real, emulated, from_call=from_call).as_dict()
    return verdict, result_comparison(result, prediction)


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
