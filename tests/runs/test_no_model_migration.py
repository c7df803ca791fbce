"""The upgrade on a database made before the ``no_model`` verdict: Chain of Code runs of a
program that never called the model, and the evaluation results scored from them, stop counting
as the model being right; every other run and result is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.migrations import apps_at, migrate

BEFORE = [("runs", "0003_emulation_methods"), ("benchmarks", "0001_initial")]
AFTER = [("runs", "0004_no_model_verdict"), ("benchmarks", "0002_no_model_results")]


@pytest.fixture
def old_apps(transactional_db: None) -> Iterator[Any]:
    yield from apps_at(BEFORE)


def test_chain_of_code_runs_without_a_model_call_get_their_own_verdict(old_apps: Any) -> None:
    Program = old_apps.get_model("programs", "Program")
    Run = old_apps.get_model("runs", "Run")
    Evaluation = old_apps.get_model("benchmarks", "Evaluation")
    Result = old_apps.get_model("benchmarks", "Result")
    program = Program.objects.create(title="p", source="def f():\n    return 1\n", dataset="user")

    def run(method: str, calls: int, status: str) -> Any:
        return Run.objects.create(
            program=program, source=program.source, method=method, model="m", status="done",
            emulation_done=True, model_calls=calls,
            verdict={"status": status, "explanation": "Predicted 1, and the call returns 1."},
        )  # fmt: skip

    python_alone = run("coc", 0, "correct")
    asked = run("coc", 3, "correct")
    direct = run("direct", 1, "correct")
    evaluation = Evaluation.objects.create(dataset="cruxeval", method="coc", model="m")
    scored = {}
    for i, r in enumerate([python_alone, asked, direct]):
        scored[r.pk] = Result.objects.create(
            evaluation=evaluation, index=i, item_key=f"sample_{i}", run=r, status="done",
            passed=True, score_status="pass",
        )  # fmt: skip

    apps = migrate(AFTER)
    Run, Result = apps.get_model("runs", "Run"), apps.get_model("benchmarks", "Result")

    verdict = Run.objects.get(pk=python_alone.pk).verdict
    assert verdict["status"] == "no_model"
    assert "never asked" in verdict["explanation"]
    assert Run.objects.get(pk=asked.pk).verdict["status"] == "correct"
    assert Run.objects.get(pk=direct.pk).verdict["status"] == "correct"
    result = Result.objects.get(pk=scored[python_alone.pk].pk)
    assert (result.score_status, result.passed) == ("no_model", False)
    for other in (asked, direct):
        result = Result.objects.get(pk=scored[other.pk].pk)
        assert (result.score_status, result.passed) == ("pass", True)
