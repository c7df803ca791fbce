"""Regrading (regrading.py): after an item's key changes, its graded answers are graded again
against the key as it is now, each changed grade's predecessor kept in the answer's history
(shown to the staff), overrides kept, late factors kept, a varied item's answers against their
own variant, one audit event; puzzles are not regraded; only staff may."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.classroom import regrading, submissions, variants
from playground.classroom.errors import ClassroomError
from playground.classroom.models import AuditEvent, Item, Mode, Submission, Variant
from playground.runs.models import Run
from tests.classroom.student_world import (
    assignment,
    client_for,
    course_world,
    hand_made_key,
    library_program,
    puzzle,
    real_trace,
)

pytestmark = pytest.mark.django_db


def _output_item(w: Any, value: str = "'old-key'") -> Item:
    item = Item.objects.create(
        assignment=assignment(w.course), mode=Mode.OUTPUT, program=library_program(), title="Q"
    )
    hand_made_key(item, real=real_trace(value), owner=w.instructor)
    return item


def _edit(w: Any, item: Item) -> str:
    return reverse("classroom:item_edit", args=[w.course.pk, item.assignment_id, item.pk])


def test_a_new_key_regrades_every_answer_and_keeps_the_old_grade_in_its_history() -> None:
    w = course_world()
    item = _output_item(w)
    wrong, _ = submissions.submit(item=item, student=w.s1, answer="'new-key'")
    right, _ = submissions.submit(item=item, student=w.s2, answer="'old-key'")
    assert wrong is not None
    assert right is not None
    assert (wrong.score, right.score) == (0.0, 1.0)
    # The instructor fixes the key: the value was 'new-key' all along.
    hand_made_key(item, real=real_trace("'new-key'"), owner=w.instructor)
    staff = client_for(w.instructor)
    page = staff.get(_edit(w, item)).content.decode()
    assert "Regrade the 2 graded answers" in page
    response = staff.post(_edit(w, item), {"regrade": "1"}, follow=True)
    assert "Regraded: 2 grades changed, 0 unchanged." in response.content.decode()
    wrong.refresh_from_db()
    right.refresh_from_db()
    assert (wrong.score, wrong.credit, right.score, right.credit) == (1.0, 1.0, 0.0, 0.0)
    assert [(h["score"], h["credit"], h["by"]) for h in wrong.history] == [(0.0, 0.0, "teacher")]
    assert right.history[0]["message"].startswith("Right")
    # The staff see the history with the grade it had.
    detail = staff.get(reverse("classroom:override", args=[w.course.pk, right.pk]))
    assert "Score history" in detail.content.decode()
    event = AuditEvent.objects.get(action=AuditEvent.Action.REGRADED)
    assert event.detail == {
        "assignment": item.assignment.title, "item": "Q", "changed": 2, "unchanged": 0,
        "skipped": 0,
    }  # fmt: skip
    # Again, with nothing new: no grade changes and the history stays as it is.
    assert regrading.regrade(item, by=w.instructor).changed == 0
    wrong.refresh_from_db()
    assert len(wrong.history) == 1


def test_regrading_keeps_the_late_factor_and_a_graders_override() -> None:
    w = course_world()
    now = timezone.now()
    a = assignment(
        w.course, due_at=now - timedelta(hours=1), late_until=now + timedelta(days=1),
        late_credit=50,
    )  # fmt: skip
    item = Item.objects.create(assignment=a, mode=Mode.OUTPUT, program=library_program())
    hand_made_key(item, real=real_trace("'old-key'"))
    late, _ = submissions.submit(item=item, student=w.s1, answer="'new-key'")
    other, _ = submissions.submit(item=item, student=w.s2, answer="'old-key'")
    assert late is not None
    assert other is not None
    submissions.override(other, credit=0.75, comment="kind", by=w.instructor)
    hand_made_key(item, real=real_trace("'new-key'"))
    regrading.regrade(item, by=w.instructor)
    late.refresh_from_db()
    other.refresh_from_db()
    assert (late.score, late.credit) == (1.0, 0.5)  # right now, still late
    assert (other.score, other.final_credit) == (0.0, 0.75)  # the override still counts


def test_a_varied_items_answers_are_regraded_against_their_own_variant() -> None:
    w = course_world()
    item = _output_item(w, value="'own-call'")
    item.variation = {"args": [{"index": 0, "range": [1, 9]}], "count": 2, "seed": 0}
    item.save(update_fields=["variation"])
    key = variants.spec_key(item)
    for number, value in enumerate(("'first'", "'second'")):
        run = Run.objects.create(
            program=item.program, source=item.program.source, call=f"f('{number}')",  # type: ignore[union-attr]
            status=Run.Status.DONE,
        )  # fmt: skip
        run.traces.create(kind="real", status="ok", data=real_trace(value))
        Variant.objects.create(
            item=item, spec=key, number=number, call=run.call, run=run, status="valid"
        )
    mine = variants.variant_for(item, w.s1)
    assert mine is not None
    value = mine.run.real_trace.data["result"]  # type: ignore[union-attr]
    sub, _ = submissions.submit(item=variants.for_student(item, w.s1), student=w.s1, answer=value)
    assert sub is not None
    assert sub.score == 1.0
    # A regrade asks the answer's own variant, not the item's own call ('own-call').
    done = regrading.regrade(item, by=w.instructor)
    assert (done.changed, done.unchanged) == (0, 1)
    # Its variant's run is gone: the answer is left as graded, and said so.
    Variant.objects.filter(pk=mine.pk).update(run=None)
    assert regrading.regrade(item, by=w.instructor).skipped == 1
    sub.refresh_from_db()
    assert sub.score == 1.0


def test_puzzles_are_not_regraded_and_only_staff_may_regrade() -> None:
    w = course_world()
    a = assignment(w.course)
    riddle = Item.objects.create(assignment=a, mode=Mode.PUZZLE, puzzle=puzzle())
    with pytest.raises(ClassroomError, match="not regraded"):
        regrading.regrade(riddle, by=w.instructor)
    item = _output_item(w)
    submissions.submit(item=item, student=w.s1, answer="'x'")
    assert client_for(w.s1).post(_edit(w, item), {"regrade": "1"}).status_code == 403
    assert client_for(w.outsider).post(_edit(w, item), {"regrade": "1"}).status_code == 404
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.REGRADED).exists()
    assert Submission.objects.get(item=item).history == []
