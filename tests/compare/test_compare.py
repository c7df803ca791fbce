"""Comparing an emulated trace with the real one: divergences, value meaning, robustness, speed."""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from playground.compare import Comparison, align, compare_traces, same_repr

# What the sandbox's tracer records for this program called as f([1, 2]).
SOURCE = """def f(nums):
    total = 0
    for n in nums:
        total += n
    print(total)
    return total
"""
REAL: dict[str, Any] = {
    "schema": 1,
    "source": "real",
    "status": "ok",
    "steps": [
        {"i": 0, "line": 1, "func": "<module>", "event": "call"},
        {"i": 1, "line": 1, "func": "<module>"},
        {
            "i": 2,
            "line": 1,
            "func": "<module>",
            "event": "return",
            "locals": {"f": "<function f>", "__return__": "None"},
        },
        {"i": 3, "line": 1, "func": "f", "event": "call", "locals": {"nums": "[1, 2]"}},
        {"i": 4, "line": 2, "func": "f"},
        {"i": 5, "line": 3, "func": "f", "locals": {"total": "0"}},
        {"i": 6, "line": 4, "func": "f", "locals": {"n": "1"}},
        {"i": 7, "line": 3, "func": "f", "locals": {"total": "1"}},
        {"i": 8, "line": 4, "func": "f", "locals": {"n": "2"}},
        {"i": 9, "line": 3, "func": "f", "locals": {"total": "3"}},
        {"i": 10, "line": 5, "func": "f"},
        {"i": 11, "line": 6, "func": "f", "stdout": "3\n"},
        {"i": 12, "line": 6, "func": "f", "event": "return", "locals": {"__return__": "3"}},
    ],
    "stdout": "3\n",
    "result": "3",
    "error": None,
}
EXPECTED_KEYS = {
    "result_match",
    "real_result",
    "emulated_result",
    "output_match",
    "first_divergence",
    "correct_prefix",
    "compared_steps",
    "emulated_steps",
    "step_agreement",
    "variable_agreement",
    "per_variable",
    "steps",
    "full_match",
}


def emulated() -> dict[str, Any]:
    """A fresh copy of the real trace, as a perfect model would write it."""
    trace = copy.deepcopy(REAL)
    trace["source"] = "emulated"
    for step in trace["steps"]:
        step["by"] = "lm"
    return trace


def step(trace: dict[str, Any], i: int) -> dict[str, Any]:
    return next(s for s in trace["steps"] if s["i"] == i)


def renumber(trace: dict[str, Any]) -> None:
    for index, s in enumerate(trace["steps"]):
        s["i"] = index


# --- whole traces ---------------------------------------------------------------------------


def test_identical_traces_are_a_full_match() -> None:
    result = compare_traces(REAL, emulated())
    assert isinstance(result, Comparison)
    assert result.full_match
    assert result.first_divergence is None
    assert result.correct_prefix == result.compared_steps == 13
    assert result.emulated_steps == 13
    assert result.step_agreement == 1.0
    assert result.variable_agreement == 1.0
    assert result.result_match is True
    assert result.output_match is True
    assert result.per_variable["total"] == {"agree": 3, "total": 3}
    assert [s["status"] for s in result.steps] == ["match"] * 13
    assert [s["real"] for s in result.steps] == list(range(13))


def test_as_dict_has_exactly_the_documented_keys_and_is_json() -> None:
    data = compare_traces(REAL, emulated()).as_dict()
    assert set(data) == EXPECTED_KEYS
    assert json.loads(json.dumps(data)) == data


def test_wrong_value_is_a_value_divergence_at_that_step() -> None:
    model = emulated()
    step(model, 7)["locals"]["total"] = "2"
    result = compare_traces(REAL, model)
    d = result.first_divergence
    assert d is not None
    assert d["kind"] == "value"
    assert (d["real_step"], d["emulated_step"], d["line"]) == (7, 7, 3)
    assert (d["variable"], d["expected"], d["got"]) == ("total", "1", "2")
    assert d["message"] == "Step 8 (line 3): total is 1, the model says 2."
    assert result.correct_prefix == 7
    assert not result.full_match
    assert result.per_variable["total"] == {"agree": 2, "total": 3}
    assert result.steps[7]["status"] == "value"
    assert result.steps[7]["differs"] == ["total"]


def test_a_change_the_model_missed_is_caught() -> None:
    model = emulated()
    del step(model, 7)["locals"]  # the model does not say total became 1
    d = compare_traces(REAL, model).first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["variable"], d["expected"], d["got"]) == (
        "value",
        7,
        "total",
        "1",
        "0",
    )


def test_a_variable_the_model_invented_is_caught() -> None:
    model = emulated()
    step(model, 4)["locals"] = {"ghost": "1"}
    d = compare_traces(REAL, model).first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["variable"], d["expected"], d["got"]) == (
        "value",
        4,
        "ghost",
        None,
        "1",
    )


def test_repeating_an_unchanged_value_is_not_a_difference() -> None:
    model = emulated()
    step(model, 10)["locals"] = {"total": "3", "n": "2", "nums": "[1,2]"}
    result = compare_traces(REAL, model)
    assert result.full_match
    assert result.variable_agreement == 1.0


def test_frames_are_separate_per_call() -> None:
    # After f returns, its frame is gone: a model that still shows "nums" on a later module
    # step is wrong, since the real frame there has no "nums".
    real = copy.deepcopy(REAL)
    real["steps"].append({"i": 13, "line": 8, "func": "<module>", "locals": {"x": "3"}})
    model = copy.deepcopy(real)
    model["steps"][13]["locals"] = {"x": "3", "nums": "[1, 2]"}
    d = compare_traces(real, model).first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["variable"], d["expected"]) == ("value", 13, "nums", None)
    # And the real frame after the return does not see f's "total".
    assert compare_traces(real, copy.deepcopy(real)).full_match


def test_a_call_has_its_own_frame() -> None:
    # f(x=1) calls g(x=2); back in f, x is 1 again.
    real: dict[str, Any] = {
        "steps": [
            {"i": 0, "line": 1, "func": "f", "event": "call", "locals": {"x": "1"}},
            {"i": 1, "line": 2, "func": "f"},
            {"i": 2, "line": 5, "func": "g", "event": "call", "locals": {"x": "2"}},
            {"i": 3, "line": 6, "func": "g", "event": "return", "locals": {"__return__": "2"}},
            {"i": 4, "line": 3, "func": "f", "locals": {"y": "2"}},
        ],
        "result": "None",
    }
    repeated = copy.deepcopy(real)
    repeated["steps"][4]["locals"]["x"] = "1"
    assert compare_traces(real, repeated).full_match
    leaked = copy.deepcopy(real)
    leaked["steps"][4]["locals"]["x"] = "2"
    d = compare_traces(real, leaked).first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["variable"], d["expected"], d["got"]) == (
        "value",
        4,
        "x",
        "1",
        "2",
    )


def test_skipped_loop_iteration_is_control_flow_at_the_first_missing_step() -> None:
    model = emulated()
    # The model runs the loop body once: it drops steps 8 (line 4) and 9 (line 3).
    model["steps"] = [s for s in model["steps"] if s["i"] not in (8, 9)]
    result = compare_traces(REAL, model)
    d = result.first_divergence
    assert d is not None
    assert d["kind"] == "control_flow"
    assert d["real_step"] == 8
    assert d["emulated_step"] == 10  # the model's next step still to come
    assert d["line"] == 4
    assert d["variable"] is None
    assert result.correct_prefix == 8
    assert result.compared_steps == 13
    assert result.emulated_steps == 11
    unpaired = [s for s in result.steps if s["emulated"] is None]
    assert [s["real"] for s in unpaired] == [8, 9]
    assert {s["status"] for s in unpaired} == {"control_flow"}
    # The steps after the skip change no variable, so they match (only changes are compared).
    assert result.step_agreement == pytest.approx(11 / 13)


def test_extra_step_is_control_flow_at_the_next_real_step() -> None:
    model = emulated()
    model["steps"].insert(5, {"i": 5, "line": 9, "func": "f"})
    renumber(model)
    result = compare_traces(REAL, model)
    d = result.first_divergence
    assert d is not None
    assert d["kind"] == "control_flow"
    assert d["real_step"] == 5  # the real step still to come
    assert d["emulated_step"] == 5
    assert d["line"] == 9
    assert d["got"] == "line 9"
    assert result.correct_prefix == 5
    assert result.emulated_steps == 14
    # Every real step is still paired with its counterpart, so they all match.
    assert [s["status"] for s in result.steps].count("match") == 13
    assert result.step_agreement == pytest.approx(13 / 14)


def test_extra_step_at_the_end_has_no_real_step() -> None:
    model = emulated()
    model["steps"].append({"i": 13, "line": 7, "func": "f"})
    d = compare_traces(REAL, model).first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["emulated_step"], d["line"]) == (
        "control_flow",
        None,
        13,
        7,
    )


def test_wrong_line_is_control_flow_with_both_places() -> None:
    model = emulated()
    step(model, 10)["line"] = 4
    d = compare_traces(REAL, model).first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["emulated_step"]) == ("control_flow", 10, 10)
    assert (d["expected"], d["got"]) == ("line 5", "line 4")


def test_wrong_print_is_an_output_divergence() -> None:
    model = emulated()
    step(model, 11)["stdout"] = "4\n"
    model["stdout"] = "4\n"
    result = compare_traces(REAL, model)
    d = result.first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["line"]) == ("output", 11, 6)
    assert (d["expected"], d["got"]) == ("3", "4")
    assert result.output_match is False
    assert result.steps[11]["status"] == "output"
    assert result.steps[12]["status"] == "output"  # the output so far still differs
    assert result.result_match is True


def test_output_printed_a_step_late_is_caught_where_it_was_missing() -> None:
    model = emulated()
    del step(model, 11)["stdout"]
    step(model, 12)["stdout"] = "3\n"
    result = compare_traces(REAL, model)
    d = result.first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"]) == ("output", 11)
    assert result.output_match  # the whole output is the same in the end


def test_trailing_whitespace_in_output_is_ignored() -> None:
    model = emulated()
    step(model, 11)["stdout"] = "3   \n\n"
    model["stdout"] = "3   \n\n"
    result = compare_traces(REAL, model)
    assert result.full_match
    assert result.output_match


def test_right_steps_wrong_result_is_a_result_divergence() -> None:
    model = emulated()
    model["result"] = "4"
    result = compare_traces(REAL, model)
    d = result.first_divergence
    assert d is not None
    assert d["kind"] == "result"
    assert d["real_step"] is None
    assert (d["expected"], d["got"]) == ("3", "4")
    assert result.result_match is False
    assert result.correct_prefix == 13
    assert not result.full_match


def test_no_real_result_means_result_match_is_none() -> None:
    real = copy.deepcopy(REAL)
    real["result"] = None
    result = compare_traces(real, emulated())
    assert result.result_match is None
    assert result.real_result is None
    assert result.emulated_result == "3"
    assert result.full_match


def test_result_compared_by_meaning() -> None:
    real = copy.deepcopy(REAL) | {"result": "[1, 2.0]"}
    model = emulated() | {"result": "[1.0, 2]"}
    assert compare_traces(real, model).result_match is True
    assert compare_traces(real, emulated() | {"result": "(1, 2)"}).result_match is False


# --- from_call ------------------------------------------------------------------------------


def test_from_call_ignores_module_steps_and_keeps_original_step_numbers() -> None:
    # The model traced only the call; its steps are numbered from 0.
    model = emulated()
    model["steps"] = model["steps"][3:]
    renumber(model)
    step(model, 4)["locals"]["total"] = "5"  # real step 7
    result = compare_traces(REAL, model, from_call=True)
    assert result.compared_steps == 10
    assert result.emulated_steps == 10
    d = result.first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["emulated_step"], d["variable"]) == (
        "value",
        7,
        4,
        "total",
    )
    assert result.correct_prefix == 4
    assert result.steps[0]["real"] == 3


def test_from_call_drops_module_steps_of_both_traces() -> None:
    result = compare_traces(REAL, emulated(), from_call=True)
    assert result.full_match
    assert result.compared_steps == result.correct_prefix == 10
    # Without from_call, the model's call step pairs with the module's call step (same place),
    # where the real run has no "nums" yet.
    model = emulated()
    model["steps"] = model["steps"][3:]
    result = compare_traces(REAL, model)
    d = result.first_divergence
    assert d is not None
    assert (d["kind"], d["real_step"], d["variable"]) == ("value", 0, "nums")
    assert result.correct_prefix == 0


def test_from_call_drops_the_output_the_module_printed() -> None:
    real = copy.deepcopy(REAL)
    real["steps"][1]["stdout"] = "loading\n"
    real["stdout"] = "loading\n3\n"
    model = emulated()
    model["steps"] = model["steps"][3:]
    model["stdout"] = "3\n"
    result = compare_traces(real, model, from_call=True)
    assert result.full_match
    assert result.output_match


# --- robustness -----------------------------------------------------------------------------


def test_garbage_emulated_trace_does_not_raise() -> None:
    garbage: dict[str, Any] = {
        "steps": [
            "not a step",
            None,
            42,
            {"line": "3", "func": None, "locals": {"total": 0, 5: [1, 2]}},
            {"i": "x", "line": 4.5, "event": 7, "locals": "nope", "stdout": 12},
            {"i": 5, "line": 3, "locals": {"total": None}, "stdout": None},
            {},
            [1, 2],
        ],
        "stdout": 3,
        "result": 3,
    }
    result = compare_traces(REAL, garbage)
    data = result.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert result.emulated_steps == 4
    assert result.emulated_result == "3"
    assert result.result_match is True  # 3 coerced to "3"
    assert result.first_divergence is not None
    assert not result.full_match
    # Steps with no "i" are numbered by their place in the list.
    assert {s["emulated"] for s in result.steps} - {None} == {3, 4, 5, 6}


@pytest.mark.parametrize(
    "model",
    [
        {},
        {"steps": None},
        {"steps": "abc"},
        {"steps": [], "result": None, "stdout": None},
        {"steps": [{"line": None, "event": None, "locals": None}]},
        {"steps": [{"locals": {"x": float("nan")}}], "result": ["a"]},
    ],
)
def test_degenerate_emulated_traces(model: dict[str, Any]) -> None:
    result = compare_traces(REAL, model)
    assert not result.full_match
    assert result.first_divergence is not None
    assert result.first_divergence["kind"] == "control_flow"
    assert 0.0 <= result.step_agreement <= 1.0


def test_two_empty_traces_agree() -> None:
    result = compare_traces({"steps": []}, {"steps": []})
    assert result.full_match
    assert result.step_agreement == 1.0
    assert result.variable_agreement is None
    assert result.compared_steps == result.correct_prefix == 0


def test_long_trace_compares_quickly() -> None:
    n = 10_000
    steps: list[dict[str, Any]] = [{"i": 0, "line": 1, "func": "f", "event": "call"}]
    for i in range(1, n - 1):
        line = 3 if i % 2 else 4
        s: dict[str, Any] = {"i": i, "line": line, "func": "f", "locals": {"k": str(i)}}
        if i % 10 == 0:
            s["stdout"] = f"{i}\n"
        steps.append(s)
    steps.append({"i": n - 1, "line": 5, "func": "f", "event": "return"})
    real: dict[str, Any] = {
        "steps": steps,
        "result": "None",
        "stdout": "".join(s.get("stdout", "") for s in steps),
    }
    model = copy.deepcopy(real)
    del model["steps"][5000:5004]  # two loop iterations skipped
    model["steps"][7000]["locals"] = {"k": "-1"}
    twin = copy.deepcopy(real)
    # This process's CPU time, not the wall clock: beside another test worker on the same
    # cores the wall clock doubled (3.8 s) while the work did not. A quadratic comparison of
    # 10,000 steps would take minutes either way.
    start = time.process_time()
    result = compare_traces(real, model)
    same = compare_traces(real, twin)
    elapsed = time.process_time() - start
    assert elapsed < 2.0, elapsed
    # By place alone the skipped iterations could be anywhere in the loop; the values show
    # that the model went wrong at step 5000 (k is 5000, the model says 5004).
    assert result.first_divergence is not None
    assert result.first_divergence["kind"] == "value"
    assert result.first_divergence["real_step"] == 5000
    assert (result.first_divergence["expected"], result.first_divergence["got"]) == ("5000", "5004")
    assert same.full_match
    assert same.correct_prefix == n


def test_long_unrelated_traces_compare_quickly() -> None:
    real = {"steps": [{"i": i, "line": 1 + i % 7, "func": "f"} for i in range(10_000)]}
    model = {"steps": [{"i": i, "line": 1 + (i * i) % 5, "func": "f"} for i in range(10_000)]}
    start = time.process_time()  # CPU time: another test worker shares the cores
    result = compare_traces(real, model)
    assert time.process_time() - start < 2.0
    assert result.first_divergence is not None
    assert len(result.steps) >= 10_000


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        ("1.0", "1"),
        ("[1, 2]", "[1,2]"),
        ("{1, 2}", "{2, 1}"),
        ("{'a': 1, 'b': 2}", "{'b': 2, 'a': 1}"),
        ("0.30000000000000004", "0.3"),
        ("[0.1, (0.30000000000000004,)]", "[0.1, (0.3,)]"),
        ("{'x': 0.30000000000000004}", "{'x': 0.3}"),
        ("1e-12", "0.0"),
        ("'abc'", "abc"),
        ("'abc'", '"abc"'),
        ("<function f>", " <function f> "),
        ("<function f>", "'<function f>'"),
        ("True", "True"),
        ("{1, 2.0}", "{2, 1}"),
        ("(1, 2)", "(1,2)"),
        ("1+2j", "(1+2.0000000001j)"),
    ],
)
def test_same_by_meaning(expected: str, got: str) -> None:
    assert same_repr(expected, got)
    assert same_repr(got, expected)


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        ("(1,)", "[1]"),
        ("[1, 2]", "[2, 1]"),
        ("1", "'1'"),
        ("0.3", "0.31"),
        ("{'a': 1}", "{'a': 1, 'b': 2}"),
        ("{'a': 1}", "{'b': 1}"),
        ("'abc'", "abd"),
        ("<function f>", "<function g>"),
        ("None", "'None'"),
        ("[1, [2, 3]]", "[1, [2, 4]]"),
        ("10" * 200, "1.0"),
        ("1e308", "1e-308"),
    ],
)
def test_different_by_meaning(expected: str, got: str) -> None:
    assert not same_repr(expected, got)
    assert not same_repr(got, expected)


def test_none_only_equals_none() -> None:
    assert same_repr(None, None)
    assert not same_repr(None, "None")
    assert not same_repr("None", None)
    assert not same_repr("", None)


def test_hostile_reprs_do_not_raise() -> None:
    deep = "[" * 5000 + "]" * 5000
    assert same_repr(deep, deep)
    assert not same_repr(deep, "[]")
    huge = "[" + "1, " * 30_000 + "]"
    assert not same_repr(huge, "[1]")
    assert not same_repr("__import__('os').system('true')", "0")
    assert not same_repr("9" * 5000, "1e999")
    assert not same_repr("'\x00'", "x")


# --- align ----------------------------------------------------------------------------------


def test_align_pairs_by_line_and_event() -> None:
    real = [{"line": 1, "event": "call"}, {"line": 2}, {"line": 3}, {"line": 2}, {"line": 4}]
    model = [{"line": 1, "event": "call"}, {"line": 2}, {"line": 4}]
    assert align(real, model) == [(0, 0), (1, 1), (2, None), (3, None), (4, 2)]
    assert align(model, real) == [(0, 0), (1, 1), (None, 2), (None, 3), (2, 4)]


def test_align_pairs_a_replaced_run_one_to_one() -> None:
    real = [{"line": 1}, {"line": 2}, {"line": 3}, {"line": 9}]
    model = [{"line": 1}, {"line": 7}, {"line": 9}]
    assert align(real, model) == [(0, 0), (1, 1), (2, None), (3, 2)]


def test_align_event_is_part_of_the_key() -> None:
    real = [{"line": 6}, {"line": 6, "event": "return"}]
    model = [{"line": 6, "event": "line"}, {"line": 6}]
    assert align(real, model) == [(0, 0), (1, 1)]
    pairs = compare_traces({"steps": real}, {"steps": model}).steps
    assert [p["status"] for p in pairs] == ["match", "control_flow"]


def test_align_covers_every_step_once_and_in_order() -> None:
    real = [{"line": n % 4} for n in range(50)]
    model = [{"line": (n * 7) % 5} for n in range(40)]
    pairs = align(real, model)
    assert [r for r, _ in pairs if r is not None] == list(range(50))
    assert [e for _, e in pairs if e is not None] == list(range(40))


# --- packaging ------------------------------------------------------------------------------


def test_package_uses_the_standard_library_only() -> None:
    package = Path(compare_traces.__code__.co_filename).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("playground.compare"), (
                    f"{path.name} imports {name}"
                )


def test_package_imports_without_django_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "from playground.compare import compare_traces\n"
        "print(compare_traces({'steps': [{'i': 0, 'line': 1, 'func': 'f'}]},"
        " {'steps': [{'line': 1}]}).full_match)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
