"""Sign-up: an optional e-mail address (for password resets; never trusted for anything else),
and a way back to the page that sent the visitor (an invitation link), on this site only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a long pass phrase 1"


def _sign_up(client: Client, username: str, email: str = "", next_url: str = "") -> str:
    data = {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD}
    url = reverse("signup") + (f"?next={next_url}" if next_url else "")
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    return str(response["Location"])


def test_the_email_address_is_optional_and_kept_in_lower_case() -> None:
    assert _sign_up(Client(), "ada", "Ada@Example.EDU") == reverse("home")
    assert _sign_up(Client(), "bob") == reverse("home")
    User = get_user_model()
    assert User.objects.get(username="ada").email == "ada@example.edu"
    assert User.objects.get(username="bob").email == ""
    page = Client().get(reverse("signup")).content.decode()
    assert 'name="email"' in page
    assert "Only for resetting your password." in page


def test_a_taken_address_is_not_revealed() -> None:
    UserFactory(username="first", email="shared@example.edu")
    # A second account may give the same address: refusing would tell who has an account.
    _sign_up(Client(), "second", "shared@example.edu")
    assert get_user_model().objects.filter(email="shared@example.edu").count() == 2


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/courses/invitation/abc/", "/courses/invitation/abc/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_sign_up_returns_to_a_page_of_this_site_only(next_url: str, expected: str) -> None:
    assert _sign_up(Client(), "carol", next_url=next_url) == expected
