"""Hostile values in what an LMS (or anyone) sends to the LTI routes get a refusal page, never a
500 (tests/fuzz/test_no_500.py found a NUL in the login request reaching PostgreSQL, and control
characters in a deep-linking token or a state reaching a cache key)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field", ["iss", "login_hint", "target_link_uri", "client_id"])
@pytest.mark.parametrize("value", ["a\x00b", "x\r\nSet-Cookie: pwned=1", "i" * 5000])
def test_an_unreadable_login_parameter_is_refused_with_its_name(
    client: Client, field: str, value: str
) -> None:
    params = {
        "iss": "https://lms.example",
        "login_hint": "hint",
        "target_link_uri": "http://testserver/lti/launch/",
        "client_id": "tool",
        field: value,
    }
    response = client.post("/lti/login/", params)
    assert response.status_code == 400
    assert f"unreadable {field}" in response.content.decode()


def test_a_launch_whose_state_is_not_one_of_ours_is_refused(client: Client) -> None:
    response = client.post("/lti/launch/", {"state": "x\r\nSet-Cookie: a=1", "id_token": "e.y.z"})
    assert response.status_code == 400
    assert "pwned" not in response.content.decode()


@pytest.mark.parametrize("token", ["x%0D%0ASet-Cookie:%20pwned=1", "%3Csvg%20onload=alert(1)%3E"])
def test_a_deep_linking_token_that_is_not_a_token_is_not_found(client: Client, token: str) -> None:
    client.force_login(UserFactory())
    assert client.get(f"/lti/deep-link/{token}/").status_code == 404
