"""Timed exams per student (issue 24): each student starts when they choose within the window
and has the exam's minutes (plus an extension's extra minutes), never past their due time. The
server's clock enforces the end, to the second: an answer at the end's last second is taken,
one a second later refused with a sentence that says so, and the page shows it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.classroom import exams, submissions
from playground.classroom.errors import ClassroomError
from playground.classroom.models import (
    AuditEvent,
    ExamStart,
    Extension,
    Item,
    Membership,
    Mode,
    Submission,
)
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

OPENS = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
DUE = OPENS + timedelta(hours=4)  # the window: 09:00 to 13:00; 30 minutes each
SECOND = timedelta(seconds=1)
HTMX = {"HX-Request": "true"}


def _exam(**fields: Any) -> tuple[Any, Item]:
    w = course_world()
    the_exam = assignment(
        w.course, title="Midterm", opens_at=OPENS, due_at=DUE, time_limit=30, **fields
    )
    item = Item.objects.create(assignment=the_exam, mode=Mode.OUTPUT, program=library_program())
    hand_made_key(item, real=real_trace(f"'{SECRET}'"), owner=w.instructor)
    return w, item


def _submit(item: Item, student: Any, now: datetime) -> Submission:
    sub, _ = submissions.submit(item=item, student=student, answer=f"'{SECRET}'", now=now)
    assert sub is not None
    return sub


def test_the_server_takes_an_answer_until_the_last_second_and_refuses_the_next() -> None:
    w, item = _exam()
    started = OPENS + timedelta(minutes=20)
    exams.start(assignment=item.assignment, student=w.s1, now=started)
    end = started + timedelta(minutes=30)
    assert item.assignment.window(w.s1) == (end, end)
    assert _submit(item, w.s1, end - SECOND).late is False
    assert _submit(item, w.s1, end).credit == 1.0  # the end itself is inclusive
    with pytest.raises(
        ClassroomError, match="Your time for this exam ended at 1 Jun 2026, 09:50:00"
    ):
        _submit(item, w.s1, end + SECOND)
    assert Submission.objects.filter(student=w.s1).count() == 2


def test_nothing_is_taken_before_the_student_starts() -> None:
    w, item = _exam()
    with pytest.raises(ClassroomError, match="Start the exam first"):
        _submit(item, w.s1, OPENS + timedelta(minutes=5))
    assert not Submission.objects.exists()


def test_a_late_start_ends_at_the_due_time() -> None:
    w, item = _exam()
    exams.start(assignment=item.assignment, student=w.s1, now=DUE - timedelta(minutes=5))
    assert item.assignment.window(w.s1)[1] == DUE
    _submit(item, w.s1, DUE)
    with pytest.raises(ClassroomError, match="ended"):
        _submit(item, w.s1, DUE + SECOND)


def test_extra_minutes_lengthen_one_students_time_only() -> None:
    w, item = _exam()
    a = item.assignment
    Extension.objects.create(assignment=a, student=w.s1, due_at=DUE, extra_minutes=10)
    started = OPENS + timedelta(hours=1)
    for student in (w.s1, w.s2):
        exams.start(assignment=a, student=student, now=started)
    assert a.window(w.s1)[1] == started + timedelta(minutes=40)
    assert a.window(w.s2)[1] == started + timedelta(minutes=30)
    _submit(item, w.s1, started + timedelta(minutes=40))
    with pytest.raises(ClassroomError, match="ended"):
        _submit(item, w.s2, started + timedelta(minutes=30) + SECOND)
    # Extra minutes given after the start count too (the end is worked out, never stored).
    Extension.objects.filter(student=w.s1).update(extra_minutes=20)
    _submit(item, w.s1, started + timedelta(minutes=50))


def test_starting_outside_the_window_is_refused_and_a_start_is_never_restarted() -> None:
    w, item = _exam()
    a = item.assignment
    with pytest.raises(ClassroomError, match="not open yet"):
        exams.start(assignment=a, student=w.s1, now=OPENS - SECOND)
    with pytest.raises(ClassroomError, match="could be started until"):
        exams.start(assignment=a, student=w.s1, now=DUE + SECOND)
    first = exams.start(assignment=a, student=w.s1, now=OPENS + timedelta(minutes=1))
    again = exams.start(assignment=a, student=w.s1, now=OPENS + timedelta(minutes=20))
    assert again.pk == first.pk
    assert again.started_at == OPENS + timedelta(minutes=1)
    events = AuditEvent.objects.filter(action=AuditEvent.Action.EXAM_STARTED)
    assert events.count() == 1
    assert events.get().subject_name == "student1"
    assert events.get().detail["ends"] == (OPENS + timedelta(minutes=31)).isoformat()


def test_handing_in_early_ends_the_time_and_is_audited() -> None:
    w, item = _exam()
    a = item.assignment
    exams.start(assignment=a, student=w.s1, now=OPENS)
    exams.finish(assignment=a, student=w.s1, now=OPENS + timedelta(minutes=10))
    _submit(item, w.s1, OPENS + timedelta(minutes=10) - SECOND)
    for when in (OPENS + timedelta(minutes=10), OPENS + timedelta(minutes=10) + SECOND):
        with pytest.raises(ClassroomError, match="You handed this exam in at"):
            _submit(item, w.s1, when)
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXAM_FINISHED)
    assert event.detail["time_left_seconds"] == 20 * 60


def test_who_may_start() -> None:
    w, item = _exam()
    a = item.assignment
    for who in (w.instructor, w.outsider):
        with pytest.raises(ClassroomError, match="Only the course's students"):
            exams.start(assignment=a, student=who, now=OPENS)
    with pytest.raises(ClassroomError, match="not a timed exam"):
        exams.start(assignment=assignment(w.course), student=w.s1)


def _now(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    monkeypatch.setattr(timezone, "now", lambda: when)


def test_on_the_pages_a_student_starts_only_their_own_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, item = _exam()
    a = item.assignment
    _now(monkeypatch, OPENS + timedelta(minutes=5))
    start_url = reverse("classroom:exam_start", args=[w.course.pk, a.pk])
    # The request names nobody: a student's POST (with another's id) starts their own clock.
    response = client_for(w.s1).post(start_url, {"student": w.s2.pk})
    assert response.status_code == 302
    assert list(ExamStart.objects.values_list("student__username", flat=True)) == ["student1"]
    # Not in the course: 404; staff take no exam; a GET starts nothing.
    assert client_for(w.outsider).post(start_url).status_code == 404
    client_for(w.instructor).post(start_url)
    assert client_for(w.s2).get(start_url).status_code == 405
    assert ExamStart.objects.count() == 1
    # Nor may a student give themselves more time.
    ext_url = reverse("classroom:extensions", args=[w.course.pk, a.pk])
    assert client_for(w.s1).post(ext_url, {"extra_minutes": "60"}).status_code == 403


def test_the_pages_start_count_down_and_refuse_an_answer_after_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, item = _exam()
    a = item.assignment
    student = client_for(w.s1)
    started = OPENS + timedelta(minutes=5)
    end = started + timedelta(minutes=30)
    _now(monkeypatch, started)
    # Before the start, the questions wait: the item page sends the student to the start.
    response = student.get(item.get_absolute_url())
    assert response.status_code == 302
    assert response["Location"] == a.get_absolute_url()
    page = student.get(a.get_absolute_url()).content.decode()
    assert "Start the exam" in page
    assert "30 minutes from when you start" in page
    response = student.post(reverse("classroom:exam_start", args=[w.course.pk, a.pk]))
    assert response["Location"] == item.get_absolute_url()
    # The countdown comes from the server's end time.
    page = student.get(item.get_absolute_url()).content.decode()
    assert 'data-seconds-left="1800"' in page
    assert "your time ends at 09:35:00" in page
    submit = reverse("classroom:submit", args=[w.course.pk, a.pk, item.pk])
    _now(monkeypatch, end - SECOND)
    page = student.get(item.get_absolute_url()).content.decode()
    assert 'data-seconds-left="1"' in page
    response = student.post(submit, {"answer": f"'{SECRET}'"}, headers=HTMX)
    assert "Right" in response.content.decode()
    _now(monkeypatch, end + SECOND)
    for headers in (HTMX, {}):
        response = student.post(submit, {"answer": "'my-late-answer'"}, headers=headers)
        body = response.content.decode()
        assert response.status_code == (200 if headers else 409)
        assert "Your time for this exam ended at 1 Jun 2026, 09:35:00" in body
        assert "my-late-answer" in body  # shown back: nothing typed is lost
        assert 'id="kept-answer"' in body
    # What is shown back is text, never markup.
    response = student.post(submit, {"answer": "<img src=x onerror=alert(1)>"}, headers=HTMX)
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.content.decode()
    assert "<img src=x" not in response.content.decode()
    assert Submission.objects.filter(student=w.s1).count() == 1
    page = student.get(item.get_absolute_url()).content.decode()
    assert "Your time is up" in page
    assert 'name="answer"' not in page


def test_a_timed_exam_has_no_late_period_and_extra_minutes_need_a_timed_exam() -> None:
    w = course_world()
    url = reverse("classroom:assignment_new", args=[w.course.pk])
    response = client_for(w.instructor).post(
        url,
        {"title": "Quiz", "opens_at": "2026-06-01T09:00", "due_at": "2026-06-01T13:00",
         "late_until": "2026-06-01T14:00", "late_credit": "50", "feedback": "attempt",
         "time_limit": "45"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "A timed exam has no late period" in response.content.decode()
    untimed = assignment(w.course)
    member = Membership.objects.get(course=w.course, user=w.s1)
    response = client_for(w.instructor).post(
        reverse("classroom:extensions", args=[w.course.pk, untimed.pk]),
        {"student": member.pk, "extra_minutes": "10"},
    )
    assert "Extra minutes are for timed exams only." in response.content.decode()
    assert not Extension.objects.exists()


def test_hand_in_from_the_page_and_the_staff_see_who_started_when(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, item = _exam()
    a = item.assignment
    student = client_for(w.s1)
    _now(monkeypatch, OPENS + timedelta(minutes=1))
    student.post(reverse("classroom:exam_start", args=[w.course.pk, a.pk]))
    _now(monkeypatch, OPENS + timedelta(minutes=7))
    page = student.get(a.get_absolute_url()).content.decode()
    assert "Hand the exam in now" in page
    response = student.post(reverse("classroom:exam_finish", args=[w.course.pk, a.pk]))
    assert response.status_code == 302
    page = student.get(a.get_absolute_url()).content.decode()
    assert "Your time is up" in page
    assert "Hand the exam in now" not in page
    staff = client_for(w.instructor).get(reverse("classroom:extensions", args=[w.course.pk, a.pk]))
    table = staff.content.decode().split('id="exam-starts"')[1].split("</table>")[0]
    assert "student1" in table
    assert "09:01:00" in table  # started
    assert "09:07:00" in table  # handed in: the time ends then
    assert "student2" not in table
