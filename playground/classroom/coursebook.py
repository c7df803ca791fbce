"""The course gradebook: every student x every assignment that has opened, grouped in categories
with weights, and a course grade.

An assignment's percent for a student is its gradebook's (``gradebook.build``: the best attempt
per item, overrides applied, points weighted, only their draw of each pool). A category's
percent is the mean of its assignments' percents weighted by each assignment's ``weight``; the
course grade is the mean of the categories' percents weighted by the course's category weights
(a category not named weighs 1; a weight of 0 leaves it out). Staff only: it counts every
result, published or not. Reads only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from playground.classroom import gradebook
from playground.classroom.models import Assignment, Course, Membership, Role

DEFAULT_CATEGORY = "Assignments"
MAX_WEIGHT = 1000.0


def category_of(assignment: Assignment) -> str:
    return assignment.category.strip() or DEFAULT_CATEGORY


@dataclass
class Category:
    name: str
    weight: float
    assignments: list[Assignment]
    share: float = 0.0  # its part of the course grade, in percent


@dataclass
class Row:
    student_id: int
    username: str
    email: str
    percents: list[float | None] = field(default_factory=list)  # per assignment, in order
    categories: list[float | None] = field(default_factory=list)  # per category, in order
    total: float | None = None


@dataclass
class CourseBook:
    assignments: list[Assignment]
    categories: list[Category]
    rows: list[Row]


def _weighted(pairs: list[tuple[float, float | None]]) -> float | None:
    counted = [(w, p) for w, p in pairs if p is not None and w > 0]
    total = sum(w for w, _ in counted)
    return sum(w * p for w, p in counted) / total if total else None


def build(course: Course, now: datetime | None = None) -> CourseBook:
    now = now or timezone.now()
    assignments = list(course.assignments.filter(opens_at__lte=now).order_by("opens_at", "id"))
    weights = course.category_weights if isinstance(course.category_weights, dict) else {}
    categories: dict[str, Category] = {}
    for a in assignments:
        name = category_of(a)
        if name not in categories:
            weight = weights.get(name, 1.0)
            categories[name] = Category(
                name, float(weight) if isinstance(weight, int | float) else 1.0, []
            )
        categories[name].assignments.append(a)
    ordered = [a for c in categories.values() for a in c.assignments]
    total_weight = sum(c.weight for c in categories.values() if c.weight > 0)
    for c in categories.values():
        c.share = 100 * c.weight / total_weight if total_weight and c.weight > 0 else 0.0
    books = {a.pk: {r.student_id: r for r in gradebook.build(a).rows} for a in ordered}
    students = (
        Membership.objects.filter(course=course, role=Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )
    rows: list[Row] = []
    for member in students:
        user = member.user
        row = Row(user.pk, user.get_username(), user.email)
        percent: dict[int, float | None] = {}
        for a in ordered:
            got = books[a.pk].get(user.pk)
            percent[a.pk] = got.percent if got is not None and got.possible else None
            row.percents.append(percent[a.pk])
        for c in categories.values():
            row.categories.append(
                _weighted([(max(a.weight, 0.0), percent[a.pk]) for a in c.assignments])
            )
        row.total = _weighted(
            [(c.weight, p) for c, p in zip(categories.values(), row.categories, strict=True)]
        )
        rows.append(row)
    return CourseBook(ordered, list(categories.values()), rows)


def parse_weights(text: str) -> dict[str, float]:
    """Category weights as typed, one a line: ``Exams: 60``. Raises ValueError with the
    reason."""
    weights: dict[str, float] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        name, colon, raw = line.rpartition(":")
        name = name.strip()
        if not colon or not name:
            raise ValueError(f"{line.strip()[:60]!r}: write a category, a colon and its weight.")
        if len(name) > 40:
            raise ValueError(f"{name[:40]}…: a category name has at most 40 characters.")
        try:
            weight = float(raw.strip())
        except ValueError:
            raise ValueError(f"{name}: the weight is a number, e.g. 40.") from None
        if not 0 <= weight <= MAX_WEIGHT or weight != weight:
            raise ValueError(f"{name}: the weight is a number from 0 to {MAX_WEIGHT:g}.")
        weights[name] = weight
    if len(weights) > 50:
        raise ValueError("At most 50 categories.")
    return weights


def weights_text(course: Course) -> str:
    weights = course.category_weights if isinstance(course.category_weights, dict) else {}
    return "\n".join(f"{name}: {weight:g}" for name, weight in weights.items())


def csv_rows(book: CourseBook) -> list[list[str]]:
    """The course gradebook as CSV rows (not yet made formula-safe: the view does)."""

    def pct(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    header = [
        "username",
        "email",
        *(f"{category_of(a)}: {a.title}" for a in book.assignments),
        *(f"{c.name} (category)" for c in book.categories),
        "course grade",
    ]
    out = [header]
    for row in book.rows:
        out.append(
            [
                row.username,
                row.email,
                *(pct(p) for p in row.percents),
                *(pct(p) for p in row.categories),
                pct(row.total),
            ]
        )
    return out
