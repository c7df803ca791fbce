"""A student's own progress, as their pages show it: per item the attempts and the best credit,
per assignment a status, the window with their extension, and the score when feedback is
allowed; and the item page's policy: whether a student may answer now (``submit_refusal``, the
same rule ``submissions.submit`` enforces), what of the expected answer they may see (``reveal``,
``key_trace_shown``, ``feedback_details``). Reads only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from playground.classroom import keys, pools, variants
from playground.classroom.models import Assignment, Course, Item, Submission
from playground.classroom.visibility import State, results_shown, site_time, state_of

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


def feedback_allowed(
    item: Item, student: Any, now: datetime | None = None, *, state: State | None = None
) -> bool:
    """Grades and results of this item: as its results rule and exam mode say (the hiding
    policy's ``Surface.SCORE``, visibility.results_shown)."""
    return results_shown(item, student, now, state=state)


def answer_revealed(
    item: Item,
    student: Any,
    *,
    attempts: int,
    best_score: float | None,
    now: datetime | None = None,
) -> bool:
    """Whether a student may see the expected answer of an item (the real value, the key's
    trace, the model's answer): only once it can no longer help them, i.e. their window has
    ended, they got it right, or they have no attempts left. Before that, feedback after an
    attempt says right or wrong, never what the answer is. Never while the item's results are
    not shown (after the due time, unpublished, exam mode): the answer would tell the score."""
    assignment = item.assignment
    if not feedback_allowed(item, student, now):
        return False
    if assignment.window(student)[1] < (now or timezone.now()):
        return True
    if best_score is not None and best_score >= 1.0:
        return True
    return assignment.max_attempts is not None and attempts >= assignment.max_attempts


def key_refusal(item: Item) -> str:
    """Why students cannot answer the item now (its key is not ready), or ""."""
    if getattr(item, "variant", False) is None and variants.is_varied(item):
        # A varied item with no valid variant for the student (variants.for_student).
        if not variants.progress(item).done:
            return "This item is still being prepared: try again in a moment."
        return (
            "This item cannot be answered yet: none of its variants can be asked, which your "
            "instructor must fix. No attempt was used."
        )
    status = keys.key_status(item)
    if status.ready:
        return ""
    if status.state == keys.PREPARING:
        return "This item is still being prepared: try again in a moment."
    return (
        "This item cannot be answered yet: its answer key has a problem that your instructor "
        "must fix. No attempt was used."
    )


def submit_refusal(item: Item, *, attempts: int, end: datetime, now: datetime) -> str:
    """Why a student may not answer the item now, or "": their window (``end``, extension
    applied) is over, they have no attempts left, or the item's key is not ready. The item page
    shows it instead of the form; ``submissions.submit`` refuses with it."""
    assignment = item.assignment
    if now > end:
        return f"This assignment closed on {site_time(end)}: no more answers."
    if assignment.max_attempts is not None and attempts >= assignment.max_attempts:
        return f"No attempts left (the limit is {assignment.max_attempts})."
    return key_refusal(item)


def reveal(item: Item, mine: ItemProgress | None, student: Any, now: datetime) -> bool:
    """Whether the item page may show the expected answer: always to staff (``mine`` is None),
    to a student as ``answer_revealed`` says for their attempts and best raw score."""
    if mine is None:
        return True
    best_score = max((s.score or 0.0 for s in mine.graded), default=None)
    return answer_revealed(item, student, attempts=mine.attempts, best_score=best_score, now=now)


def key_trace_shown(
    mine: ItemProgress | None, *, feedback: bool, revealed: bool, closed: bool
) -> bool:
    """Whether the item page may step through the answer key's real run: for staff (``mine`` is
    None) always; for a student once the answer is revealed, with feedback allowed, after a
    graded attempt or once their window has closed."""
    if not revealed:
        return False
    return mine is None or (feedback and (bool(mine.graded) or closed))


def feedback_details(
    shown: Submission | None, *, feedback: bool, revealed: bool
) -> dict[str, Any] | None:
    """The grader's details of the submission shown, as far as the student may see them: none
    without feedback; right or wrong per checkpoint only (no expected values, no model answer)
    while the answer is not revealed."""
    if shown is None or not feedback or shown.status != Submission.Status.GRADED:
        return None
    details: dict[str, Any] = shown.feedback.get("details") or {}
    if revealed:
        return details
    return {
        "checkpoints": [
            {"right": c.get("right"), "score": c.get("score")}
            for c in details.get("checkpoints", [])
            if isinstance(c, dict)
        ],
        # Answer the probes: each question's mark and what it asked (as its question says),
        # never its true answer (nor its step).
        "probes": [
            {k: p.get(k) for k in ("kind", "line", "k", "variable", "length", "right")}
            for p in details.get("probes", [])
            if isinstance(p, dict)
        ],
        "scores": details.get("scores"),
        "consistency": details.get("consistency"),
    }


GUARDED_MESSAGE = {1.0: "Right."}


def guarded_message(submission: Submission, revealed: bool) -> str:
    """The grader's message, or (while the answer must stay hidden) only how it went."""
    message = str(submission.feedback.get("message", ""))
    if revealed or submission.item.mode in ("puzzle", "trace", "input", "probes", "nextstate"):
        # A puzzle's or a checkpoint count's message names no expected value, nor do the
        # probes' counts, nor the next state's count of steps right; an input's names the
        # output, which the question shows, and what the student's own call returned.
        return message
    if submission.score is not None and submission.score >= 1.0:
        return "Right."
    return "Not right: try again."


@dataclass
class ItemProgress:
    item: Item
    max_attempts: int | None
    submissions: list[Submission] = field(default_factory=list)
    shown: bool = True  # the student may see their results of this item now

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
    items: list[ItemProgress]

    @property
    def feedback(self) -> bool:
        """Whether any of the items' results are shown (the score counts those)."""
        return any(p.shown for p in self.items)

    @property
    def partly_shown(self) -> bool:
        return self.feedback and not all(p.shown for p in self.items)

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
        """Points of the items whose results are shown."""
        return sum(p.item.points for p in self.items if p.shown)

    @property
    def score(self) -> float:
        """Points earned on the items whose results are shown (the best attempt of each item
        times its points)."""
        return sum((p.best or 0.0) * p.item.points for p in self.items if p.shown)

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
    state = state_of(assignment, student, now)  # once for all its items
    return AssignmentProgress(
        assignment=assignment,
        due=due,
        end=end,
        now=now,
        items=[
            ItemProgress(
                item,
                assignment.max_attempts,
                by_item.get(item.pk, []),
                shown=feedback_allowed(item, student, now, state=state),
            )
            for item in items
        ],
    )


def for_assignment(
    assignment: Assignment, student: Any, now: datetime | None = None
) -> AssignmentProgress:
    now = now or timezone.now()
    items = pools.items_for(assignment, student, list(assignment.items.order_by("position", "id")))
    for item in items:
        item.assignment = assignment
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
    by_pk = {a.pk: a for a in assignments}
    for item in Item.objects.filter(assignment__in=assignments).order_by("position", "id"):
        item.assignment = by_pk[item.assignment_id]  # one query, not one per item
        items.setdefault(item.assignment_id, []).append(item)
    submissions: dict[int, list[Submission]] = {}
    for sub in (
        Submission.objects.filter(item__assignment__in=assignments, student_id=student.pk)
        .select_related("item")
        .order_by("attempt")
    ):
        submissions.setdefault(sub.item.assignment_id, []).append(sub)
    return [
        _build(
            a,
            student,
            pools.items_for(a, student, items.get(a.pk, [])),  # their draw of each pool
            submissions.get(a.pk, []),
            now,
        )
        for a in assignments
    ]


def for_item(item: Item, student: Any, now: datetime | None = None) -> ItemProgress:
    submissions = list(
        Submission.objects.filter(item=item, student_id=student.pk).order_by("attempt")
    )
    shown = feedback_allowed(item, student, now)
    return ItemProgress(item, item.assignment.max_attempts, submissions, shown=shown)
