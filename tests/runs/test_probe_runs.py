"""The probe methods end to end (Celery task, database, judging, run page) against the oracle model,
which answers every probe from a real run: 100% on every probe kind, incremental consistency 1;
made wrong on one chosen question, that probe and no other is graded wrong; the run page lists
every probe, its answers and its step, escaped."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.utils.html import escape

from playground.emulation import probes
from playground.emulation.registry import REGISTRY
from playground.programs.library import import_library
from playground.programs.models import Dataset, Program
from playground.runs.models import Run
from playground.runs.services import start_run
from tests.factories import ProgramFactory
from tests.oracle import Oracle, oracle_server

PROBING = sorted(name for name, m in REGISTRY.items() if m.asks_probes)
# A program without a call (its output is what it prints) with a line that never runs, and one
# whose call raises after some lines ran (no output probe; the others still asked).
PRINTS = (
    "words = ['a', 'bb', '<b>ccc</b>']\ncount = 0\nfor w in words:\n    if len(w) > 1:\n"
    "        count += len(w)\n        print(w)\nif count > 100:\n    print('never')\n"
)
RAISES = "def f(xs):\n    total = 0\n    for x in xs:\n        total += 10 // x\n    return total\n"


@pytest.fixture
def oracle(db: None, eager: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    import_library()
    knows = Oracle()
    with oracle_server(knows) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield knows


@pytest.fixture
def run_method(
    oracle: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Run]:
    def start(method: str, program: Program, seed: int | None = None) -> Run:
        with django_capture_on_commit_callbacks(execute=True):
            run = start_run(
                program=program,
                user=AnonymousUser(),
                anon_token="probe-test",
                method=method,
                model="oracle",
                seed=seed,
                max_tokens=REGISTRY[method].max_tokens,
            )
        return Run.objects.get(pk=run.pk)

    return start


def _programs() -> list[Program]:
    library = list(Program.objects.filter(dataset=Dataset.CRUXEVAL).order_by("id")[:6])
    return [
        *library,
        ProgramFactory(source=PRINTS, call=""),
        ProgramFactory(source=RAISES, call="f([3, 2, 0, 1])"),
    ]


@pytest.mark.parametrize("method", PROBING)
def test_the_oracle_scores_every_probe_kind_right(
    oracle: Oracle, run_method: Callable[..., Run], method: str
) -> None:
    asked: dict[str, int] = {}
    for program in _programs():
        run = run_method(method, program)
        assert run.status == Run.Status.DONE, run.error
        verdict = run.verdict
        assert verdict["status"] == "correct", (program.source, verdict["explanation"])
        marks = verdict["probes"]
        assert len(marks) == len(run.details["probes"]) >= 3
        assert all(m["status"] == "correct" for m in marks), marks
        for kind, row in verdict["scores"].items():
            assert row["correct"] == row["asked"] > 0
            asked[kind] = asked.get(kind, 0) + row["asked"]
        assert verdict["consistency"]["ic"] == 1.0
        assert verdict["consistency"]["prefix"] == 1.0
        assert all(m["step"] < len(run.real_trace.data["steps"]) for m in marks)  # type: ignore[union-attr]
        if method == "probe-chain":  # one call per question
            assert run.model_calls == len(marks)
        else:
            assert run.model_calls == 1
        assert run.emulated_text
        has_output = any(m["kind"] == "output" for m in marks)
        assert has_output == (program.source != RAISES)
        if has_output:  # the output answer is the prediction, compared with the value
            assert run.comparison["result_match"] is (True if program.call else None)
    assert set(asked) == set(probes.KINDS), asked
    assert oracle.seen["probe"] >= len(_programs())
    assert not oracle.seen["unknown"]


@pytest.mark.parametrize("method", PROBING)
def test_one_wrong_answer_is_graded_wrong_exactly_there(
    oracle: Oracle, run_method: Callable[..., Run], method: str
) -> None:
    program = _programs()[0]
    first = run_method(method, program)
    count = len(first.details["probes"])
    positions = range(1, count + 1) if method == "probe" else [1, count // 2, count]
    for wrong in positions:
        oracle.probe_wrong = wrong
        run = run_method(method, program)
        marks = run.verdict["probes"]
        assert [m["status"] for m in marks] == [
            "wrong" if n == wrong else "correct" for n in range(1, count + 1)
        ], wrong
        assert run.verdict["status"] == "wrong"
        assert f"{count - 1} of {count} probes" in run.verdict["explanation"]
        kind = marks[wrong - 1]["kind"]
        assert run.verdict["scores"][kind]["wrong"] == 1
        chained = marks[wrong - 1].get("chain") is not None or kind == "output"
        assert (run.verdict["consistency"]["ic"] < 1.0) is chained


def test_the_run_page_marks_each_probe_at_its_step(
    oracle: Oracle, run_method: Callable[..., Run], client: Any
) -> None:
    owner = User.objects.create_user("teacher")
    client.force_login(owner)
    program = ProgramFactory(source=PRINTS, call="", owner=owner)
    oracle.probe_wrong = 2
    run = run_method("probe", program)
    Run.objects.filter(pk=run.pk).update(owner=owner, anon_owner="")
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="probe-list"' in page
    marks = run.verdict["probes"]
    assert page.count('class="probe probe-correct"') == len(marks) - 1
    assert page.count('class="probe probe-wrong"') == 1
    assert page.count("✗ wrong") == 1
    for mark in marks:
        assert escape(mark["question"]) in page
        assert f'data-step="{mark["step"]}"' in page
        step = mark["step"] + 1  # a link that shows the step in the viewer below
        assert f'<a href="#step-{step}" class="probe-step">step {step}</a> of the real' in page
    # What the program printed is a true answer, shown escaped.
    assert "<b>ccc</b>" not in page
    assert escape("<b>ccc</b>") in page


def test_humaneval_programs_are_probed_with_their_tests_as_the_call(
    oracle: Oracle, run_method: Callable[..., Run]
) -> None:
    """A HumanEval program of the library is its solution and its tests, run by the call
    ``check(<entry point>)``: the probes reach into the solution through the tests' calls."""
    programs = list(Program.objects.filter(dataset=Dataset.HUMANEVAL).order_by("id")[:5])
    assert len(programs) == 5
    inside = 0
    for program in programs:
        assert program.call.startswith("check(")
        run = run_method("probe", program)
        assert run.status == Run.Status.DONE, run.error
        assert run.verdict["status"] == "correct", run.verdict["explanation"]
        marks = run.verdict["probes"]
        assert {"coverage", "state", "path", "sequence"} <= {m["kind"] for m in marks}
        output = next(m for m in marks if m["kind"] == "output")
        assert output["truth"] == "None"  # check() returns None when every test passes
        # The solution's lines, between the prompt (signature, docstring) and the tests.
        first = len(program.extra["prompt"].splitlines()) + 1
        last = len((program.extra["prompt"] + program.extra["canonical_solution"]).splitlines())
        inside += sum(1 for m in marks if m.get("line") and first <= m["line"] <= last)
    assert inside >= len(programs)  # the probes are about the solution, not only the tests


def test_a_program_that_cannot_run_gets_no_probes_and_no_blame(
    oracle: Oracle, run_method: Callable[..., Run]
) -> None:
    """No probe can be made of a program that does not parse: the model is never asked, and
    the verdict says so as "cannot compare", not as the model's mistake."""
    program = ProgramFactory(source="def f(:\n    return 1\n", call="f()")
    run = run_method("probe", program)
    assert run.status == Run.Status.DONE, run.error
    assert run.verdict["status"] == "unknown"
    assert "No probe could be made" in run.verdict["explanation"]
    assert run.model_calls == 0
    assert not oracle.seen["probe"]
