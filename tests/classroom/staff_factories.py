"""factory_boy factories for the staff-side classroom tests: a course with its members, an
assignment (open since an hour, due in a day), items and graded submissions; and how those
tests read a page (``markup``, ``text``)."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import factory
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.classroom.models import (
    Assignment,
    Course,
    Item,
    Membership,
    Mode,
    Role,
    Submission,
)
from playground.programs.models import Dataset
from tests.factories import ProgramFactory, UserFactory


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    title = factory.Sequence(lambda n: f"Course {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    course = factory.SubFactory(CourseFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.STUDENT


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    course = factory.SubFactory(CourseFactory)
    title = factory.Sequence(lambda n: f"Assignment {n}")
    opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


class LibraryProgramFactory(ProgramFactory):
    """A CRUXEval-like public program of the built-in library."""

    title = factory.Sequence(lambda n: f"CRUXEval sample_{n}")
    external_id = factory.Sequence(lambda n: f"sample_{n}")
    dataset = Dataset.CRUXEVAL
    owner = None
    is_public = True
    source = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    call = "f([1, 2, 3])"


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    assignment = factory.SubFactory(AssignmentFactory)
    mode = Mode.OUTPUT
    title = factory.Sequence(lambda n: f"Item {n}")
    program = factory.SubFactory(LibraryProgramFactory)
    position = factory.Sequence(lambda n: n)


class SubmissionFactory(factory.django.DjangoModelFactory):
    """A graded submission; ``credit`` defaults to ``score`` (on time)."""

    class Meta:
        model = Submission

    item = factory.SubFactory(ItemFactory)
    student = factory.SubFactory(UserFactory)
    attempt = 1
    answer = "6"
    status = Submission.Status.GRADED
    score = 1.0
    credit = factory.LazyAttribute(lambda s: s.score)


def staffed_course(**fields: Any) -> tuple[Course, Any]:
    """A course and its instructor."""
    instructor = UserFactory(username=fields.pop("instructor", "teacher"))
    course = CourseFactory(created_by=instructor, **fields)
    MembershipFactory(course=course, user=instructor, role=Role.INSTRUCTOR)
    return course, instructor


def student_of(course: Course, username: str, **fields: Any) -> Any:
    user = UserFactory(username=username, **fields)
    MembershipFactory(course=course, user=user, role=Role.STUDENT)
    return user


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def markup(response: Any) -> str:
    """The page's HTML with its entities decoded."""
    return html.unescape(response.content.decode())


def text(response: Any) -> str:
    """What a reader sees: the page without its tags, spaces collapsed."""
    page = re.sub(r"</?(a|b|code|em|i|span|strong)\b[^>]*>", "", response.content.decode())
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def manage_url(course: Course) -> str:
    return reverse("classroom:course_manage", args=[course.pk])
