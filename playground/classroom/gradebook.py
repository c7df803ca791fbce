"""The gradebook of an assignment: every student of the course x every item, the credit that
counts (the best attempt, a grader's override applied), late marks, weighted totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.classroom.models import Assignment, Item, Membership, Role, Submission


@dataclass
class Cell:
    credit: float | None = None  # None: nothing graded yet
    attempts: int = 0
    late: bool = False
    overridden: bool = False
    pending: bool = False


@dataclass
class Row:
    student_id: int
    username: str
    email: str
    cells: list[Cell] = field(default_factory=list)
    total: float = 0.0
    percent: float = 0.0


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
                    "percent": round(r.percent, 2),
                    "items": [
                        {
                            "credit": c.credit,
                            "attempts": c.attempts,
                            "late": c.late,
                            "overridden": c.overridden,
                            "pending": c.pending,
                        }
                        for c in r.cells
                    ],
                }
                for r in self.rows
            ],
        }


def build(assignment: Assignment) -> Gradebook:
    items = list(assignment.items.order_by("position", "id"))
    students = (
        Membership.objects.filter(course_id=assignment.course_id, role=Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )
    best: dict[tuple[int, int], Cell] = {}
    for sub in Submission.objects.filter(item__assignment=assignment).order_by("attempt"):
        cell = best.setdefault((sub.student_id, sub.item_id), Cell())
        cell.attempts += 1
        if sub.status == Submission.Status.PENDING:
            cell.pending = True
            continue
        credit = sub.final_credit
        if credit is not None and (cell.credit is None or credit > cell.credit):
            cell.credit = credit
            cell.late = sub.late
            cell.overridden = sub.override_credit is not None
    possible = sum(i.points for i in items)
    rows: list[Row] = []
    for member in students:
        user = member.user
        row = Row(user.pk, user.get_username(), user.email)
        for item in items:
            cell = best.get((user.pk, item.pk), Cell())
            row.cells.append(cell)
            row.total += (cell.credit or 0.0) * item.points
        row.percent = 100 * row.total / possible if possible else 0.0
        rows.append(row)
    return Gradebook(items, rows, possible)
