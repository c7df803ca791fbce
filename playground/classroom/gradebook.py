"""The gradebook of an assignment: every student of the course x every item, the credit that
counts (the best attempt, a grader's override applied), late marks, weighted totals. An item
of a pool counts only for the students who drew it; a varied item's cell names the student's
variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.classroom import pools, variants
from playground.classroom.models import Assignment, Item, Membership, Role, Submission


@dataclass
class Cell:
    credit: float | None = None  # None: nothing graded yet
    attempts: int = 0
    late: bool = False
    overridden: bool = False
    pending: bool = False
    drawn: bool = True  # False: an item of a pool that gave this student another one
    variant: str = ""  # a varied item: the call of the student's own variant


@dataclass
class Row:
    student_id: int
    username: str
    email: str
    cells: list[Cell] = field(default_factory=list)
    total: float = 0.0
    percent: float = 0.0
    possible: float = 0.0  # points of the items this student got (their draw of each pool)


@dataclass
class Gradebook:
    items: list[Item]
    rows: list[Row]
    possible: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON the API gives."""
        return {
            "items": [
                {"id": i.pk, "title": str(i), "mode": i.mode, "points": i.points}
                for i in self.items
            ],
            "possible": self.possible,
            "students": [
                {
                    "id": r.student_id,
                    "username": r.username,
                    "email": r.email,
                    "total": round(r.total, 4),
                    "possible": round(r.possible, 4),
                    "percent": round(r.percent, 2),
                    "items": [
                        {
                            "credit": c.credit,
                            "attempts": c.attempts,
                            "late": c.late,
                            "overridden": c.overridden,
                            "pending": c.pending,
                            "drawn": c.drawn,
                            "variant": c.variant,
                        }
                        for c in r.cells
                    ],
                }
                for r in self.rows
            ],
        }


def build(assignment: Assignment, *, student_id: int | None = None) -> Gradebook:
    """The whole gradebook, or with ``student_id`` only that student's row (none if they are
    not a student of the course), counted the same way from their submissions alone: what the
    LMS passback needs for one grade without reading the whole class's."""
    items = list(assignment.items.order_by("position", "id"))
    students = (
        Membership.objects.filter(course_id=assignment.course_id, role=Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )
    best: dict[tuple[int, int], Cell] = {}
    answered: dict[int, list[int]] = {}  # per student, items in the order first answered
    graded = (
        Submission.objects.filter(item__assignment=assignment)
        .select_related("variant")
        .order_by("submitted_at", "id")
    )
    if student_id is not None:
        students = students.filter(user_id=student_id)
        graded = graded.filter(student_id=student_id)
    for sub in graded:
        seen = answered.setdefault(sub.student_id, [])
        if sub.item_id not in seen:
            seen.append(sub.item_id)
        cell = best.setdefault((sub.student_id, sub.item_id), Cell())
        if sub.variant is not None and not cell.variant:
            cell.variant = sub.variant.call
        cell.attempts += 1
        if sub.status == Submission.Status.PENDING:
            cell.pending = True
            continue
        credit = sub.final_credit
        if credit is not None and (cell.credit is None or credit > cell.credit):
            cell.credit = credit
            cell.late = sub.late
            cell.overridden = sub.override_credit is not None
    # Points possible for a student: every item outside a pool and one item of each pool.
    pooled = pools.by_pool(items)
    possible = sum(i.points for i in items if not i.pool) + sum(
        max(m.points for m in members) for members in pooled.values()
    )
    varied = {i.pk: variants.valid(i) for i in items if variants.is_varied(i)}
    rows: list[Row] = []
    for member in students:
        user = member.user
        row = Row(user.pk, user.get_username(), user.email)
        theirs = pools.draws(assignment.pk, items, user.pk, answered.get(user.pk, []))
        drawn = {i.pk for i in theirs.values()}
        for item in items:
            cell = best.get((user.pk, item.pk), Cell())
            cell.drawn = not item.pool or item.pk in drawn
            if cell.drawn and varied.get(item.pk) and not cell.variant:
                # Not answered yet: the variant they will be asked (shown to the staff only).
                cell.variant = variants.drawn(item, user.pk, varied[item.pk]).call
            row.cells.append(cell)
            if cell.drawn:
                row.total += (cell.credit or 0.0) * item.points
                row.possible += item.points
        row.percent = 100 * row.total / row.possible if row.possible else 0.0
        rows.append(row)
    return Gradebook(items, rows, possible)
