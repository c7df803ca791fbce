"""Every method with the real embedded model (SmolLM2-135M on llama.cpp), end to end through
the Celery task and the database: whatever the tiny model writes (it is mostly wrong), each run
must finish with a verdict, and an answer that cannot be read must end in ``parse_error`` or
``unparsable`` with the model's raw text kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from playground.emulation import probes, tae
from playground.llm.registry import ModelSpec
from playground.programs.library import import_library
from playground.programs.models import Dataset, Program, Puzzle, TaskExample
from playground.runs.models import Run
from playground.runs.services import start_run

# Items per method: 10 under `make test-full` (--full), 1 in `make test`: the plumbing of every
# method is the point, and one item of the tiny model already costs 5 to 20 s of both cores
# beside the other test worker (2 to 3 items each made this file 365 s of `make test`).
N = 10
SHORT = 1
# Small budgets keep the suite fast; the point is the plumbing, not the tiny model's skill.
TOKENS = {"direct": 48, "cot": 96, "trace": 160, "coc": 64, "tae": 96, "puzzle": 48,
          "input-direct": 48, "input-cot": 96, "probe": 160, "probe-chain": 24}  # fmt: skip
READABLE = {"correct", "wrong", "unparsable", "unknown"}


@pytest.fixture
def run_embedded(
    db: None,
    eager: None,
    embedded_llm: ModelSpec,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Callable[..., Run]:
    import_library()
    # Think-and-Execute plans have their own budget (1,024 tokens, whatever the run asks): the
    # tiny model's rambling plans are then cut at it and never stored, so every instance would
    # think again for 1,024 tokens. The plumbing is the point here, not the plans.
    monkeypatch.setattr(tae, "THINK_TOKENS", TOKENS["tae"])
    entry = {"name": embedded_llm.name, "base_url": embedded_llm.base_url, "model": "smollm2"}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([{**entry, "json_schema": "json_object"}]))

    def start(method: str, **item: Any) -> Run:
        with django_capture_on_commit_callbacks(execute=True):
            run = start_run(
                **item,
                user=AnonymousUser(),
                anon_token="embedded-test",
                method=method,
                model=embedded_llm.name,
                max_tokens=TOKENS[method],
            )
        run = Run.objects.get(pk=run.pk)
        assert run.status == Run.Status.DONE, (method, run.error)
        if method == "coc" and run.model_calls == 0:
            # Python ran every line itself: the run says nothing about the model.
            assert run.verdict["status"] == "no_model", run.verdict
        else:
            assert run.verdict["status"] in READABLE, run.verdict
        assert run.emulated_text.strip(), "the model's text is kept"
        if method != "coc":  # Chain of Code asks only for lines Python cannot run
            assert run.model_calls >= 1
        return run

    return start


def _programs(n: int = N) -> list[Program]:
    return list(Program.objects.filter(dataset=Dataset.CRUXEVAL).order_by("id")[:n])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["direct", "cot", "trace", "tae"])
def test_program_methods_finish_whatever_the_model_writes(
    run_embedded: Callable[..., Run], method: str, full: bool
) -> None:
    for program in _programs(N if full else SHORT):
        run = run_embedded(method, program=program)
        assert run.comparison is not None
        assert run.comparison["result_match"] in (True, False)
        if method in ("trace", "tae"):
            emulated = run.emulated_trace
            assert emulated is not None
            if emulated.status == "parse_error":
                assert emulated.data["error"]["message"]
        if method == "trace":
            assert "correct_prefix" in run.comparison


@pytest.mark.slow
@pytest.mark.parametrize("method", ["input-direct", "input-cot"])
def test_input_prediction_finishes_whatever_the_model_writes(
    run_embedded: Callable[..., Run], method: str, full: bool
) -> None:
    """CRUXEval-I with the real model: it is shown the data set's output, whatever call it
    writes is run in the sandbox (never here) and judged, and an answer without one is
    unparsable with the reason."""
    for program in _programs()[: N if full else SHORT]:
        run = run_embedded(method, program=program)
        assert run.details["output"] == program.expected_output
        assert run.details["output_from"] == "data set"
        if run.prediction:  # a call of f: it ran, and the verdict is about what it returned
            assert run.prediction.startswith("f(")
            assert run.emulated_trace is not None
            assert run.verdict["status"] in ("correct", "wrong", "unknown")
        else:
            assert run.verdict["status"] == "unparsable"
            assert "assert f(...) == output" in run.verdict["explanation"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["probe", "probe-chain"])
def test_probes_finish_whatever_the_model_writes(
    run_embedded: Callable[..., Run], method: str, full: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probes with the real model: every probe of every run gets a mark (right, wrong, or
    unreadable with why), and the verdict counts them per kind. In ``make test`` one chain of
    probes per run (four questions: the tiny model reads a long prompt slowly)."""
    if not full:
        monkeypatch.setattr(probes, "DEFAULT", probes.Config(1, 1, 1, 1, 0))
    for program in _programs()[: N if full else SHORT]:
        run = run_embedded(method, program=program)
        marks = run.verdict["probes"]
        assert len(marks) == len(run.details["probes"]) > 0
        assert {m["status"] for m in marks} <= {"correct", "wrong", "unparsable"}
        assert all(m.get("why") for m in marks if m["status"] == "unparsable")
        asked = sum(row["asked"] for row in run.verdict["scores"].values())
        assert asked == len(marks)
        if method == "probe-chain":
            assert run.model_calls == len(marks)


@pytest.mark.slow
def test_chain_of_code_finishes_on_programs_and_tasks(
    run_embedded: Callable[..., Run], full: bool
) -> None:
    for program in _programs(N if full else 3):
        run = run_embedded("coc", program=program)
        assert run.emulated_trace is not None
        assert run.model_calls == 0  # Python runs these library programs entirely
    tasks = TaskExample.objects.filter(task__name="object_counting").order_by("index")
    for example in tasks[: 2 if full else SHORT]:
        run = run_embedded("coc", task_example=example)
        assert "program" in run.details


@pytest.mark.slow
def test_puzzles_and_tasks_finish_whatever_the_model_writes(
    run_embedded: Callable[..., Run], full: bool
) -> None:
    n = N if full else SHORT
    for puzzle in Puzzle.objects.order_by("source_index")[:n]:
        run = run_embedded("puzzle", puzzle=puzzle)
        assert run.details["attempts"]
    for example in TaskExample.objects.filter(task__name="navigate").order_by("index")[:n]:
        run = run_embedded("tae", task_example=example)
        assert run.details["plan"]["pseudocode"]
