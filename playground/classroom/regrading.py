"""Regrading an item's answers after its answer key or its grading changed (the key prepared
again, the partial-credit rule switched): every graded answer is graded again against the key as
it is now (a varied item's answer against its own variant's key), and the grade it had is kept
in the submission's history. A grader's override stays the credit that counts. One audit event
per regrade.

Answers that run in the sandbox are not regraded here: a puzzle's ``sat`` has no key to change,
and a "predict the input" call would be one more sandbox run per answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.classroom import audit, keys, marking, variants
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Item, Submission, Variant
from playground.runs.models import Run


@dataclass(frozen=True)
class Regraded:
    changed: int
    unchanged: int
    skipped: int  # their key is gone or not ready (a variant's run failed, say)

    @property
    def message(self) -> str:
        def n(count: int, what: str) -> str:
            return f"{count} {what}{'s' if count != 1 else ''}"

        text = f"Regraded: {n(self.changed, 'grade')} changed, {self.unchanged} unchanged"
        if self.skipped:
            text += f", {n(self.skipped, 'answer')} left as graded (no key to grade against)"
        return text + "."


def refusal(item: Item) -> str:
    """Why this item's answers cannot be regraded now, or ""."""
    if item.mode in marking.RUNS_THE_ANSWER:
        return (
            "Answers of this kind are checked by running them in the sandbox; they are not "
            "regraded (a puzzle has no key to change)."
        )
    if not variants.is_varied(item) and not keys.key_status(item).ready:
        return "The answer key is not ready: prepare it, then regrade."
    return ""


def regrade(item: Item, *, by: Any, now: datetime | None = None) -> Regraded:
    """Grade every graded answer of the item again; raises ClassroomError when it cannot be."""
    why = refusal(item)
    if why:
        raise ClassroomError(why)
    now = now or timezone.now()
    own = variants.is_varied(item)
    by_id = {v.pk: v for v in Variant.objects.filter(item=item).select_related("run")}
    ready = keys.key_status(item).ready
    changed = unchanged = skipped = 0
    with transaction.atomic():
        answers = (
            Submission.objects.select_for_update()
            .filter(item=item, status=Submission.Status.GRADED)
            .order_by("student_id", "attempt")
        )
        for sub in answers:
            seen = item
            if sub.variant_id is not None:
                variant = by_id.get(sub.variant_id)
                if variant is None or variant.run is None or variant.run.status != Run.Status.DONE:
                    skipped += 1
                    continue
                seen = variants.with_variant(item, variant)
            elif own and not ready:  # graded on the item's own call before it was varied
                skipped += 1
                continue
            grade = marking.grade_now(seen, sub.answer)
            if grade.invalid:
                skipped += 1
                continue
            factor = float(sub.feedback.get("late_factor", 1.0))
            if grade.score == sub.score and round(grade.score * factor, 4) == sub.credit:
                unchanged += 1
                continue
            before = {
                "at": now.isoformat(),
                "score": sub.score,
                "credit": sub.credit,
                "message": str(sub.feedback.get("message", ""))[:2000],
                "by": by.get_username() if by is not None else "",
            }
            sub.history = [*(sub.history if isinstance(sub.history, list) else []), before]
            sub.save(update_fields=["history"])
            marking.record_grade(sub, grade, factor)
            changed += 1
        result = Regraded(changed, unchanged, skipped)
        audit.record(
            audit.Action.REGRADED,
            course=item.assignment.course,
            actor=by,
            assignment=item.assignment.title,
            item=str(item),
            changed=changed,
            unchanged=unchanged,
            skipped=skipped,
        )
    return result
