"""H2 of the 2026-12 security review: nobody is enrolled without their own consent. Each attack
is made through the pages, as a hostile user would: a course of one's own with an exam-mode
assignment open until 2099, a roster naming the victim, identities squatted before sign-up.
(These tests use only what existed before the fix, so each one failed on 3103616.)"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.classroom.models import Course, Membership, Role
from playground.runs.models import Run
from tests.classroom.staff_factories import (
    AssignmentFactory,
    logged_in,
    student_of,
)
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a long pass phrase 1"


def text(response: Any) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def upload(client: Client, course: Course, content: bytes) -> str:
    url = reverse("classroom:course_roster", args=[course.pk])
    roster = SimpleUploadedFile("roster.csv", content, content_type="text/csv")
    return text(client.post(url, {"file": roster}, follow=True))


@pytest.fixture
def attack(db: None) -> SimpleNamespace:
    """The victim has an account and a program; the attacker signed up, made a course and an
    exam-mode assignment that is open now and until 2099."""
    victim = UserFactory(username="victim", email="victim@uni.edu")
    attacker = logged_in(UserFactory(username="mallory"))
    attacker.post(reverse("classroom:course_new"), {"title": "Totally legit course"})
    course = Course.objects.get()
    AssignmentFactory(
        course=course,
        exam_mode=True,
        opens_at=timezone.now() - timedelta(hours=1),
        due_at=timezone.now().replace(year=2099),
    )
    program = ProgramFactory(owner=victim, source="def f(x):\n    return x * 2\n", call="f(2)")
    return SimpleNamespace(victim=victim, attacker=attacker, course=course, program=program)


def _run(client: Client, program: Any) -> Any:
    return client.post(reverse("runs:start", args=[program.pk]), {"method": "real"})


def test_a_roster_naming_someone_enrols_nobody(attack: SimpleNamespace) -> None:
    upload(attack.attacker, attack.course, b"victim\nvictim@uni.edu\nVICTIM@UNI.EDU,student\n")
    assert not Membership.objects.filter(user=attack.victim).exists()
    # The exam the attacker set up does not bind the victim: their runs start as always.
    victim = logged_in(attack.victim)
    response = _run(victim, attack.program)
    assert response.status_code == 302, text(response)
    assert Run.objects.filter(owner=attack.victim).count() == 1
    # The course is not in the victim's list, and its pages are not theirs.
    page = victim.get(reverse("classroom:courses")).content.decode()
    listed = re.search(r'<ul class="items" id="my-courses">(.*?)</ul>', page, re.DOTALL)
    assert listed is not None
    assert "Totally legit course" not in listed.group(1)
    assert victim.get(reverse("classroom:course", args=[attack.course.pk])).status_code == 404


def test_logging_in_or_signing_up_claims_nothing(attack: SimpleNamespace) -> None:
    UserFactory(username="later", email="later@uni.edu")
    upload(attack.attacker, attack.course, b"newbie\nnewbie@uni.edu\nlater@uni.edu,assistant\n")
    newbie = Client()
    response = newbie.post(
        reverse("signup"),
        {
            "username": "newbie",
            "email": "newbie@uni.edu",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    newbie.get(reverse("classroom:courses"))
    later = Client()
    login = {"username": "later", "password": "correct horse battery staple"}
    assert later.post(reverse("login"), login).status_code == 302
    later.get(reverse("classroom:courses"))
    members = Membership.objects.filter(course=attack.course)
    assert list(members.values_list("user__username", flat=True)) == ["mallory"]


@pytest.mark.parametrize("username", ["alice", "alice@uni.edu"])
def test_a_squatted_roster_identity_gets_no_staff_role(db: None, username: str) -> None:
    teacher = logged_in(UserFactory(username="teacher"))
    teacher.post(reverse("classroom:course_new"), {"title": "Execution 101"})
    course = Course.objects.get()
    upload(teacher, course, b"alice,assistant\nalice@uni.edu,assistant\n")
    # Someone else registers the names the roster expects before Alice does...
    squatter = Client()
    squatter.post(
        reverse("signup"),
        {"username": username, "email": "alice@uni.edu", "password1": PASSWORD,
         "password2": PASSWORD},
    )  # fmt: skip
    manage = reverse("classroom:course_manage", args=[course.pk])
    assert squatter.get(manage).status_code == 404  # not a member at all
    # ...and even with the join code (handed out in class) they join as a student only.
    squatter.post(reverse("classroom:join"), {"code": course.join_code})
    member = Membership.objects.get(course=course, user__username=username)
    assert member.role == Role.STUDENT
    assert squatter.get(manage).status_code == 403
    gradebook_api = f"/api/courses/{course.pk}/assignments/0/gradebook"
    assert squatter.get(gradebook_api).status_code in (403, 404)


def test_a_student_can_leave_a_course(db: None) -> None:
    teacher = logged_in(UserFactory(username="teacher"))
    teacher.post(reverse("classroom:course_new"), {"title": "Execution 101"})
    course = Course.objects.get()
    sam = student_of(course, "sam")
    client = logged_in(sam)
    response = client.post(reverse("classroom:leave", args=[course.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(course=course, user=sam).exists()
    assert "You left “Execution 101”." in text(client.get(response["Location"]))
