"""Assignments on the staff pages: their times (in order, read in the site's time zone), editing
one and reordering its items, and deleting one (instructors who type its title)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.classroom.models import Assignment, Role, Submission
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    MembershipFactory,
    SubmissionFactory,
    logged_in,
    manage_url,
    markup,
    staffed_course,
    text,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _assignment_data(**fields: str) -> dict[str, str]:
    return {
        "title": "Loops",
        "instructions": "Trace carefully.",
        "opens_at": "2026-03-02T09:00",
        "due_at": "2026-03-09T23:59",
        "late_until": "",
        "late_credit": "50",
        "max_attempts": "3",
        "feedback": "attempt",
        **fields,
    }


def test_assignment_times_must_be_in_order(db: None) -> None:
    course, teacher = staffed_course()
    client = logged_in(teacher)
    url = reverse("classroom:assignment_new", args=[course.pk])
    page = text(client.post(url, _assignment_data(due_at="2026-03-01T09:00")))
    assert "The due time is before the opening time." in page
    page = text(client.post(url, _assignment_data(late_until="2026-03-09T12:00")))
    assert "The end of the late period is before the due time." in page
    page = text(client.post(url, _assignment_data(late_credit="150")))
    assert "less than or equal to 100" in page
    page = text(client.post(url, _assignment_data(opens_at="next monday")))
    assert "Enter a valid date/time." in page
    assert not Assignment.objects.exists()


def test_assignment_times_are_read_in_the_site_time_zone(db: None, settings: Settings) -> None:
    settings.TIME_ZONE = "America/New_York"
    course, teacher = staffed_course()
    client = logged_in(teacher)
    response = client.post(
        reverse("classroom:assignment_new", args=[course.pk]),
        _assignment_data(late_until="2026-03-10T12:00", exam_mode="on"),
    )
    assignment = Assignment.objects.get()
    assert response["Location"] == reverse(
        "classroom:assignment_edit", args=[course.pk, assignment.pk]
    )
    assert assignment.opens_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # EST is UTC-5
    assert assignment.late_until == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)  # EDT is UTC-4
    assert assignment.exam_mode
    assert assignment.max_attempts == 3
    page = markup(client.get(response["Location"]))
    assert "America/New_York" in page
    assert 'value="2026-03-02T09:00"' in page  # shown back as typed
    assert "No items yet" in page


def test_editing_an_assignment_and_reordering_its_items(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    first, second = ItemFactory(assignment=assignment), ItemFactory(assignment=assignment)
    client = logged_in(teacher)
    url = reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
    client.post(url, {"action": "move", "item": second.pk, "direction": "up"})
    assert list(assignment.items.order_by("position")) == [second, first]
    page = text(client.get(url))
    assert page.index(str(second)) < page.index(str(first))
    assert "missing No answer key yet: prepare it." in page  # made without a key

    response = client.post(url, _assignment_data(title="Loops, again"))
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.title == "Loops, again"


def test_deleting_an_assignment_is_for_instructors_who_type_its_title(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course, title="Loops")
    SubmissionFactory(item=ItemFactory(assignment=assignment))
    assistant = UserFactory(username="ta")
    MembershipFactory(course=course, user=assistant, role=Role.ASSISTANT)
    url = reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
    data = {"action": "delete", "confirm": "Loops"}
    assert logged_in(assistant).post(url, data).status_code == 403
    page = text(logged_in(teacher).post(url, {"action": "delete", "confirm": "loops"}))
    assert "does not match: nothing was deleted" in page
    assert Assignment.objects.filter(pk=assignment.pk).exists()
    response = logged_in(teacher).post(url, data)
    assert response["Location"] == manage_url(course)
    assert not Assignment.objects.exists()
    assert not Submission.objects.exists()
