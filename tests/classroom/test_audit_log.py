"""The audit log of a course: roster, invitation, role and delete events with who and when;
append-only for real (the database refuses UPDATE and DELETE), kept when the course or a
person's account is deleted, shown to the course's instructors only."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from playground.classroom.models import AuditEvent, AuditLogIsAppendOnly, Course, Membership, Role
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    MembershipFactory,
    SubmissionFactory,
    logged_in,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def text(response: Any) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _course(client: Any) -> Course:
    client.post(reverse("classroom:course_new"), {"title": "Execution 101"})
    return Course.objects.get()


def test_role_and_delete_events_are_logged_and_shown_to_instructors(db: None) -> None:
    teacher = UserFactory(username="teacher")
    client = logged_in(teacher)
    course = _course(client)
    sam = UserFactory(username="sam")
    member = MembershipFactory(course=course, user=sam, role=Role.STUDENT)
    client.post(reverse("classroom:course_code", args=[course.pk]), {"action": "rotate"})
    role = reverse("classroom:member_role", args=[course.pk, member.pk])
    client.post(role, {"role": "assistant"})
    assignment = AssignmentFactory(course=course, title="Loops")
    item = ItemFactory(assignment=assignment, title="Sum")
    SubmissionFactory(item=item, student=UserFactory())
    delete_item = reverse("classroom:item_delete", args=[course.pk, assignment.pk, item.pk])
    client.post(delete_item, {"confirm": "yes"})
    edit = reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
    client.post(edit, {"action": "delete", "confirm": "Loops"})
    client.post(role, {"role": "remove"})

    page = text(client.get(reverse("classroom:audit_log", args=[course.pk])))
    lines = [
        "teacher Removed from the course sam role: assistant",
        "teacher Assignment deleted assignment: Loops ·",
        "teacher Item deleted assignment: Loops · item: Sum · item id: ",
        "teacher Role changed sam after: assistant · before: student",
        "teacher Join code changed change: rotate",
        "teacher Course created",
    ]
    positions = [page.find(line) for line in lines]
    assert -1 not in positions, (lines, page)
    assert positions == sorted(positions)  # newest first
    assert re.search(r"item id: \d+ · submissions: 1", page)


def test_the_log_outlives_the_course_and_the_people(db: None) -> None:
    teacher = UserFactory(username="teacher")
    client = logged_in(teacher)
    course = _course(client)
    sam = UserFactory(username="sam")
    member = MembershipFactory(course=course, user=sam)
    client.post(reverse("classroom:member_role", args=[course.pk, member.pk]), {"role": "remove"})
    course_id = course.pk
    client.post(reverse("classroom:course_delete", args=[course_id]), {"confirm": "Execution 101"})
    assert not Course.objects.filter(pk=course_id).exists()
    sam.delete()
    teacher.delete()
    rows = list(
        AuditEvent.objects.filter(course_ref=course_id)
        .order_by("id")
        .values_list("action", "actor_name", "subject_name", "course_title")
    )
    assert rows == [
        ("course.created", "teacher", "", "Execution 101"),
        ("member.removed", "teacher", "sam", "Execution 101"),
        ("course.deleted", "teacher", "", "Execution 101"),
    ]


def test_the_database_refuses_to_change_or_delete_an_event(db: None) -> None:
    client = logged_in(UserFactory(username="teacher"))
    course = _course(client)
    event = AuditEvent.objects.get(course_ref=course.pk)
    attempts = [
        lambda: AuditEvent.objects.filter(pk=event.pk).update(actor_name="nobody"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
        lambda: connection.cursor().execute(
            "UPDATE classroom_auditevent SET action = 'x' WHERE id = %s", [event.pk]
        ),
        lambda: connection.cursor().execute("DELETE FROM classroom_auditevent"),
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    event.refresh_from_db()
    assert (event.actor_name, event.action) == ("teacher", "course.created")


def test_only_instructors_see_the_log(db: None) -> None:
    teacher = logged_in(UserFactory(username="teacher"))
    course = _course(teacher)
    url = reverse("classroom:audit_log", args=[course.pk])
    manage = reverse("classroom:course_manage", args=[course.pk])
    assert url in teacher.get(manage).content.decode()
    assistant = UserFactory(username="ta")
    MembershipFactory(course=course, user=assistant, role=Role.ASSISTANT)
    ta = logged_in(assistant)
    assert ta.get(url).status_code == 403
    assert url not in ta.get(manage).content.decode()
    assert Membership.objects.filter(course=course).count() == 2
