"""L11 of the 2026-12 security review: assistants grade, they do not delete. An item (with every
submission to it) is deleted by an instructor only; the assistant neither gets the confirmation
page nor can post it, and sees no Delete link."""

from __future__ import annotations

import pytest
from django.urls import reverse

from playground.classroom.models import Item, Role, Submission
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    MembershipFactory,
    SubmissionFactory,
    logged_in,
    staffed_course,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_assistant_cannot_delete_an_item(db: None) -> None:
    course, teacher = staffed_course()
    assistant = UserFactory(username="ta")
    MembershipFactory(course=course, user=assistant, role=Role.ASSISTANT)
    assignment = AssignmentFactory(course=course)
    item = ItemFactory(assignment=assignment, title="Sum")
    SubmissionFactory(item=item, student=UserFactory())
    url = reverse("classroom:item_delete", args=[course.pk, assignment.pk, item.pk])
    ta = logged_in(assistant)
    assert ta.get(url).status_code == 403
    assert ta.post(url, {"confirm": "yes"}).status_code == 403
    assert Item.objects.filter(pk=item.pk).exists()
    assert Submission.objects.filter(item=item).count() == 1
    edit = reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
    assert url not in ta.get(edit).content.decode()
    # The instructor may, after the confirmation.
    teacher_client = logged_in(teacher)
    assert url in teacher_client.get(edit).content.decode()
    assert teacher_client.post(url, {"confirm": "yes"}).status_code == 302
    assert not Item.objects.filter(pk=item.pk).exists()
