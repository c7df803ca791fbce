"""The staff pages of a course as a whole: creating it (you become its instructor), its join
code (rotated, closed), deleting it (its title typed), and names from users escaped."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from playground.classroom.errors import ClassroomError
from playground.classroom.joining import join_course
from playground.classroom.models import Course, Membership, Role
from tests.classroom.staff_factories import (
    AssignmentFactory,
    logged_in,
    manage_url,
    staffed_course,
    student_of,
    text,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_creating_a_course_makes_you_its_instructor(user_client: Client) -> None:
    response = user_client.post(
        reverse("classroom:course_new"), {"title": "  Execution 101 ", "description": "Fall"}
    )
    course = Course.objects.get()
    assert response.status_code == 302
    assert response["Location"] == manage_url(course)
    assert course.title == "Execution 101"
    member = Membership.objects.get(course=course)
    assert (member.user, member.role) == (user_client.user, Role.INSTRUCTOR)  # type: ignore[attr-defined]
    page = text(user_client.get(manage_url(course)))
    assert course.join_code in page
    assert "New assignment" in page


def test_a_course_needs_a_title_and_a_login(user_client: Client) -> None:
    page = text(user_client.post(reverse("classroom:course_new"), {"title": "   "}))
    assert "Give the course a title." in page
    assert not Course.objects.exists()
    anonymous = Client().get(reverse("classroom:course_new"))
    assert anonymous.status_code == 302
    assert "/accounts/login" in anonymous["Location"]


def test_rotating_and_closing_the_join_code(db: None) -> None:
    course, teacher = staffed_course()
    client = logged_in(teacher)
    old = course.join_code
    url = reverse("classroom:course_code", args=[course.pk])
    page = text(client.post(url, {"action": "rotate"}, follow=True))
    course.refresh_from_db()
    assert course.join_code != old
    assert f"New join code: {course.join_code}" in page
    newcomer = UserFactory()
    with pytest.raises(ClassroomError):
        join_course(user=newcomer, code=old)

    page = text(client.post(url, {"action": "disable"}, follow=True))
    course.refresh_from_db()
    assert not course.join_enabled
    assert "Joining is closed." in page
    assert "Open joining" in page
    with pytest.raises(ClassroomError):
        join_course(user=newcomer, code=course.join_code)

    client.post(url, {"action": "enable"})
    course.refresh_from_db()
    assert course.join_enabled
    assert join_course(user=newcomer, code=course.join_code).role == Role.STUDENT


def test_deleting_a_course_needs_its_title_typed(db: None) -> None:
    course, teacher = staffed_course(title="Execution 101")
    client = logged_in(teacher)
    url = reverse("classroom:course_delete", args=[course.pk])
    page = text(client.post(url, {"confirm": "execution"}, follow=True))
    assert "does not match: nothing was deleted" in page
    assert Course.objects.filter(pk=course.pk).exists()
    assert client.get(url).status_code == 405  # changes are POST only
    response = client.post(url, {"confirm": "Execution 101"})
    assert response["Location"] == reverse("classroom:courses")
    assert not Course.objects.filter(pk=course.pk).exists()


def test_names_from_users_are_escaped(db: None) -> None:
    course, teacher = staffed_course(title="<b>Course</b>")
    student_of(course, "<script>alert(1)</script>")
    assignment = AssignmentFactory(course=course, title="<i>Loops</i>")
    page = logged_in(teacher).get(manage_url(course)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>Course</b>" not in page
    assert "<i>Loops</i>" not in page
    gradebook = reverse("classroom:gradebook", args=[course.pk, assignment.pk])
    assert "<script>alert" not in logged_in(teacher).get(gradebook).content.decode()
