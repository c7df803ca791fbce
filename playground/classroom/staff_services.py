"""Writes of the staff pages that ``services`` does not cover: roles and removals, deleting a
course, an assignment or an item (each logged in the audit log), items and their order,
extensions, removing an override."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from playground.classroom import audit, services
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
from playground.classroom.services import ClassroomError
from playground.programs.models import Dataset, Program, Puzzle


def change_role(member: Membership, role: str, *, by: Any) -> None:
    """Give a member another role (an instructor's decision, which also settles a staff role
    waiting for confirmation); the course always keeps at least one instructor."""
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
        before = member.role
        Membership.objects.filter(pk=member.pk).update(role=role, pending_role="")
        audit.record(
            audit.Action.ROLE_CHANGED,
            course=member.course,
            actor=by,
            subject=member.user,
            before=before,
            after=role,
        )
    member.role = role
    member.pending_role = ""


def settle_pending_role(member: Membership, *, confirm: bool, by: Any) -> None:
    """An instructor confirms (or refuses) the staff role an accepted invitation asked for."""
    with transaction.atomic():
        current = Membership.objects.select_for_update().get(pk=member.pk)
        if not current.pending_role:
            raise ClassroomError("No role is waiting for confirmation: nothing changed.")
        asked = current.pending_role
        if confirm:
            current.role = asked
        current.pending_role = ""
        current.save(update_fields=["role", "pending_role"])
        audit.record(
            audit.Action.ROLE_CONFIRMED if confirm else audit.Action.ROLE_REFUSED,
            course=member.course,
            actor=by,
            subject=member.user,
            role=asked,
        )
    member.role, member.pending_role = current.role, ""


def remove_member(member: Membership, *, by: Any) -> None:
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
        audit.record(
            audit.Action.MEMBER_REMOVED,
            course=member.course,
            actor=by,
            subject=member.user,
            role=member.role,
        )


def delete_course(course: Course, *, by: Any) -> None:
    """Delete the course with everything in it; its audit log stays (no foreign key)."""
    with transaction.atomic():
        counts = {
            "assignments": course.assignments.count(),
            "members": course.memberships.count(),
            "submissions": Submission.objects.filter(item__assignment__course=course).count(),
        }
        audit.record(audit.Action.COURSE_DELETED, course=course, actor=by, **counts)
        course.delete()


def delete_assignment(assignment: Assignment, *, by: Any) -> None:
    with transaction.atomic():
        submissions = Submission.objects.filter(item__assignment=assignment).count()
        audit.record(
            audit.Action.ASSIGNMENT_DELETED,
            course=assignment.course,
            actor=by,
            assignment=assignment.title,
            assignment_id=assignment.pk,
            items=assignment.items.count(),
            submissions=submissions,
        )
        assignment.delete()


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
        item.key_check = None  # checkpoints may have changed: the key is checked again
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


def delete_item(item: Item, *, by: Any) -> int:
    """Delete an item and its submissions; returns how many submissions went with it."""
    with transaction.atomic():
        count, _ = Submission.objects.filter(item=item).delete()
        audit.record(
            audit.Action.ITEM_DELETED,
            course=item.assignment.course,
            actor=by,
            assignment=item.assignment.title,
            item=str(item),
            item_id=item.pk,
            submissions=count,
        )
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
