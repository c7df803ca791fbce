"""Inside the LMS's iframe: a session an LTI launch signed in may be framed by that platform
alone, and its cookies are SameSite=None over HTTPS; any other session keeps the site's
defaults (never framed, Lax cookies)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LMS = "https://canvas.uni.example"


def _client(*, lti: bool) -> Client:
    client = Client()
    client.force_login(UserFactory())
    if lti:
        session = client.session
        session["lti"] = {"platform": 1, "origins": [LMS, "javascript:alert(1)"]}
        session.save()
    return client


def test_an_lti_session_is_framed_by_its_lms_only_with_cross_site_cookies() -> None:
    page = _client(lti=True).get("/courses/", secure=True)
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors {LMS}" in policy
    assert "javascript" not in policy
    assert "X-Frame-Options" not in page.headers
    csrf = page.cookies["csrftoken"]
    assert csrf["samesite"] == "None"
    assert csrf["secure"]


def test_any_other_session_is_never_framed_and_keeps_lax_cookies() -> None:
    page = _client(lti=False).get("/courses/", secure=True)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.cookies["csrftoken"]["samesite"] == "Lax"
    # Over plain HTTP an LTI session's cookies cannot be SameSite=None (browsers need Secure).
    plain = _client(lti=True).get("/courses/")
    assert plain.cookies["csrftoken"]["samesite"] == "Lax"
