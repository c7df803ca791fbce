"""Time zones per course (issue 24): dates are typed and shown in the course's zone, right across
a daylight-saving change (Europe/Berlin moves its clocks on 29 March 2026, America/New_York on
8 March 2026); a time that does not exist that day is refused; a student's own zone (their
browser's) is shown beside a date where it reads differently; the zone is a zoneinfo name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.classroom import submissions
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Assignment, Course, Item, Membership, Mode, Role
from playground.classroom.zones import COOKIE
from tests.classroom.student_world import (
    SECRET,
    client_for,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _form(**times: str) -> dict[str, str]:
    return {"title": "Across the change", "late_credit": "50", "feedback": "attempt", **times}


def _in_zone(zone: str) -> Any:
    w = course_world()
    Course.objects.filter(pk=w.course.pk).update(time_zone=zone)
    w.course.refresh_from_db()
    return w


def test_a_due_date_typed_across_berlins_change_is_the_instant_it_says() -> None:
    w = _in_zone("Europe/Berlin")
    url = reverse("classroom:assignment_new", args=[w.course.pk])
    page = client_for(w.instructor).get(url).content.decode()
    assert "Times are in the Europe/Berlin time zone." in page
    response = client_for(w.instructor).post(
        url, _form(opens_at="2026-03-28T10:00", due_at="2026-03-29T10:00")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    a = Assignment.objects.get()
    assert a.opens_at == datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # CET, UTC+1
    assert a.due_at == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # CEST, UTC+2
    assert a.due_at - a.opens_at == timedelta(hours=23)  # the night lost an hour
    edit = client_for(w.instructor).get(
        reverse("classroom:assignment_edit", args=[w.course.pk, a.pk])
    )
    assert 'value="2026-03-29T10:00"' in edit.content.decode()  # shown as typed


def test_a_time_that_does_not_exist_that_night_is_refused_not_guessed() -> None:
    w = _in_zone("Europe/Berlin")
    response = client_for(w.instructor).post(
        reverse("classroom:assignment_new", args=[w.course.pk]),
        _form(opens_at="2026-03-28T10:00", due_at="2026-03-29T02:30"),  # 02:00 -> 03:00
    )
    assert response.status_code == 200
    assert "Europe/Berlin" in response.content.decode()
    assert "may be ambiguous or it may not exist" in response.content.decode()
    assert not Assignment.objects.exists()


def test_new_york_noon_before_and_after_its_change() -> None:
    w = _in_zone("America/New_York")
    url = reverse("classroom:assignment_new", args=[w.course.pk])
    client_for(w.instructor).post(
        url, _form(opens_at="2026-03-07T12:00", due_at="2026-03-08T12:00")
    )
    a = Assignment.objects.get()
    assert a.opens_at == datetime(2026, 3, 7, 17, 0, tzinfo=UTC)  # EST, UTC-5
    assert a.due_at == datetime(2026, 3, 8, 16, 0, tzinfo=UTC)  # EDT, UTC-4


def _open_item(w: Any, due: datetime) -> Item:
    a = Assignment.objects.create(
        course=w.course, title="Loops", opens_at=due - timedelta(days=10), due_at=due
    )
    item = Item.objects.create(assignment=a, mode=Mode.OUTPUT, program=library_program())
    hand_made_key(item, real=real_trace(f"'{SECRET}'"), owner=w.instructor)
    return item


def test_students_see_the_courses_time_and_their_own_where_it_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = _in_zone("Europe/Berlin")
    item = _open_item(w, datetime(2026, 3, 29, 8, 0, tzinfo=UTC))
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 3, 25, 12, 0, tzinfo=UTC))
    student = client_for(w.s1)
    page = student.get(item.assignment.get_absolute_url()).content.decode()
    assert "29 Mar 2026, 10:00 CEST" in page
    assert "your time" not in page
    student.cookies[COOKIE] = "America/New_York"
    for url in (item.assignment.get_absolute_url(), item.get_absolute_url(),
                reverse("classroom:course", args=[w.course.pk])):  # fmt: skip
        page = student.get(url).content.decode()
        assert "29 Mar 2026, 10:00 CEST" in page, url
        assert "(your time: 29 Mar 2026, 04:00 EDT)" in page, url
    # A zone that reads the same (Paris keeps Berlin's time) adds nothing; nor does a name
    # that is no zone, or markup.
    for cookie in ("Europe/Paris", "Mars/Olympus_Mons", "<script>alert(1)</script>"):
        student.cookies[COOKIE] = cookie
        page = student.get(item.assignment.get_absolute_url()).content.decode()
        assert "your time" not in page, cookie
        assert "<script>alert(1)" not in page


def test_refusals_name_the_time_in_the_courses_zone() -> None:
    w = _in_zone("America/New_York")
    item = _open_item(w, timezone.now() - timedelta(hours=1))
    response = client_for(w.s1).post(
        reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk]),
        {"answer": "'x'"},
    )
    assert response.status_code == 409
    due = timezone.localtime(item.assignment.due_at, timezone=_ny())
    assert due.strftime("%H:%M") in response.content.decode()
    assert ("EDT" if due.dst() else "EST") in response.content.decode()
    with pytest.raises(ClassroomError):
        submissions.submit(item=item, student=w.s1, answer="'x'")


def _ny() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/New_York")


def test_only_an_instructor_sets_the_zone_and_only_to_a_real_one() -> None:
    w = _in_zone("")
    url = reverse("classroom:course_zone", args=[w.course.pk])
    assistant = UserFactory(username="assistant")
    Membership.objects.create(course=w.course, user=assistant, role=Role.ASSISTANT)
    for who in (w.s1, assistant):
        assert client_for(who).post(url, {"time_zone": "Europe/Berlin"}).status_code == 403
    assert client_for(w.outsider).post(url, {"time_zone": "Europe/Berlin"}).status_code == 404
    teacher = client_for(w.instructor)
    response = teacher.post(url, {"time_zone": "Europe/Atlantis"}, follow=True)
    assert "Europe/Atlantis is not a time zone name" in response.content.decode()
    w.course.refresh_from_db()
    assert w.course.time_zone == ""
    teacher.post(url, {"time_zone": "Europe/Berlin"})
    w.course.refresh_from_db()
    assert w.course.time_zone == "Europe/Berlin"
    page = teacher.get(reverse("classroom:course_manage", args=[w.course.pk])).content.decode()
    assert 'id="course-zone">Europe/Berlin<' in page


def test_a_new_course_takes_its_zone_from_the_form() -> None:
    teacher = UserFactory(username="teacher")
    client = client_for(teacher)
    bad = client.post(reverse("classroom:course_new"), {"title": "A", "time_zone": "Nowhere"})
    assert bad.status_code == 200
    assert "Nowhere is not a time zone name" in bad.content.decode()
    client.post(reverse("classroom:course_new"), {"title": "B", "time_zone": "Asia/Kolkata"})
    assert Course.objects.get().time_zone == "Asia/Kolkata"
