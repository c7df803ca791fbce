"""Identity in the comparison: with object identity on both sides (the real run's, and a Chain of
Code run's), a model whose values are right but whose objects are not (it copied a list the
program shares, or shared one the program copied) diverges there; a trace without identity (a
model-written one) is compared as before. Real traces from the sandbox; the emulated side is the
real one with its ids changed the way a model's run would change them."""

from __future__ import annotations

import copy
from typing import Any

from playground import sandbox
from playground.compare import compare_traces

SHARED = "a = [1]\nb = a\nb.append(2)\nprint(a)\n"
COPIED = "a = [1]\nb = list(a)\nb.append(2)\nprint(a)\n"


def _real(source: str) -> dict[str, Any]:
    trace = sandbox.run(source)
    assert trace["status"] == "ok"
    return trace


def _rebind(trace: dict[str, Any], name: str, new_id: int) -> dict[str, Any]:
    """The trace with ``name`` bound to object ``new_id`` wherever it is shown."""
    changed = copy.deepcopy(trace)
    for step in changed["steps"]:
        if name in step.get("ids", {}):
            step["ids"][name] = new_id
    return changed


def test_identical_traces_match_with_identity() -> None:
    real = _real(SHARED)
    assert compare_traces(real, copy.deepcopy(real)).full_match


def test_a_model_that_copies_a_shared_list_diverges_on_identity() -> None:
    real = _real(SHARED)
    assert real["steps"][3]["ids"] == {"b": 1}  # b = a: one list
    emulated = _rebind(real, "b", 2)  # the model's b is a list of its own, equal to a
    emulated["steps"][3].setdefault("heap", {})["2"] = {"kind": "list", "items": ["1"]}
    result = compare_traces(real, emulated)
    first = result.first_divergence
    assert first is not None
    assert first["kind"] == "identity"
    assert first["variable"] == "b"
    assert first["real_step"] == 3
    assert first["message"] == (
        "Step 4 (line 3): b is the same object as a in the real run; in the model's run it is "
        "an object of its own."
    )
    assert result.steps[3]["status"] == "identity"
    assert not result.full_match
    assert result.variable_agreement is not None
    assert result.variable_agreement < 1


def test_a_model_that_shares_a_copied_list_diverges_on_identity() -> None:
    real = _real(COPIED)
    assert real["steps"][3]["ids"] == {"b": 2}  # b = list(a): another list
    emulated = _rebind(real, "b", 1)
    first = compare_traces(real, emulated).first_divergence
    assert first is not None
    assert (first["kind"], first["variable"]) == ("identity", "b")
    assert first["expected"] == "an object of its own"
    assert first["got"] == "the same object as a"


def test_a_value_difference_is_reported_before_identity() -> None:
    real = _real(SHARED)
    emulated = _rebind(real, "b", 2)
    emulated["steps"][3]["locals"]["b"] = "[7]"
    first = compare_traces(real, emulated).first_divergence
    assert first is not None
    assert (first["kind"], first["variable"]) == ("value", "b")


def test_without_identity_on_one_side_ids_are_not_compared() -> None:
    real = _real(SHARED)
    model_written = copy.deepcopy(real)
    for step in model_written["steps"]:
        step.pop("ids", None)
        step.pop("heap", None)
    assert compare_traces(real, model_written).full_match
    assert compare_traces(model_written, real).full_match


def test_renumbered_ids_are_the_same_identity() -> None:
    """Ids are numbered per trace: the same sharing under other numbers is no divergence."""
    real = _real(SHARED)
    emulated = _rebind(_rebind(real, "a", 5), "b", 5)
    assert compare_traces(real, emulated).full_match


def test_a_parameter_that_is_the_callers_list_counts_across_frames() -> None:
    source = "def f(xs):\n    xs.append(1)\n    return xs\n\na = [0]\nb = f(a)\n"
    real = _real(source)
    call = next(s for s in real["steps"] if s.get("event") == "call" and s["func"] == "f")
    a_id = call["ids"]["xs"]  # the parameter arrives bound to the caller's list
    assert compare_traces(real, copy.deepcopy(real)).full_match
    emulated = copy.deepcopy(real)
    for step in emulated["steps"]:
        if step["func"] == "f" and "xs" in step.get("ids", {}):
            step["ids"]["xs"] = a_id + 10  # the model's f works on a copy
    first = compare_traces(real, emulated).first_divergence
    assert first is not None
    assert (first["kind"], first["variable"]) == ("identity", "xs")
    assert first["expected"] == "the same object as a in the program"
    assert first["got"] == "an object of its own"
