"""The comparison's messages number steps the way every viewer does: from 1, and without nested
parentheses ("Step 3 (line 1 (call))" on 3103616, where the real viewer said "Step 4")."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from playground.compare import compare_traces
from tests.compare.test_compare import REAL


def _model(change: Any) -> dict[str, Any]:
    model = copy.deepcopy(REAL)
    model["source"] = "emulated"
    change(model["steps"])
    return model


def _value(steps: list[dict[str, Any]]) -> None:
    steps[7]["locals"]["total"] = "2"


def _output(steps: list[dict[str, Any]]) -> None:
    steps[11]["stdout"] = "4\n"


def _elsewhere(steps: list[dict[str, Any]]) -> None:
    steps[3]["line"] = 2  # the model puts the call of f on line 2


def _skipped(steps: list[dict[str, Any]]) -> None:
    del steps[4]


def _added(steps: list[dict[str, Any]]) -> None:
    steps.insert(4, {"i": 4, "line": 5, "func": "f"})


# (how the model goes wrong, the message, the real step's own "i")
CASES = [
    (_value, "Step 8 (line 3): total is 1, the model says 2.", 7),
    (_output, "Step 12 (line 6): the output so far differs from the real run's.", 11),
    (_elsewhere,
     "Step 4: the real run is at the call at line 1, the model says the call at line 2.", 3),
    (_skipped, "Step 5 (line 2): the model skips this step.", 4),
    (_added, "Step 5: the model adds a step at line 5 that the real run does not take.", 4),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message", "real_step"), CASES)
def test_a_divergence_message_counts_steps_from_one(
    change: Any, message: str, real_step: int
) -> None:
    divergence = compare_traces(REAL, _model(change)).first_divergence
    assert divergence is not None
    assert divergence["message"] == message
    # What is stored stays the step's own index (the viewers and evaluations add 1 to show it).
    assert divergence["real_step"] == real_step
    assert not re.search(r"\([^()]*\(", divergence["message"]), "nested parentheses"
