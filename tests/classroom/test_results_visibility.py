"""Per-item visibility of results (issue 24), as Gradescope offers it: at once, after the due
time, once an instructor publishes, or never; in exam mode nothing before publishing. The rule
is the hiding policy's ``Surface.SCORE`` (its table: tests/classroom/test_hiding_policy.py);
here each rule at its boundaries, on the pages and the API, and who may publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.classroom import publishing
from playground.classroom.errors import ClassroomError
from playground.classroom.models import (
    AuditEvent,
    Extension,
    Feedback,
    Item,
    Mode,
    Results,
    Submission,
)
from playground.classroom.visibility import results_shown
from tests.classroom.student_world import (
    SECRET,
    assignment,
    client_for,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)

pytestmark = pytest.mark.django_db

T = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # the due time
SECOND = timedelta(seconds=1)


def _world(results: str, **fields: Any) -> tuple[Any, Item, Submission]:
    """A course whose assignment (due at T, late answers until T + 1 h) has one output item with
    this results rule, and student1's right answer to it."""
    w = course_world()
    values = {"opens_at": T - timedelta(days=1), "due_at": T, "late_until": T + timedelta(hours=1)}
    the_assignment = assignment(w.course, **{**values, **fields})
    item = Item.objects.create(
        assignment=the_assignment, mode=Mode.OUTPUT, program=library_program(), results=results
    )
    hand_made_key(item, real=real_trace(f"'{SECRET}'"), owner=w.instructor)
    sub = Submission.objects.create(
        item=item, student=w.s1, attempt=1, answer=f"'{SECRET}'", score=1.0, credit=1.0,
        status=Submission.Status.GRADED, feedback={"message": "Right."}, submitted_at=T - SECOND,
    )  # fmt: skip
    return w, item, sub


def test_at_once_shows_the_result_before_the_due_time() -> None:
    w, item, _ = _world(Results.NOW)
    assert results_shown(item, w.s1, T - timedelta(hours=1))
    item.results = Results.DUE
    assert not results_shown(item, w.s1, T - timedelta(hours=1))


def test_after_the_due_time_means_after_the_students_own_window_to_the_second() -> None:
    w, item, _ = _world(Results.DUE)
    end = T + timedelta(hours=1)  # the late period's end
    assert not results_shown(item, w.s1, T - SECOND)
    assert not results_shown(item, w.s1, T + SECOND)  # the late period: still hidden
    assert not results_shown(item, w.s1, end)  # the end is inclusive
    assert results_shown(item, w.s1, end + SECOND)
    # An extension moves one student's boundary, nobody else's.
    later = end + timedelta(hours=1)
    Extension.objects.create(assignment=item.assignment, student=w.s1, due_at=later)
    assert not results_shown(item, w.s1, end + SECOND)
    assert results_shown(item, w.s2, end + SECOND)
    assert results_shown(item, w.s1, end + timedelta(hours=1) + SECOND)


def test_an_item_without_its_own_rule_follows_the_assignment() -> None:
    w, item, _ = _world(Results.ASSIGNMENT, feedback=Feedback.AFTER_DUE)
    assert not results_shown(item, w.s1, T)
    assert results_shown(item, w.s1, T + timedelta(hours=1) + SECOND)
    item.assignment.feedback = Feedback.AFTER_ATTEMPT
    assert results_shown(item, w.s1, T)


def test_published_results_wait_for_the_instructor_and_never_means_never() -> None:
    w, item, _ = _world(Results.PUBLISHED)
    never = Item.objects.create(
        assignment=item.assignment, mode=Mode.OUTPUT, program=item.program, results=Results.NEVER
    )
    after_close = T + timedelta(days=30)
    assert not results_shown(item, w.s1, after_close)
    publishing.publish(assignment=item.assignment, by=w.instructor, now=T + timedelta(days=2))
    assert not results_shown(item, w.s1, T + timedelta(days=2) - SECOND)
    assert results_shown(item, w.s1, T + timedelta(days=2))
    assert not results_shown(never, w.s1, after_close)
    publishing.unpublish(assignment=item.assignment, by=w.instructor)
    assert not results_shown(item, w.s1, after_close)


def test_exam_mode_hides_every_result_until_published() -> None:
    w, item, _ = _world(Results.NOW, exam_mode=True)
    assert not results_shown(item, w.s1, T - SECOND)
    assert not results_shown(item, w.s1, T + timedelta(days=30))  # closed long ago: still hidden
    publishing.publish(assignment=item.assignment, by=w.instructor, now=T)
    assert results_shown(item, w.s1, T + SECOND)


def _now(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    """The site's clock (every ``timezone.now()``) at ``when``."""
    monkeypatch.setattr(timezone, "now", lambda: when)


def _api_row(client: Any, sub: Submission) -> dict[str, Any]:
    a = sub.item.assignment
    rows = client.get(f"/api/courses/{a.course_id}/assignments/{a.pk}/submissions").json()
    return next(r for r in rows if r["id"] == sub.pk)


def test_the_item_page_and_the_api_hide_the_result_until_the_boundary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, item, sub = _world(Results.DUE)
    student = client_for(w.s1)
    end = T + timedelta(hours=1)
    _now(monkeypatch, end)
    body = student.get(item.get_absolute_url()).content.decode()
    assert 'data-score="1.0"' not in body
    assert "Right" not in body
    assert "Results are shown after 10 Mar 2026" in body
    assert "score" not in _api_row(student, sub)
    assert SECRET not in str(_api_row(student, sub).get("message", ""))
    course_page = student.get(reverse("classroom:course", args=[w.course.pk])).content.decode()
    assert "score <span" not in course_page
    # Staff see it all along.
    staff_row = _api_row(client_for(w.instructor), sub)
    assert staff_row["score"] == 1.0
    _now(monkeypatch, end + SECOND)
    body = student.get(item.get_absolute_url()).content.decode()
    assert 'data-score="1.0"' in body
    assert _api_row(student, sub)["score"] == 1.0
    course_page = student.get(reverse("classroom:course", args=[w.course.pk])).content.decode()
    assert "1 / 1" in course_page


def test_the_score_counts_only_the_items_whose_results_are_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, item, _ = _world(Results.NOW)
    hidden = Item.objects.create(
        assignment=item.assignment, mode=Mode.OUTPUT, program=item.program, position=1,
        results=Results.PUBLISHED, points=3,
    )  # fmt: skip
    Submission.objects.create(
        item=hidden, student=w.s1, attempt=1, answer="'x'", score=0.0, credit=0.0,
        status=Submission.Status.GRADED, feedback={"message": "Wrong."},
    )  # fmt: skip
    _now(monkeypatch, T - timedelta(minutes=5))
    page = client_for(w.s1).get(item.assignment.get_absolute_url()).content.decode()
    assert "1 / 1" in page
    assert "of the items whose results are out" in page
    assert "submitted, results not out yet" in page


def test_only_an_instructor_publishes_and_it_is_audited() -> None:
    w, item, _ = _world(Results.PUBLISHED)
    a = item.assignment
    url = reverse("classroom:assignment_edit", args=[w.course.pk, a.pk])
    assistant = library_assistant(w)
    for who in (w.s1, assistant):
        response = client_for(who).post(url, {"action": "publish"})
        assert response.status_code == 403
    assert client_for(w.outsider).post(url, {"action": "publish"}).status_code == 404
    with pytest.raises(ClassroomError):
        publishing.publish(assignment=a, by=assistant)
    a.refresh_from_db()
    assert a.published_at is None
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.RESULTS_PUBLISHED).exists()

    response = client_for(w.instructor).post(url, {"action": "publish"})
    assert response.status_code == 302
    a.refresh_from_db()
    assert a.published_at is not None
    event = AuditEvent.objects.get(action=AuditEvent.Action.RESULTS_PUBLISHED)
    assert (event.course_ref, event.actor_name, event.detail["assignment"]) == (
        w.course.pk, "teacher", a.title,
    )  # fmt: skip
    page = client_for(w.instructor).get(url).content.decode()
    assert "Unpublish the results" in page
    client_for(w.instructor).post(url, {"action": "unpublish"})
    a.refresh_from_db()
    assert a.published_at is None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RESULTS_UNPUBLISHED).count() == 1


def library_assistant(w: Any) -> Any:
    from playground.classroom.models import Membership, Role
    from tests.factories import UserFactory

    assistant = UserFactory(username="assistant")
    Membership.objects.create(course=w.course, user=assistant, role=Role.ASSISTANT)
    return assistant


def test_the_item_form_saves_the_results_rule() -> None:
    w, item, _ = _world(Results.ASSIGNMENT)
    a = item.assignment
    url = reverse("classroom:item_edit", args=[w.course.pk, a.pk, item.pk])
    page = client_for(w.instructor).get(url).content.decode()
    assert "Students see their results" in page
    response = client_for(w.instructor).post(
        url,
        {"mode": Mode.OUTPUT, "origin": "library", "pick": f"program:{item.program_id}",
         "points": "1", "results": Results.NEVER, "action": "save"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    assert item.results == Results.NEVER
    bad = client_for(w.instructor).post(
        url,
        {"mode": Mode.OUTPUT, "origin": "library", "pick": f"program:{item.program_id}",
         "points": "1", "results": "tomorrow", "action": "save"},
    )  # fmt: skip
    assert bad.status_code == 200
    assert "not one of the available choices" in bad.content.decode()
