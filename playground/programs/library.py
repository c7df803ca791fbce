"""Import the built-in library (CRUXEval, HumanEval, P3, BIG-Bench Hard) from the files shipped in
``playground/programs/datasets``. Idempotent: rows are matched by their data-set id and only
changed fields are written, so a second import reports nothing created or updated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from playground.programs.models import Dataset, Program, Puzzle, Task, TaskExample
from playground.programs.signals import sources_changed

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"


@dataclass
class ImportReport:
    dataset: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def __str__(self) -> str:
        return (
            f"{self.dataset:<10} {self.total:>5} items: {self.created} created, "
            f"{self.updated} updated, {self.unchanged} unchanged ({self.seconds:.2f} s)"
        )


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _upsert(
    model: Any,
    existing: Iterable[Any],
    key: tuple[str, ...],
    rows: list[dict[str, Any]],
    report: ImportReport,
) -> None:
    """Create missing rows and update changed ones, matching on ``key``."""
    by_key = {tuple(getattr(obj, f) for f in key): obj for obj in existing}
    to_create: list[models.Model] = []
    to_update: list[models.Model] = []
    changed_fields: set[str] = set()
    for row in rows:
        obj = by_key.get(tuple(row[f] for f in key))
        if obj is None:
            to_create.append(model(**row))
            continue
        changed = [f for f, v in row.items() if getattr(obj, f) != v]
        if changed:
            for f in changed:
                setattr(obj, f, row[f])
            changed_fields.update(changed)
            to_update.append(obj)
        else:
            report.unchanged += 1
    if to_update and any(f.name == "updated_at" for f in model._meta.fields):
        now = timezone.now()
        for obj in to_update:
            obj.updated_at = now  # type: ignore[attr-defined]
        changed_fields.add("updated_at")
    model.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        model.objects.bulk_update(to_update, sorted(changed_fields), batch_size=500)
        if model is Program and "source" in changed_fields:
            # Items recognise their program by a digest of its text, kept with them.
            sources_changed.send(sender=Program, program_ids=[obj.pk for obj in to_update])
    report.created += len(to_create)
    report.updated += len(to_update)


def import_cruxeval(root: Path) -> ImportReport:
    report = ImportReport("cruxeval")
    rows = [
        {
            "dataset": Dataset.CRUXEVAL,
            "external_id": item["id"],
            "title": f"CRUXEval {item['id']}",
            "source": item["code"],
            "call": f"f({item['input']})",
            "expected_output": item["output"],
            "extra": {"input": item["input"]},
            "is_public": True,
        }
        for item in _jsonl(root / "cruxeval" / "cruxeval.jsonl")
    ]
    existing = Program.objects.filter(dataset=Dataset.CRUXEVAL).exclude(external_id="")
    _upsert(Program, existing, ("dataset", "external_id"), rows, report)
    return report


def import_humaneval(root: Path) -> ImportReport:
    report = ImportReport("humaneval")
    rows = []
    for item in _jsonl(root / "humaneval" / "HumanEval.jsonl"):
        # A runnable program: the reference solution followed by the data set's tests.
        source = item["prompt"] + item["canonical_solution"] + "\n\n" + item["test"].strip() + "\n"
        rows.append(
            {
                "dataset": Dataset.HUMANEVAL,
                "external_id": item["task_id"],
                "title": f"{item['task_id']}: {item['entry_point']}",
                "source": source,
                "call": f"check({item['entry_point']})",
                "expected_output": "None",
                "extra": {
                    "prompt": item["prompt"],
                    "canonical_solution": item["canonical_solution"],
                    "test": item["test"],
                    "entry_point": item["entry_point"],
                },
                "is_public": True,
            }
        )
    existing = Program.objects.filter(dataset=Dataset.HUMANEVAL).exclude(external_id="")
    _upsert(Program, existing, ("dataset", "external_id"), rows, report)
    return report


def import_p3(root: Path) -> ImportReport:
    report = ImportReport("p3")
    rows = [
        {
            "name": item["name"],
            "family": item["name"].rsplit(":", 1)[0],
            "source_index": item["index"],
            "sat": item["sat"],
            "ans_type": item["ans_type"],
            "sol_header": item["sol_header"],
            "sol_docstring": item["sol_docstring"],
            "sol_bodies": item["sol_bodies"],
            "module": item["module"],
            "notes": item["notes"],
            "weight": item["weight"],
        }
        for item in _jsonl(root / "p3" / "puzzles.jsonl")
    ]
    _upsert(Puzzle, Puzzle.objects.all(), ("name",), rows, report)
    return report


def import_bbh(root: Path) -> tuple[ImportReport, ImportReport]:
    tasks_report, examples_report = ImportReport("bbh tasks"), ImportReport("bbh")
    files = sorted((root / "bbh").glob("*.json"))
    loaded = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in files}
    _upsert(
        Task,
        Task.objects.all(),
        ("name",),
        [{"name": name, "canary": data.get("canary", "")} for name, data in loaded.items()],
        tasks_report,
    )
    task_ids = dict(Task.objects.filter(name__in=loaded).values_list("name", "id"))
    rows = [
        {"task_id": task_ids[name], "index": i, "input": ex["input"], "target": ex["target"]}
        for name, data in loaded.items()
        for i, ex in enumerate(data["examples"])
    ]
    _upsert(TaskExample, TaskExample.objects.all(), ("task_id", "index"), rows, examples_report)
    return tasks_report, examples_report


def import_library(root: Path = DATASETS_DIR) -> list[ImportReport]:
    """Import every data set in one transaction; returns one report per data set."""
    reports: list[ImportReport] = []
    with transaction.atomic():
        for step in (import_cruxeval, import_humaneval, import_p3):
            t0 = time.perf_counter()
            report = step(root)
            report.seconds = time.perf_counter() - t0
            reports.append(report)
        t0 = time.perf_counter()
        tasks, examples = import_bbh(root)
        examples.seconds = time.perf_counter() - t0
        reports += [tasks, examples]
    return reports
