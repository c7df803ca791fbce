"""Every method in the registry, end to end through the Celery task and the database, against a
model server that is always right: each must score a full match on 20 library items of each kind
it accepts, which proves that the prompts, parsing, streaming, storing and comparing lose nothing.
What is checked follows the method's record, so a new method is covered once it is registered
and the oracle can answer its prompts. One deliberate error must be reported at its step."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from playground import sandbox
from playground.emulation import trace as trace_method
from playground.emulation.puzzle import PRELUDE
from playground.emulation.registry import REGISTRY, Method
from playground.programs.library import import_library
from playground.programs.models import Dataset, Program, Puzzle, TaskExample
from playground.runs.models import Plan, Run
from playground.runs.services import start_run
from tests.oracle import Oracle, oracle_server

N = 20


def _accepting(kind: str) -> list[Method]:
    return [m for m in REGISTRY.values() if kind in m.kinds]


def _by_name(method: Method) -> str:
    return method.name


@pytest.fixture
def oracle(db: None, eager: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    import_library()
    knows = Oracle(
        targets={e.input: e.target for e in _task_examples()},
        solutions=_puzzle_solutions(),
        calls={p.source.rstrip(): p.call for p in _programs()},
    )
    with oracle_server(knows) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield knows


@pytest.fixture
def run_method(
    oracle: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Run]:
    def start(method: str, **item: Any) -> Run:
        with django_capture_on_commit_callbacks(execute=True):
            run = start_run(
                **item,
                user=AnonymousUser(),
                anon_token="oracle-test",
                method=method,
                model="oracle",
                max_tokens=REGISTRY[method].max_tokens,
            )
        assert not oracle.seen["unknown"], (
            f"The oracle cannot answer a prompt of the method {method!r}: teach "
            "tests/oracle.py (Oracle.answers) how to answer its module's prompts."
        )
        return Run.objects.get(pk=run.pk)

    return start


def _programs() -> list[Program]:
    return list(Program.objects.filter(dataset=Dataset.CRUXEVAL).order_by("id")[:N])


def _task_examples() -> list[TaskExample]:
    # Two tasks, ten instances each: Think-and-Execute must think once per task.
    examples: list[TaskExample] = []
    for task in ("boolean_expressions", "navigate"):
        examples += TaskExample.objects.filter(task__name=task).order_by("index")[: N // 2]
    return examples


def _puzzle_solutions() -> dict[str, str]:
    """The first N puzzles whose reference solution runs in the sandbox, with its answer."""
    solutions: dict[str, str] = {}
    for puzzle in Puzzle.objects.order_by("source_index")[:60]:
        if not puzzle.sol_bodies:
            continue
        real = sandbox.run(PRELUDE + puzzle.reference_solutions()[0], call="sol()")
        if real["status"] == "ok" and real["result"] and len(real["result"]) < 2000:
            solutions[puzzle.sat] = real["result"]
        if len(solutions) == N:
            break
    return solutions


@pytest.mark.parametrize("method", REGISTRY.values(), ids=_by_name)
def test_the_oracle_answers_every_method(method: Method) -> None:
    module = method.target.partition(":")[0]
    assert module in Oracle().answers(), (
        f"The method {method.name!r} has no oracle answer, so no end-to-end test: add its "
        f"module {module} and its prompts to Oracle.answers in tests/oracle.py."
    )


@pytest.mark.parametrize("spec", _accepting("program"), ids=_by_name)
def test_every_program_method_scores_a_full_match(
    oracle: Oracle, run_method: Callable[..., Run], spec: Method
) -> None:
    for program in _programs():
        run = run_method(spec.name, program=program)
        assert run.status == Run.Status.DONE, (program.external_id, run.error)
        # Python runs every line of these where it runs what it can (Chain of Code): the model
        # is never asked, and that is no success of the model's.
        expected = "no_model" if spec.lm_lines else "correct"
        assert run.verdict["status"] == expected, (program.external_id, run.verdict)
        assert run.comparison is not None
        assert run.comparison["result_match"] is True
        assert run.comparison["first_divergence"] is None, run.comparison["first_divergence"]
        assert run.comparison["full_match"] is True
        if spec.lm_lines:  # Python runs every line of these: the model is never needed
            assert run.model_calls == 0
            steps = run.emulated_trace.data["steps"]  # type: ignore[union-attr]
            assert all(s.get("by", "python") == "python" for s in steps)
        else:
            assert run.emulated_text
            assert run.model_calls >= 1
        if spec.predicts_input:  # its answer is a call, run for real: it returns the output
            called = run.emulated_trace
            assert called is not None
            assert run.prediction == program.call
            assert called.data["result"] == run.real_trace.data["result"]  # type: ignore[union-attr]
        if spec.compares_steps:
            emulated = run.emulated_trace
            assert emulated is not None
            assert run.comparison["correct_prefix"] == run.comparison["compared_steps"] > 0
        if (spec.compares_steps and not spec.lm_lines) or spec.asks_probes:
            assert run.verdict["path"]["status"] == "agrees", run.verdict["path"]
        if spec.graded_per_step:  # every step asked and right, unless past the cap of calls
            figures = run.verdict["figures"]
            assert figures["correct"] == figures["graded"] == run.model_calls
            capped = figures["graded"] < figures["total"]
            assert run.verdict["path"]["status"] == ("unknown" if capped else "agrees")
        if spec.checks_plan:  # the oracle's plan is the program: its prints, if it prints
            printed = run.real_trace.data["stdout"].strip()  # type: ignore[union-attr]
            assert run.verdict["path"]["status"] == ("agrees" if printed else "unknown")
    if spec.name == "tae":  # the planning method's own check
        assert oracle.seen["think"] == N  # one plan per program: each is its own task


@pytest.mark.parametrize("spec", _accepting("puzzle"), ids=_by_name)
def test_puzzles_are_solved_and_checked_by_the_sandbox(
    oracle: Oracle, run_method: Callable[..., Run], spec: Method
) -> None:
    puzzles = list(Puzzle.objects.filter(sat__in=list(oracle.solutions)))
    assert len(puzzles) == N
    for puzzle in puzzles:
        run = run_method(spec.name, puzzle=puzzle)
        assert run.status == Run.Status.DONE, run.error
        assert run.verdict["status"] == "correct", (puzzle.name, run.verdict)
        assert run.real_trace is not None
        assert run.real_trace.data["result"] == "True"
        assert run.call.startswith("sat(")


@pytest.mark.parametrize("spec", _accepting("task"), ids=_by_name)
def test_reasoning_tasks_are_answered_and_plans_reused(
    oracle: Oracle, run_method: Callable[..., Run], spec: Method
) -> None:
    method = spec.name
    for example in _task_examples():
        run = run_method(method, task_example=example)
        assert run.status == Run.Status.DONE, run.error
        assert run.verdict["status"] == "correct", (str(example), run.verdict)
        assert run.real_trace is None  # nothing of the question runs for real
        if spec.lm_lines:  # the model simulates the helper the written program calls
            assert "look_up_answer" in run.details["program"]
            steps = run.emulated_trace.data["steps"]  # type: ignore[union-attr]
            assert any(s.get("by") == "lm" for s in steps)
    if method == "tae":  # the planning method's own checks
        assert oracle.seen["think"] == 2  # one Think per task, reused for its other instances
        assert Plan.objects.count() == 2
        assert sorted(Plan.objects.values_list("uses", flat=True)) == [N // 2, N // 2]
        reused = Run.objects.filter(method="tae", details__plan_reused=True).count()
        assert reused == N - 2


def test_one_deliberate_error_is_reported_at_its_step(
    oracle: Oracle, run_method: Callable[..., Run]
) -> None:
    program = _programs()[0]
    real = sandbox.run(program.source, call=program.call)
    module_steps = len(real["steps"]) - len(trace_method.call_steps(real["steps"]))
    for k in range(min(5, len(real["steps"]) - module_steps)):
        oracle.error_step = k
        run = run_method("trace", program=program)
        divergence = run.comparison["first_divergence"]
        assert divergence is not None
        assert divergence["real_step"] == module_steps + k
        assert divergence["kind"] == "value"
        assert run.comparison["correct_prefix"] == k


def test_viewers_see_the_divergence_while_the_trace_is_still_streaming(
    oracle: Oracle, run_method: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.runs.events import published
    from playground.runs.pipeline import LiveComparison

    monkeypatch.setattr(LiveComparison, "EVERY_S", 0.0)  # compare after every step
    program = _programs()[1]
    oracle.error_step = 3
    run = run_method("trace", program=program)
    events = published(run.events_key)
    kinds = [e["type"] for e in events]
    progress = [e for e in events if e["type"] == "progress"]
    assert progress, kinds
    assert kinds.index("progress") < kinds.index("done")
    clean = [e for e in progress if e["divergence"] is None]
    wrong = [e for e in progress if e["divergence"] is not None]
    assert [e["steps"] for e in clean] == [1, 2, 3]  # the oracle's first three steps are right
    assert wrong[0]["steps"] == 4
    assert wrong[0]["correct_prefix"] == 3
    assert wrong[0]["divergence"] == run.comparison["first_divergence"]["message"]


def test_an_input_prediction_page_shows_the_call_its_real_run_and_the_verdict(
    oracle: Oracle, run_method: Callable[..., Run], client: Any
) -> None:
    """CRUXEval-I on the run page: the output the model was given, the model's call, what that
    call returned when run in the sandbox (and its steps), the verdict, and the program's own
    run beside it."""
    program = _programs()[0]
    oracle.calls[program.source.rstrip()] = "f(<script>)"  # not Python: never read as a call
    from django.contrib.auth.models import User

    owner = User.objects.create_user("teacher")
    client.force_login(owner)
    run = run_method("input-direct", program=program)
    Run.objects.filter(pk=run.pk).update(owner=owner, anon_owner="")
    page = client.get(run.get_absolute_url()).content.decode()
    assert "The answer has no `assert f(...) == output` line" in page
    assert "<script>)" not in page  # the model's text is escaped wherever it is shown
    oracle.calls[program.source.rstrip()] = program.call
    run = run_method("input-cot", program=program)
    assert run.verdict["status"] == "correct"
    Run.objects.filter(pk=run.pk).update(owner=owner, anon_owner="")
    page = client.get(run.get_absolute_url()).content.decode()
    output = program.expected_output
    assert 'id="model-call-run"' in page
    assert "The model\u2019s call, run for real" in page
    assert "The real execution of the program\u2019s own call" in page
    assert "The model\u2019s call</dt>" in page
    assert "which, run in the sandbox," in page
    from django.utils.html import escape

    assert escape(output) in page
    assert escape(program.call) in page


def test_a_stepping_page_marks_the_wrong_step_and_shows_the_true_one(
    oracle: Oracle, run_method: Callable[..., Run], client: Any
) -> None:
    """A re-synced stepping run with one wrong step: its page lists every graded step, marks
    that one wrong with the model's answer and the real step beside it (escaped), and links it
    to its step of the real trace."""
    from django.contrib.auth.models import User
    from django.utils.html import escape

    program = _programs()[0]
    oracle.error_step = 1
    owner = User.objects.create_user("stepper")
    run = run_method("step", program=program)
    Run.objects.filter(pk=run.pk).update(owner=owner, anon_owner="")
    client.force_login(owner)
    page = client.get(run.get_absolute_url()).content.decode()
    marks = run.verdict["steps"]
    assert 'id="stepping"' in page
    assert page.count('data-status="wrong"') == 1
    assert page.count('data-status="correct"') == len(marks) - 1
    wrong = marks[1]
    assert escape(wrong["truth"]) in page
    assert escape(wrong["answer"]) in page
    assert f'href="#step-{wrong["real_step"] + 1}"' in page
    assert f"(wrong: {', '.join(wrong['wrong'])})" in page
