"""Who may use each moderation route: anonymous visitors, a signed-in user, the owner of the
reported program, site staff and a superuser. Course staff are not site staff."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import get_resolver, reverse

from playground.classroom.models import Course, Membership, Role
from playground.moderation.models import ProgramLock, Report
from tests.factories import ProgramFactory, UserFactory
from tests.moderation.helpers import client_for, public_program

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "user", "owner", "course instructor", "staff", "superuser")
# GET pages and POST actions of moderators: what each role gets (302 for staff is the action's
# redirect after it was done; for visitors, the redirect to the login page).
STAFF_ONLY = {
    "anonymous": "login",
    "user": 404,
    "owner": 404,
    "course instructor": 404,
    "staff": "ok",
    "superuser": "ok",
}
ROUTES: list[tuple[str, str, str]] = [
    # (url name, method, which object)
    ("moderation:reports", "get", ""),
    ("moderation:program", "get", "program"),
    ("moderation:dismiss", "post", "program"),
    ("moderation:unpublish", "post", "program"),
    ("moderation:allow", "post", "locked"),
    ("moderation:accounts", "get", ""),
    ("moderation:account", "get", "account"),
    ("moderation:disable", "post", "account"),
    ("moderation:enable", "post", "disabled"),
    ("moderation:log", "get", ""),
]


def test_every_moderation_route_is_in_the_matrix() -> None:
    names = {
        f"moderation:{name}"
        for name in get_resolver().namespace_dict["moderation"][1].reverse_dict
        if isinstance(name, str)
    }
    assert names == {name for name, _, _ in ROUTES} | {"moderation:report"}


def _world() -> dict[str, Any]:
    owner = UserFactory(username="owner")
    program = public_program(owner=owner, title="Reported")
    Report.objects.create(program=program, reporter_key="ip:x", reason="spam")
    locked = ProgramFactory(owner=owner, title="Locked", is_public=False)
    ProgramLock.objects.create(program=locked, reason="spam")
    instructor = UserFactory()
    course = Course.objects.create(title="C", created_by=instructor)
    Membership.objects.create(course=course, user=instructor, role=Role.INSTRUCTOR)
    people = {
        "anonymous": None,
        "user": UserFactory(),
        "owner": owner,
        "course instructor": instructor,
        "staff": UserFactory(is_staff=True),
        "superuser": UserFactory(is_staff=True, is_superuser=True),
    }
    return {
        "people": people,
        "program": program,
        "locked": locked,
        "account": UserFactory(username="target"),
        "disabled": UserFactory(username="gone", is_active=False),
    }


def _url(world: dict[str, Any], name: str, which: str) -> str:
    if not which:
        return reverse(name)
    obj = world[which]
    key = "user_id" if which in ("account", "disabled") else "pk"
    return reverse(name, kwargs={key: obj.pk})


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "which"), ROUTES)
def test_moderators_pages_and_actions(role: str, name: str, method: str, which: str) -> None:
    world = _world()
    client = client_for(world["people"][role])
    url = _url(world, name, which)
    data = {"reason": "spam", "message": "", "note": ""} if method == "post" else {}
    response = getattr(client, method)(url, data)
    expected = STAFF_ONLY[role]
    if expected == "login":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    elif expected == 404:
        assert response.status_code == 404
    else:
        assert response.status_code == (200 if method == "get" else 302)
    # Only staff changed anything.
    world["program"].refresh_from_db()
    world["account"].refresh_from_db()
    world["disabled"].refresh_from_db()
    done = expected == "ok"
    if name == "moderation:unpublish":
        assert world["program"].is_public is not done
    if name == "moderation:dismiss":
        assert Report.objects.open().exists() is not done
    if name == "moderation:allow":
        assert ProgramLock.objects.filter(program=world["locked"]).exists() is not done
    if name == "moderation:disable":
        assert world["account"].is_active is not done
    if name == "moderation:enable":
        assert world["disabled"].is_active is done


@pytest.mark.parametrize("role", ROLES)
def test_reporting_is_open_to_everyone_but_the_owner(role: str) -> None:
    world = _world()
    client = client_for(world["people"][role])
    url = reverse("moderation:report", args=[world["program"].pk])
    before = Report.objects.count()
    page = client.get(url)
    posted = client.post(url, {"reason": "abuse"})
    if role == "owner":
        assert page.status_code == 302
        assert posted.status_code == 302
        assert Report.objects.count() == before
    else:
        assert page.status_code == 200
        assert posted.status_code == 302
        assert Report.objects.count() == before + 1
    # A private program (here, one that staff locked) cannot be reported.
    private = reverse("moderation:report", args=[world["locked"].pk])
    assert client.post(private, {"reason": "abuse"}).status_code == 404
    assert not Report.objects.filter(program=world["locked"]).exists()


def test_a_staff_member_cannot_disable_themselves_or_a_superuser_or_another_staff_member() -> None:
    moderator = UserFactory(is_staff=True)
    root = UserFactory(is_staff=True, is_superuser=True)
    colleague = UserFactory(is_staff=True)
    client = client_for(moderator)
    for target in (moderator, root, colleague):
        response = client.post(reverse("moderation:disable", args=[target.pk]), {"note": "x"})
        assert response.status_code == 302
        target.refresh_from_db()
        assert target.is_active, target
    page = client.get(reverse("moderation:account", args=[root.pk])).content.decode()
    assert "Only a superuser may disable or enable a staff or superuser account." in page
    assert 'id="disable-form"' not in page

    # A superuser may disable a staff member and another superuser, but not themselves.
    superuser = client_for(root)
    superuser.post(reverse("moderation:disable", args=[colleague.pk]), {"note": "left"})
    colleague.refresh_from_db()
    assert not colleague.is_active
    other_root = UserFactory(is_staff=True, is_superuser=True)
    superuser.post(reverse("moderation:disable", args=[other_root.pk]), {"note": ""})
    other_root.refresh_from_db()
    assert not other_root.is_active
    superuser.post(reverse("moderation:disable", args=[root.pk]), {"note": ""})
    root.refresh_from_db()
    assert root.is_active
