"""The built-in library imports with the exact counts of the shipped data sets, idempotently."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import call_command

from playground.programs.library import import_library
from playground.programs.models import Dataset, Program, Puzzle, Task, TaskExample

pytestmark = pytest.mark.django_db


def test_import_loads_every_item_of_every_data_set() -> None:
    import_library()

    assert Program.objects.filter(dataset=Dataset.CRUXEVAL).count() == 600
    assert Program.objects.filter(dataset=Dataset.HUMANEVAL).count() == 164
    assert Puzzle.objects.count() == 1372
    assert Task.objects.count() == 27
    assert TaskExample.objects.count() == 5207
    # Per-task counts from the data set's SOURCE.md (first 80% of each task).
    per_task = {t.name: t.examples.count() for t in Task.objects.all()}
    assert per_task["causal_judgement"] == 149
    assert per_task["penguins_in_a_table"] == 116
    assert per_task["snarks"] == 142
    assert per_task["navigate"] == 200
    # P3: 46 puzzles have no known solution.
    assert Puzzle.objects.filter(sol_bodies=[]).count() == 46


def test_imported_items_carry_what_the_pages_and_runs_need() -> None:
    import_library()

    sample = Program.objects.get(dataset=Dataset.CRUXEVAL, external_id="sample_0")
    assert sample.source.startswith("def f(")
    assert sample.call.startswith("f(")
    assert sample.call.endswith(")")
    assert sample.expected_output
    assert sample.is_public
    assert sample.owner is None

    human = Program.objects.get(dataset=Dataset.HUMANEVAL, external_id="HumanEval/0")
    assert human.call == "check(has_close_elements)"
    assert "def check(candidate)" in human.source
    compile(human.source, "<HumanEval/0>", "exec")  # the assembled program is valid Python

    puzzle = Puzzle.objects.get(name="Study_2:0")
    assert puzzle.sat.startswith("def sat(s: str)")
    assert puzzle.ans_type == "str"
    assert puzzle.family == "Study_2"
    assert "def sol()" in puzzle.reference_solutions()[0]

    example = TaskExample.objects.get(task__name="boolean_expressions", index=0)
    assert example.target in {"True", "False"}


def test_second_import_changes_nothing() -> None:
    import_library()
    stamps = dict(Program.objects.values_list("id", "updated_at"))

    reports = import_library()

    assert all(r.created == 0 and r.updated == 0 for r in reports), [str(r) for r in reports]
    assert sum(r.unchanged for r in reports) == 600 + 164 + 1372 + 27 + 5207
    assert dict(Program.objects.values_list("id", "updated_at")) == stamps
    assert TaskExample.objects.count() == 5207


def test_import_repairs_an_edited_item_and_restores_a_deleted_one() -> None:
    import_library()
    Program.objects.filter(external_id="sample_3").update(source="tampered")
    Puzzle.objects.filter(name="Study_2:0").delete()

    reports = {r.dataset: r for r in import_library()}

    assert reports["cruxeval"].updated == 1
    assert reports["p3"].created == 1
    assert Program.objects.get(external_id="sample_3").source.startswith("def f(")
    assert Puzzle.objects.filter(name="Study_2:0").exists()


def test_load_library_command_reports_and_is_fast() -> None:
    out = StringIO()
    t0 = time.perf_counter()
    call_command("load_library", stdout=out)
    first = time.perf_counter() - t0
    call_command("load_library", stdout=out)

    assert first < 30, f"import took {first:.1f} s"
    text = out.getvalue()
    assert "7370 rows written" in text
    assert "already up to date" in text
