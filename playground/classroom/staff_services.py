"""Writes of the staff pages that ``services`` does not cover: roles, rosters sent by an
assistant, items and their order, extensions, removing an override."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from playground.classroom import services
from playground.classroom.models import (
    Assignment,
    Course,
    Extension,
    Item,
    Membership,
    Mode,
    Role,
    Submission,
)
from playground.classroom.services import ClassroomError, RosterReport
from playground.programs.models import Dataset, Program, Puzzle


def change_role(member: Membership, role: str) -> None:
    """Give a member another role; the course always keeps at least one instructor."""
    if role not in Role.values:
        raise ClassroomError("Choose instructor, assistant or student.")
    with transaction.atomic():
        # Lock the instructors so that two instructors demoting each other at once cannot
        # leave the course with none.
        instructors = list(
            Membership.objects.select_for_update()
            .filter(course_id=member.course_id, role=Role.INSTRUCTOR)
            .values_list("pk", flat=True)
        )
        if role != Role.INSTRUCTOR and instructors == [member.pk]:
            raise ClassroomError(
                "A course needs an instructor: make someone else an instructor first."
            )
        Membership.objects.filter(pk=member.pk).update(role=role)
    member.role = role


def remove_member(member: Membership) -> None:
    """Take a person out of the course (their submissions stay, out of the gradebook)."""
    with transaction.atomic():
        instructors = list(
            Membership.objects.select_for_update()
            .filter(course_id=member.course_id, role=Role.INSTRUCTOR)
            .values_list("pk", flat=True)
        )
        if instructors == [member.pk]:
            raise ClassroomError("The course's only instructor cannot be removed.")
        member.delete()


def import_roster_as(course: Course, data: bytes, *, member: Membership) -> RosterReport:
    """``services.import_roster``, after the checks it lacks (a NUL byte or a huge field would
    reach the database or the csv module as an error page); and an assistant may only add
    students: a row that gives the assistant role is reported and skipped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return services.import_roster(course, data)  # which says where the bad byte is
    if "\x00" in text:
        raise ClassroomError("The file contains NUL bytes: it is not a CSV text file.")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ClassroomError(f"The file is not a readable CSV file ({exc}).") from None
    refused: list[str] = []
    if member.role != Role.INSTRUCTOR:
        for number, row in enumerate(rows, start=1):
            if len(row) > 1 and row[1].strip().lower() == Role.ASSISTANT:
                refused.append(f"Row {number}: only an instructor may add assistants.")
                rows[number - 1] = []  # an empty row keeps the numbering of the others
    if not refused:
        return services.import_roster(course, data)
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    report = services.import_roster(course, out.getvalue().encode("utf-8"))
    report.errors = sorted(refused + report.errors, key=_row_number)
    return report


def _row_number(message: str) -> int:
    head = message.removeprefix("Row ").partition(":")[0]
    return int(head) if head.isdigit() else 0


@dataclass
class ItemData:
    """What the item form decided (see ``forms.ItemForm``)."""

    mode: str
    title: str
    prompt: str
    points: float
    program: Program | None
    puzzle: Puzzle | None
    new_source: str | None  # a new program written on the form
    new_call: str
    checkpoints: list[dict[str, Any]]
    model: str
    method: str


def save_item(
    *, assignment: Assignment, item: Item | None, data: ItemData, by: Any
) -> tuple[Item, bool]:
    """Create or update an item; (re)start its answer key when what it is graded against changed
    (program, puzzle, mode, model or method). Returns (item, whether a new key was started)."""
    with transaction.atomic():
        program = data.program
        if data.new_source is not None:
            name = data.title or f"{assignment.title}: item"
            program = Program.objects.create(
                title=name[:200],
                source=data.new_source,
                call=data.new_call,
                dataset=Dataset.USER,
                owner=by,
                is_public=False,
            )
        if item is None:
            last = assignment.items.aggregate(last=Max("position"))["last"]
            item = Item(assignment=assignment, position=0 if last is None else last + 1)
            changed = True
        else:
            model_changed = item.model != data.model or item.method != data.method
            changed = (
                item.mode != data.mode
                or item.program_id != (program.pk if program else None)
                or item.puzzle_id != (data.puzzle.pk if data.puzzle else None)
                or (data.mode in (Mode.DIVERGENCE, Mode.BEAT_MODEL) and model_changed)
            )
        item.mode = data.mode
        item.title = data.title
        item.prompt = data.prompt
        item.points = data.points
        item.program = program if data.mode != Mode.PUZZLE else None
        item.puzzle = data.puzzle if data.mode == Mode.PUZZLE else None
        item.checkpoints = data.checkpoints if data.mode == Mode.TRACE else []
        model_mode = data.mode in (Mode.DIVERGENCE, Mode.BEAT_MODEL)
        item.model = data.model if model_mode else ""
        item.method = data.method if model_mode else ""
        if changed:
            item.key_run = None
        item.save()
        if changed:
            services.prepare_item(item, by=by)
    return item, changed


def prepare_again(item: Item, *, by: Any) -> None:
    """Start the answer key anew (after a failed run, or a model that was down)."""
    with transaction.atomic():
        services.prepare_item(item, by=by)


def move_item(item: Item, direction: str) -> bool:
    """Swap the item with its neighbour above ("up") or below ("down"); False at an end."""
    with transaction.atomic():
        items = list(
            Item.objects.select_for_update()
            .filter(assignment_id=item.assignment_id)
            .order_by("position", "id")
        )
        index = next(i for i, other in enumerate(items) if other.pk == item.pk)
        other = index - 1 if direction == "up" else index + 1
        if not 0 <= other < len(items):
            return False
        items[index], items[other] = items[other], items[index]
        for position, each in enumerate(items):  # renumber: positions may have had gaps or ties
            if each.position != position:
                Item.objects.filter(pk=each.pk).update(position=position)
    return True


def delete_item(item: Item) -> int:
    """Delete an item and its submissions; returns how many submissions went with it."""
    with transaction.atomic():
        count, _ = Submission.objects.filter(item=item).delete()
        item.delete()
    return count


def set_extension(
    *, assignment: Assignment, student: Any, due_at: datetime, late_until: datetime | None
) -> Extension:
    extension, _ = Extension.objects.update_or_create(
        assignment=assignment,
        student=student,
        defaults={"due_at": due_at, "late_until": late_until},
    )
    return extension


def clear_override(submission: Submission) -> None:
    """Undo a grader's override: the graded credit counts again."""
    submission.override_credit = None
    submission.override_comment = ""
    submission.overridden_by = None
    submission.overridden_at = None
    submission.save(
        update_fields=["override_credit", "override_comment", "overridden_by", "overridden_at"]
    )
