"""The built-in library imports with the exact counts of the shipped data sets (the complete
sources: each SOURCE.md), idempotently, and upgrades a database that holds an older part of them
in place."""

from __future__ import annotations

import json
import shutil
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from playground.classroom.models import Assignment, Course, Item, Mode
from playground.programs.library import DATASETS_DIR, import_library
from playground.programs.models import Dataset, Program, Puzzle, Task, TaskExample
from tests.factories import RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_import_loads_every_item_of_every_data_set() -> None:
    import_library()

    assert Program.objects.filter(dataset=Dataset.CRUXEVAL).count() == 800
    assert Program.objects.filter(dataset=Dataset.HUMANEVAL).count() == 164
    assert Puzzle.objects.count() == 1715
    assert Task.objects.count() == 27
    assert TaskExample.objects.count() == 6511
    # Per-task counts of the source (BIG-Bench Hard's own files: 250 but for three tasks).
    per_task = {t.name: t.examples.count() for t in Task.objects.all()}
    assert per_task["causal_judgement"] == 187
    assert per_task["penguins_in_a_table"] == 146
    assert per_task["snarks"] == 178
    assert per_task["navigate"] == 250
    assert sorted(set(per_task.values())) == [146, 178, 187, 250]
    # P3: 54 puzzles have no known solution (SOURCE.md).
    assert Puzzle.objects.filter(sol_bodies=[]).count() == 54
    assert Program.objects.filter(dataset=Dataset.CRUXEVAL, external_id="sample_799").exists()


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
    assert sum(r.unchanged for r in reports) == 800 + 164 + 1715 + 27 + 6511
    assert dict(Program.objects.values_list("id", "updated_at")) == stamps
    assert TaskExample.objects.count() == 6511


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
    assert "9217 rows written" in text
    assert "already up to date" in text


def _older_library(root: Path) -> None:
    """The part of the sources the library shipped before issue 16, in ``root``: CRUXEval's
    first 600 items, the P3 puzzles whose index mod 5 != 0, each BIG-Bench Hard task's first
    80%, and HumanEval whole."""
    for name in ("cruxeval", "p3", "bbh", "humaneval"):
        (root / name).mkdir(parents=True)
    lines = (DATASETS_DIR / "cruxeval" / "cruxeval.jsonl").read_text().splitlines(keepends=True)
    (root / "cruxeval" / "cruxeval.jsonl").write_text("".join(lines[:600]))
    puzzles = (DATASETS_DIR / "p3" / "puzzles.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in puzzles if json.loads(line)["index"] % 5 != 0]
    (root / "p3" / "puzzles.jsonl").write_text("".join(kept))
    for path in (DATASETS_DIR / "bbh").glob("*.json"):
        data = json.loads(path.read_text())
        data["examples"] = data["examples"][: len(data["examples"]) * 4 // 5]
        (root / "bbh" / path.name).write_text(json.dumps(data))
    shutil.copy(DATASETS_DIR / "humaneval" / "HumanEval.jsonl", root / "humaneval")


def test_a_database_with_the_older_part_is_upgraded_in_place(tmp_path: Path) -> None:
    _older_library(tmp_path)
    import_library(tmp_path)
    assert Program.objects.filter(dataset=Dataset.CRUXEVAL).count() == 600
    assert Puzzle.objects.count() == 1372
    assert TaskExample.objects.count() == 5207
    # What users made with the older library: a run of an item, an assignment that uses it and
    # a puzzle, a BIG-Bench Hard example's id.
    program = Program.objects.get(dataset=Dataset.CRUXEVAL, external_id="sample_42")
    puzzle = Puzzle.objects.get(name="Study_2:0")
    example = TaskExample.objects.get(task__name="navigate", index=7)
    owner = UserFactory()
    run = RunFactory(program=program, owner=owner)
    course = Course.objects.create(title="C", created_by=owner)
    now = timezone.now()
    homework = Assignment.objects.create(
        course=course, title="A", opens_at=now, due_at=now + timedelta(days=1)
    )
    item = Item.objects.create(assignment=homework, mode=Mode.OUTPUT, program=program)
    puzzle_item = Item.objects.create(assignment=homework, mode=Mode.PUZZLE, puzzle=puzzle)

    reports = {r.dataset: r for r in import_library()}

    # Only the new items were written: the old rows kept their ids and were not touched.
    assert (reports["cruxeval"].created, reports["cruxeval"].updated) == (200, 0)
    assert (reports["p3"].created, reports["p3"].updated) == (343, 0)
    assert (reports["bbh"].created, reports["bbh"].updated) == (1304, 0)
    assert reports["humaneval"].created == reports["humaneval"].updated == 0
    assert Program.objects.filter(dataset=Dataset.CRUXEVAL).count() == 800
    assert Puzzle.objects.count() == 1715
    assert TaskExample.objects.count() == 6511
    run.refresh_from_db()
    assert run.program_id == program.pk
    assert Item.objects.get(pk=item.pk).program_id == program.pk
    assert Item.objects.get(pk=puzzle_item.pk).puzzle_id == puzzle.pk
    assert TaskExample.objects.get(pk=example.pk).index == 7
    assert Program.objects.get(pk=program.pk).external_id == "sample_42"
