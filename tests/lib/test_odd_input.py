"""Each 500 that the no-500 harness (tests/fuzz/) found on 3103616, as a named case: odd
numbers, NUL characters and forged fields get a clear answer (a 4xx, a message, a sensible
default), never a 500. The harness itself keeps every other request honest."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground.classroom.models import Mode, Submission
from tests.fuzz.world import World, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build()


def _url(world: World, name: str) -> str:
    item = world.items[Mode.OUTPUT]
    course, assignment = world.course.pk, world.assignment.pk
    return {
        "copy": reverse("programs:new") + "?copy=%C2%B2",
        "events": reverse("runs:events", args=[world.runs["user"].pk]) + "?after=%C2%B2",
        "poll": reverse("classroom:item", args=[course, assignment, item.pk])
        + "?submission=%C2%B2",
        "filter": reverse("classroom:submissions", args=[course, assignment])
        + "?item=%C2%B2&student=%E2%91%A0&page=%C2%B2",
        "signup": reverse("signup") + "?next=0",
        "compare": reverse("benchmarks:compare") + "?a=%D9%A1&b=9999999999999999999999",
        "admin-delete": reverse("admin:auth_user_delete", args=[world.users["user"].pk])
        + "?_to_field=",
        "admin-change": reverse("admin:auth_user_change", args=[world.users["user"].pk])
        + "?_to_field=",
    }[name]


@pytest.mark.parametrize(
    ("role", "name", "status"),
    [
        ("anon", "copy", 200),  # "²".isdigit() is True, int("²") raised
        ("user", "events", 200),
        ("student", "poll", 404),
        ("instructor", "filter", 200),
        ("user", "signup", 302),  # redirect("0") looked for a view called "0"
        ("user", "compare", 400),
        # Django's admin looked up a field named "" (the delete page then refuses: accounts are
        # deleted by manage.py privacy, docs/PRIVACY.md)
        ("admin", "admin-delete", 403),
        ("admin", "admin-change", 200),
    ],
)
def test_odd_query_values_get_an_answer_not_a_500(
    world: World, role: str, name: str, status: int
) -> None:
    client = world.client(role)
    client.raise_request_exception = True
    response = client.get(_url(world, name))
    assert response.status_code == status


def test_a_signed_in_visitor_on_the_signup_page_goes_to_the_address_next_names(
    world: World,
) -> None:
    response = world.client("user").get(reverse("signup") + "?next=/runs/")
    assert response["Location"] == "/runs/"
    response = world.client("user").get(reverse("signup") + "?next=home")
    assert response["Location"] == "home"  # an address (relative), never a view's name


@pytest.mark.parametrize(
    ("field", "value"),
    [("cpu_s", "²"), ("max_steps", "①"), ("max_tokens", "²")],
)
def test_odd_numbers_in_the_run_form_fall_back_to_the_defaults(
    world: World, field: str, value: str, django_capture_on_commit_callbacks: Any
) -> None:
    url = reverse("runs:start", args=[world.programs["user"].pk])
    response = world.client("user").post(url, {"method": "real", field: value})
    assert response.status_code == 302
    assert world.programs["user"].runs.latest("id").limits == {}


def test_a_nul_in_a_join_code_is_not_a_join_code(world: World) -> None:
    response = world.client("user").post(reverse("classroom:join"), {"code": "AB\x00CD"})
    assert response.status_code == 200
    assert "That is not a join code." in response.content.decode()


def test_a_nul_in_an_answer_is_refused_without_using_an_attempt(world: World) -> None:
    item = world.items[Mode.TRACE]
    url = reverse("classroom:submit", args=[world.course.pk, world.assignment.pk, item.pk])
    before = Submission.objects.count()
    response = world.client("student").post(url, {"0.total": "6\x00"})
    assert response.status_code == 200
    assert "NUL character" in response.content.decode()
    assert Submission.objects.count() == before


@pytest.mark.parametrize(("action", "field"), [("move", "item"), ("remove", "extension")])
def test_a_forged_id_in_a_staff_form_is_a_404(world: World, action: str, field: str) -> None:
    name = "assignment_edit" if action == "move" else "extensions"
    url = reverse(f"classroom:{name}", args=[world.course.pk, world.assignment.pk])
    response = world.client("instructor").post(url, {"action": action, field: "a\x00b"})
    assert response.status_code == 404
