"""Password reset by e-mail (Django's views, our pages): the link in the mail works once; the
first page answers the same whether or not an account has the address; a bad link gets a
clear page, never an error."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
NEW = "another long pass phrase 2"


def _without_csrf(response: Any) -> str:
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", response.content.decode())


def _ask(address: str) -> Any:
    return Client().post(reverse("password_reset"), {"email": address}, follow=True)


def test_the_link_in_the_mail_resets_the_password_once(mailoutbox: list[Any]) -> None:
    UserFactory(username="ada", email="ada@example.edu")
    page = _ask("ADA@example.edu").content.decode()
    assert "If an account has this address, a link to choose a new password is on its way." in page
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ada@example.edu"]
    assert "the account ada on http://testserver" in message.body
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", message.body)
    assert link is not None
    client = Client()
    form = client.get(link.group(1), follow=True)  # Django swaps the token for a session key
    assert "Choose a new password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert done["Location"] == reverse("password_reset_complete")
    assert Client().login(username="ada", password=NEW)
    again = Client().get(link.group(1), follow=True).content.decode()
    assert "This link does not work" in again


def test_an_unknown_address_gets_the_same_answer_and_no_mail(mailoutbox: list[Any]) -> None:
    UserFactory(username="ada", email="ada@example.edu")
    known = _ask("ada@example.edu")
    unknown = _ask("nobody@example.edu")
    assert known.status_code == unknown.status_code == 200
    assert _without_csrf(known) == _without_csrf(unknown)
    assert len(mailoutbox) == 1


@pytest.mark.parametrize("path", ["MQ/bad-token/", "x/y/"])
def test_a_bad_link_gets_a_clear_page(path: str) -> None:
    response = Client().get("/accounts/password/reset/" + path)
    assert response.status_code == 200
    assert "This link does not work" in response.content.decode()


def test_a_link_with_a_nul_gets_the_sites_clear_400() -> None:
    # Every address holding a NUL is refused before any view (playground/lib/middleware.py).
    response = Client().get("/accounts/password/reset/%00/%00/")
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_the_login_page_offers_a_reset() -> None:
    assert reverse("password_reset") in Client().get(reverse("login")).content.decode()
