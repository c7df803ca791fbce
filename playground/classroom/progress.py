"""A student's own progress, as their pages show it: per item the attempts and the best credit,
per assignment a status, the window with their extension, and the score when feedback is
allowed. Reads only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from playground.classroom.models import Assignment, Course, Feedback, Item, Submission

NOT_STARTED, IN_PROGRESS, SUBMITTED, LATE, GRADED = (
    "not_started",
    "in_progress",
    "submitted",
    "late",
    "graded",
)
STATUS_LABELS = {
    NOT_STARTED: "Not started",
    IN_PROGRESS: "In progress",
    SUBMITTED: "Submitted",
    LATE: "Late",
    GRADED: "Graded",
}


def points(value: float) -> str:
    """Points as people write them: 2, 0.5, 1.25."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def feedback_allowed(assignment: Assignment, student: Any, now: datetime | None = None) -> bool:
    """Grades and results: after each attempt, or once this student's window has ended."""
    if assignment.feedback == Feedback.AFTER_ATTEMPT:
        return True
    return assignment.window(student)[1] < (now or timezone.now())


def answer_revealed(
    assignment: Assignment,
    student: Any,
    *,
    attempts: int,
    best_score: float | None,
    now: datetime | None = None,
) -> bool:
    """Whether a student may see the expected answer of an item (the real value, the key's
    trace, the model's answer): only once it can no longer help them, i.e. their window has
    ended, they got it right, or they have no attempts left. Before that, feedback after an
    attempt says right or wrong, never what the answer is."""
    if assignment.window(student)[1] < (now or timezone.now()):
        return True
    if not feedback_allowed(assignment, student, now):
        return False
    if best_score is not None and best_score >= 1.0:
        return True
    return assignment.max_attempts is not None and attempts >= assignment.max_attempts


GUARDED_MESSAGE = {1.0: "Right."}


def guarded_message(submission: Submission, revealed: bool) -> str:
    """The grader's message, or (while the answer must stay hidden) only how it went."""
    message = str(submission.feedback.get("message", ""))
    if revealed or submission.item.mode in ("puzzle", "trace"):
        return message  # a puzzle's or a checkpoint count's message names no expected value
    if submission.score is not None and submission.score >= 1.0:
        return "Right."
    return "Not right: try again."


@dataclass
class ItemProgress:
    item: Item
    max_attempts: int | None
    submissions: list[Submission] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.submissions)

    @property
    def attempts_left(self) -> int | None:
        if self.max_attempts is None:
            return None
        return max(0, self.max_attempts - self.attempts)

    @property
    def pending(self) -> bool:
        return any(s.status == Submission.Status.PENDING for s in self.submissions)

    @property
    def graded(self) -> list[Submission]:
        return [s for s in self.submissions if s.status == Submission.Status.GRADED]

    @property
    def best(self) -> float | None:
        """The credit that counts: the best graded attempt, a grader's override applied."""
        credits = [s.final_credit for s in self.graded if s.final_credit is not None]
        return max(credits) if credits else None

    @property
    def latest(self) -> Submission | None:
        return self.submissions[-1] if self.submissions else None


@dataclass
class AssignmentProgress:
    assignment: Assignment
    due: datetime
    end: datetime
    now: datetime
    feedback: bool
    items: list[ItemProgress]

    @property
    def is_late_period(self) -> bool:
        return self.due < self.now <= self.end

    @property
    def is_closed(self) -> bool:
        return self.now > self.end

    @property
    def status(self) -> str:
        attempted = sum(1 for p in self.items if p.attempts)
        pending = any(p.pending for p in self.items)
        if self.is_closed and not pending:
            return GRADED
        if self.items and attempted == len(self.items):
            return SUBMITTED
        if self.is_late_period:
            return LATE
        return IN_PROGRESS if attempted else NOT_STARTED

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def possible(self) -> float:
        return sum(p.item.points for p in self.items)

    @property
    def score(self) -> float:
        """Points earned (the best attempt of each item times its points)."""
        return sum((p.best or 0.0) * p.item.points for p in self.items)

    @property
    def score_text(self) -> str:
        return f"{points(self.score)} / {points(self.possible)}"

    @property
    def percent(self) -> float:
        return 100 * self.score / self.possible if self.possible else 0.0


def _build(
    assignment: Assignment,
    student: Any,
    items: Iterable[Item],
    submissions: Iterable[Submission],
    now: datetime,
) -> AssignmentProgress:
    by_item: dict[int, list[Submission]] = {}
    for sub in submissions:
        by_item.setdefault(sub.item_id, []).append(sub)
    due, end = assignment.window(student)
    return AssignmentProgress(
        assignment=assignment,
        due=due,
        end=end,
        now=now,
        feedback=feedback_allowed(assignment, student, now),
        items=[
            ItemProgress(item, assignment.max_attempts, by_item.get(item.pk, [])) for item in items
        ],
    )


def for_assignment(
    assignment: Assignment, student: Any, now: datetime | None = None
) -> AssignmentProgress:
    now = now or timezone.now()
    items = list(assignment.items.order_by("position", "id"))
    submissions = Submission.objects.filter(
        item__assignment=assignment, student_id=student.pk
    ).order_by("attempt")
    return _build(assignment, student, items, submissions, now)


def for_course(
    course: Course, student: Any, now: datetime | None = None
) -> list[AssignmentProgress]:
    """The assignments a student sees (open or past, not future), with their progress."""
    now = now or timezone.now()
    assignments = list(course.assignments.filter(opens_at__lte=now).order_by("opens_at", "id"))
    items: dict[int, list[Item]] = {}
    for item in Item.objects.filter(assignment__in=assignments).order_by("position", "id"):
        items.setdefault(item.assignment_id, []).append(item)
    submissions: dict[int, list[Submission]] = {}
    for sub in (
        Submission.objects.filter(item__assignment__in=assignments, student_id=student.pk)
        .select_related("item")
        .order_by("attempt")
    ):
        submissions.setdefault(sub.item.assignment_id, []).append(sub)
    return [
        _build(a, student, items.get(a.pk, []), submissions.get(a.pk, []), now) for a in assignments
    ]


def for_item(item: Item, student: Any) -> ItemProgress:
    submissions = list(
        Submission.objects.filter(item=item, student_id=student.pk).order_by("attempt")
    )
    return ItemProgress(item, item.assignment.max_attempts, submissions)
