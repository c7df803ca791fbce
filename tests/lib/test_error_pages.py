"""What a visitor sees when something is wrong: a NUL in the address is a clear 400 (it was a
500: review 2026-12, bug 3), and the 400, 403, 404, 405 and 500 pages look like the site, say
what happened and lead back (the 500 page was bare HTML with no link: bug 17)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.template import loader
from django.test import Client
from django.urls import reverse

from playground.classroom.models import Course, Membership, Role
from playground.programs import views as program_views
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

SITE_CSS = "/static/css/site.css"


def _looks_like_the_site(html: str) -> None:
    assert SITE_CSS in html
    assert 'class="topbar"' in html
    assert f'href="{reverse("home")}"' in html


@pytest.mark.parametrize(
    "url",
    [
        "/library/?q=%00",
        "/library/?dataset=p3&q=queen&module=%00",
        "/library/?dataset=bbh&q=a%00b",
        "/library/puzzles/%00/",
        "/library/puzzles/%00/run/",
        "/library/tasks/boolean_expressions/?q=%00",
        "/s/%00/",
        "/s/%00/embed/",
        "/runs/?page=%00",
        "/admin/auth/user/?q=%00",
    ],
)
def test_a_nul_in_the_address_is_a_clear_400(url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 400
    page = response.content.decode()
    assert "NUL character" in page
    _looks_like_the_site(page)


def test_a_nul_in_a_course_library_search_is_a_clear_400() -> None:
    from tests.fuzz.world import build

    world = build()
    url = reverse("classroom:library_search", args=[world.course.pk, world.assignment.pk])
    response = world.client("instructor").get(url + "?q=%00&mode=output")
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_the_api_says_it_in_json() -> None:
    response = Client().get("/api/runs/1?x=%00")
    assert response.status_code == 400
    assert "NUL character" in response.json()["detail"]


def test_a_cookie_with_a_nul_is_ignored_not_a_500() -> None:
    client = Client()
    client.cookies["sessionid"] = "abcdefgh\x00ijkl"
    response = client.get("/runs/")
    assert response.status_code == 200


def test_the_500_page_is_the_sites(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(program_views, "render", broken)
    client = Client(raise_request_exception=False)
    response = client.get(reverse("programs:library"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "a bug" not in page
    _looks_like_the_site(page)
    assert f'href="{reverse("programs:library")}"' in page


def test_the_500_template_renders_without_a_request_or_a_database() -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the 500 page queried the database")

    with connection.execute_wrapper(refuse):
        page = loader.get_template("500.html").render({})
    _looks_like_the_site(page)


def test_a_form_address_opened_as_a_page_says_so_on_the_sites_page() -> None:
    user = UserFactory()
    program = ProgramFactory(owner=user)
    client = Client()
    client.force_login(user)
    response = client.get(reverse("programs:delete", args=[program.pk]))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    page = response.content.decode()
    assert "where a form is sent" in page
    _looks_like_the_site(page)


def test_the_api_keeps_its_own_405() -> None:
    response = Client().delete("/api/runs")
    assert response.status_code == 405
    assert "<html" not in response.content.decode()


def test_the_404_and_403_pages_are_the_sites() -> None:
    page = Client().get("/programs/999999/").content.decode()
    assert "Not found" in page
    _looks_like_the_site(page)
    student = UserFactory()
    course = Course.objects.create(title="C")
    Membership.objects.create(course=course, user=student, role=Role.STUDENT)
    client = Client()
    client.force_login(student)
    response = client.get(reverse("classroom:course_manage", args=[course.pk]))
    assert response.status_code == 403
    _looks_like_the_site(response.content.decode())


def test_a_form_sent_without_its_csrf_token_gets_the_sites_page() -> None:
    response = Client(enforce_csrf_checks=True).post(reverse("programs:new"), {"source": "x"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "This form could not be sent" in page
    _looks_like_the_site(page)
