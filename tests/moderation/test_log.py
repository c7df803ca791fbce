"""The moderation log: every site-level event (report, dismissal, unpublish, allow, disable,
enable), newest first, paginated, escaped, append-only; course logs do not show them."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from playground.classroom.models import AuditEvent, AuditLogIsAppendOnly, Course, Membership
from playground.moderation import services
from tests.factories import UserFactory
from tests.moderation.helpers import client_for, public_program, staff

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action


def test_every_moderation_step_is_logged_newest_first() -> None:
    owner = UserFactory(username="owner")
    program = public_program(owner=owner, title="<b>Bold</b>")
    moderator = client_for(staff(username="mod"))
    client_for().post(reverse("moderation:report", args=[program.pk]), {"reason": "spam"})
    moderator.post(reverse("moderation:dismiss", args=[program.pk]))
    moderator.post(reverse("moderation:unpublish", args=[program.pk]), {"reason": "abuse"})
    moderator.post(reverse("moderation:allow", args=[program.pk]))
    moderator.post(reverse("moderation:disable", args=[owner.pk]), {"note": "<i>why</i>"})
    moderator.post(reverse("moderation:enable", args=[owner.pk]))
    assert list(services.site_events().values_list("action", flat=True)) == [
        Action.ACCOUNT_ENABLED,
        Action.ACCOUNT_DISABLED,
        Action.PUBLISHING_ALLOWED,
        Action.PROGRAM_UNPUBLISHED,
        Action.REPORTS_DISMISSED,
        Action.PROGRAM_REPORTED,
    ]
    page = moderator.get(reverse("moderation:log")).content.decode()
    labels = [AuditEvent.Action(a).label for a in services.SITE_ACTIONS]
    assert all(label in page for label in labels)
    assert page.index("Account enabled") < page.index("Program reported")
    assert "&lt;b&gt;Bold&lt;/b&gt;" in page
    assert "&lt;i&gt;why&lt;/i&gt;" in page
    assert "<b>Bold" not in page
    # The account's page lists the events about it.
    account_page = moderator.get(reverse("moderation:account", args=[owner.pk])).content.decode()
    assert "Account disabled" in account_page

    # Append-only, as the course logs are.
    event = services.site_events().first()
    assert event is not None
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_the_log_is_paginated_and_course_logs_do_not_show_it() -> None:
    moderator = staff()
    for _ in range(105):
        services.record(Action.ACCOUNT_ENABLED, actor=moderator, subject=moderator)
    client = client_for(moderator)
    first = client.get(reverse("moderation:log")).content.decode()
    assert first.count("Account enabled</td>") == 100
    assert (
        client.get(reverse("moderation:log") + "?page=2")
        .content.decode()
        .count("Account enabled</td>")
        == 5
    )
    instructor = UserFactory()
    course = Course.objects.create(title="C", created_by=instructor)
    Membership.objects.create(course=course, user=instructor, role="instructor")
    course_log = client_for(instructor).get(reverse("classroom:audit_log", args=[course.pk]))
    assert "Account enabled" not in course_log.content.decode()
