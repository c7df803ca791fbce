"""Who gets what: every classroom page and API endpoint against six people (anonymous, a
student of the course, a student of another course, an assistant, an instructor, an instructor
of another course). Not a member: 404 (a course's existence is not revealed); a student on a
staff page: 403; an assistant on an instructor-only action (deleting, roles, the audit log):
403; anonymous on a page: the login redirect. Invitations: only the invited person answers one
on their page (404 for anyone else); an e-mailed link is a capability of whoever holds it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.classroom import invitations
from playground.classroom.models import (
    Assignment,
    Course,
    Invitation,
    Item,
    Membership,
    Mode,
    Role,
    Submission,
)
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

PEOPLE = ["anonymous", "student", "outsider", "assistant", "instructor", "other_instructor"]


@pytest.fixture
def world() -> dict[str, Any]:
    now = timezone.now()
    users = {name: UserFactory(username=name) for name in PEOPLE[1:]}
    course = Course.objects.create(title="Execution 101", created_by=users["instructor"])
    other = Course.objects.create(title="Other course", created_by=users["other_instructor"])
    for name, role in (
        ("student", Role.STUDENT),
        ("assistant", Role.ASSISTANT),
        ("instructor", Role.INSTRUCTOR),
    ):
        Membership.objects.create(course=course, user=users[name], role=role)
    Membership.objects.create(course=other, user=users["outsider"], role=Role.STUDENT)
    Membership.objects.create(course=other, user=users["other_instructor"], role=Role.INSTRUCTOR)
    assignment = Assignment.objects.create(
        course=course,
        title="Loops",
        opens_at=now - timedelta(hours=1),
        due_at=now + timedelta(days=1),
    )
    program = ProgramFactory(owner=users["instructor"], source="def f(x):\n    return x * 2\n")
    item = Item.objects.create(assignment=assignment, mode=Mode.OUTPUT, program=program)
    submission = Submission.objects.create(
        item=item,
        student=users["student"],
        attempt=1,
        answer="4",
        status=Submission.Status.GRADED,
        score=1.0,
        credit=1.0,
    )
    member = Membership.objects.get(course=course, user=users["student"])
    # A member who accepted an invitation offering the assistant role, waiting for confirmation.
    waiting = UserFactory(username="waiting")
    pending = Membership.objects.create(
        course=course, user=waiting, role=Role.STUDENT, pending_role=Role.ASSISTANT
    )
    by_mail = Invitation.objects.create(
        course=course, email="new@example.edu", invited_by=users["instructor"]
    )
    on_site = Invitation.objects.create(
        course=course, invitee=users["outsider"], invited_by=users["instructor"]
    )
    return {
        "users": users,
        "c": course.pk,
        "a": assignment.pk,
        "i": item.pk,
        "s": submission.pk,
        "m": member.pk,
        "p": pending.pk,
        "mail": by_mail.pk,
        "site": on_site.pk,
        "token": invitations.make_token(by_mail),
    }


def _client(world: dict[str, Any], who: str) -> Client:
    client = Client()
    if who != "anonymous":
        client.force_login(world["users"][who])
    return client


def _status(response: Any) -> int | str:
    if response.status_code == 302 and "/accounts/login" in response["Location"]:
        return "login"
    return int(response.status_code)


# Expected statuses, in the order of PEOPLE.
MEMBER_PAGE = ["login", 200, 404, 200, 200, 404]
STAFF_PAGE = ["login", 403, 404, 200, 200, 404]
INSTRUCTOR_PAGE = ["login", 403, 404, 403, 200, 404]

PAGES = [
    ("classroom:course", ("c",), MEMBER_PAGE),
    ("classroom:assignment", ("c", "a"), MEMBER_PAGE),
    ("classroom:item", ("c", "a", "i"), MEMBER_PAGE),
    ("classroom:course_manage", ("c",), STAFF_PAGE),
    ("classroom:assignment_new", ("c",), STAFF_PAGE),
    ("classroom:assignment_edit", ("c", "a"), STAFF_PAGE),
    ("classroom:item_new", ("c", "a"), STAFF_PAGE),
    ("classroom:item_edit", ("c", "a", "i"), STAFF_PAGE),
    ("classroom:item_stats", ("c", "a", "i"), STAFF_PAGE),
    ("classroom:library_search", ("c", "a"), STAFF_PAGE),
    ("classroom:extensions", ("c", "a"), STAFF_PAGE),
    ("classroom:submissions", ("c", "a"), STAFF_PAGE),
    ("classroom:gradebook", ("c", "a"), STAFF_PAGE),
    ("classroom:gradebook_csv", ("c", "a"), STAFF_PAGE),
    ("classroom:item_delete", ("c", "a", "i"), INSTRUCTOR_PAGE),  # L11: assistants do not delete
    ("classroom:audit_log", ("c",), INSTRUCTOR_PAGE),
]


@pytest.mark.parametrize(("name", "args", "expected"), PAGES, ids=[p[0] for p in PAGES])
def test_pages(
    world: dict[str, Any], name: str, args: tuple[str, ...], expected: list[Any]
) -> None:
    url = reverse(name, args=[world[a] for a in args])
    got = [_status(_client(world, who).get(url)) for who in PEOPLE]
    assert got == expected, dict(zip(PEOPLE, got, strict=True))


def test_everyone_signed_in_has_a_courses_page(world: dict[str, Any]) -> None:
    url = reverse("classroom:courses")
    got = [_status(_client(world, who).get(url)) for who in PEOPLE]
    assert got == ["login", 200, 200, 200, 200, 200]


# Changes (POST): who may make them. 302 = done and redirected back; anonymous goes to login.
STAFF_ACTION = ["login", 403, 404, 302, 302, 404]
INSTRUCTOR_ACTION = ["login", 403, 404, 403, 302, 404]


def test_changes_need_the_right_role(world: dict[str, Any]) -> None:
    cases = [
        ("classroom:course_code", ("c",), {"action": "rotate"}, INSTRUCTOR_ACTION),
        ("classroom:member_role", ("c", "m"), {"role": "student"}, INSTRUCTOR_ACTION),
        ("classroom:member_confirm", ("c", "p"), {"action": "refuse"}, INSTRUCTOR_ACTION),
        ("classroom:override", ("c", "s"), {"credit": "0.5", "comment": "ok"}, STAFF_ACTION),
        ("classroom:course_roster", ("c",), {}, STAFF_ACTION),  # no file: a message, no change
        ("classroom:invitation_resend", ("c", "mail"), {}, STAFF_ACTION),
        ("classroom:invitation_revoke", ("c", "mail"), {}, STAFF_ACTION),
        # Last but one: the submission above goes with the item.
        ("classroom:item_delete", ("c", "a", "i"), {"confirm": "yes"}, INSTRUCTOR_ACTION),
    ]
    for name, args, data, expected in cases:
        url = reverse(name, args=[world[a] for a in args])
        got = [_status(_client(world, who).post(url, data)) for who in PEOPLE]
        assert got == expected, (name, dict(zip(PEOPLE, got, strict=True)))
    assert not Item.objects.filter(pk=world["i"]).exists()
    # Deleting the course: the instructor only, last (it is gone afterwards).
    url = reverse("classroom:course_delete", args=[world["c"]])
    data = {"confirm": "Execution 101"}
    got = [_status(_client(world, who).post(url, data)) for who in PEOPLE]
    assert got == INSTRUCTOR_ACTION, dict(zip(PEOPLE, got, strict=True))
    assert not Course.objects.filter(pk=world["c"]).exists()


def test_submitting_is_for_the_course_students(world: dict[str, Any]) -> None:
    url = reverse("classroom:submit", args=[world["c"], world["a"], world["i"]])
    outsider = _status(_client(world, "outsider").post(url, {"answer": "4"}))
    anonymous = _status(_client(world, "anonymous").post(url, {"answer": "4"}))
    assert (anonymous, outsider) == ("login", 404)
    staff = _client(world, "instructor").post(url, {"answer": "4"})
    assert staff.status_code == 409  # refused on the page, which says why
    assert "students submit answers." in staff.content.decode()
    assert Submission.objects.count() == 1  # nobody but the student submitted


def test_the_api_follows_the_same_rules(world: dict[str, Any]) -> None:
    gradebook = f"/api/courses/{world['c']}/assignments/{world['a']}/gradebook"
    submissions = f"/api/courses/{world['c']}/assignments/{world['a']}/submissions"
    got = [_status(_client(world, who).get(gradebook)) for who in PEOPLE]
    assert got == [404, 403, 404, 200, 200, 404]
    got = [_status(_client(world, who).get(submissions)) for who in PEOPLE]
    assert got == [404, 200, 404, 200, 200, 404]
    body = _client(world, "instructor").get(gradebook).json()
    assert [s["username"] for s in body["students"]] == ["student", "waiting"]
    assert body["students"][0]["items"][0]["credit"] == 1.0
    mine = _client(world, "student").get(submissions).json()
    assert [s["id"] for s in mine] == [world["s"]]
    assert "student" not in mine[0]  # a student's own list does not name anyone


def test_only_the_invited_person_answers_an_invitation_on_their_page(
    world: dict[str, Any],
) -> None:
    # The invitation is the outsider's: everyone else is told it does not exist.
    url = reverse("classroom:invitation_answer", args=[world["site"]])
    got = [_status(_client(world, who).post(url, {"action": "decline"})) for who in PEOPLE]
    assert got == ["login", 404, 302, 404, 404, 404]
    assert Invitation.objects.get(pk=world["site"]).status == Invitation.Status.DECLINED


def test_an_emailed_link_is_open_to_whoever_holds_it(world: dict[str, Any]) -> None:
    url = reverse("classroom:invitation", args=[world["token"]])
    got = [_status(_client(world, who).get(url)) for who in PEOPLE]
    assert got == [200, 200, 200, 200, 200, 200]
    forged = reverse("classroom:invitation", args=[world["token"] + "x"])
    got = [_status(_client(world, who).get(forged)) for who in PEOPLE]
    assert got == [400, 400, 400, 400, 400, 400]
    # Accepting needs an account (anonymous: the login page); the first to accept uses it up.
    got = [_status(_client(world, who).post(url, {"action": "accept"})) for who in PEOPLE]
    assert got == ["login", 302, 410, 410, 410, 410]


def test_every_member_may_leave_nobody_else(world: dict[str, Any]) -> None:
    url = reverse("classroom:leave", args=[world["c"]])
    got = [_status(_client(world, who).post(url)) for who in PEOPLE]
    assert got == ["login", 302, 404, 302, 302, 404]
    left = set(
        Membership.objects.filter(course_id=world["c"]).values_list("user__username", flat=True)
    )
    assert left == {"instructor", "waiting"}  # the only instructor stays
