"""Personal API tokens: made, shown once and revoked on the account page, hashed at rest; a
request with one acts as its owner on the API and the event streams (scopes, the owner's limits,
no CSRF token), and a revoked, expired, unknown or disabled account's token is a 401, never the
anonymous view."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from playground.accounts.models import ApiToken
from playground.accounts.tokens import create_token
from playground.lib import ratelimits
from playground.runs.models import Run
from playground.runs.services import start_run
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db
SOURCE = "def f(xs):\n    return sorted(xs)[-1]\n"
SECRET_PATTERN = re.compile(r"pgt_[A-Za-z0-9_-]{43}")


def _counted_user() -> Any:
    """A user whose rate counters start from zero: the counters (in Redis, by account id, for
    up to a day) outlive the test database, whose ids start again at 1 in every session."""
    return UserFactory(pk=10**6 + secrets.randbelow(10**9))


def _bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _token(user: Any = None, scope: str = "run", **extra: Any) -> tuple[ApiToken, str]:
    return create_token(user=user or UserFactory(), name="script", scope=scope, **extra)


def _start(client: Client, secret: str, **headers: str) -> Any:
    return client.post(
        "/api/runs", {"source": SOURCE, "call": "f([3, 9, 4])"}, content_type="application/json",
        **_bearer(secret), **headers,
    )  # fmt: skip


# -- The account page -----------------------------------------------------------------------


def test_the_account_page_makes_a_token_shows_it_once_and_keeps_only_its_hash(
    user_client: Client,
) -> None:
    page = user_client.get("/")
    assert 'href="/accounts/"' in page.content.decode()  # the top bar links to it
    response = user_client.post(
        "/accounts/tokens/", {"name": "laptop script", "scope": "run", "expires": "30"}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    shown = SECRET_PATTERN.findall(response.content.decode())
    assert len(shown) == 1
    secret = shown[0]
    token = ApiToken.objects.get()
    assert token.user == user_client.user  # type: ignore[attr-defined]
    assert (token.name, token.scope) == ("laptop script", "run")
    assert token.expires_at is not None
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    # At rest: a SHA-256 digest and a short prefix, never the secret.
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix)
    assert len(token.prefix) < 12
    for field in ApiToken._meta.concrete_fields:
        assert secret not in str(field.value_from_object(token))
    # Listed afterwards by name, prefix and scopes; never shown again.
    listed = user_client.get("/accounts/").content.decode()
    assert "laptop script" in listed
    assert f"{token.prefix}…" in listed
    assert "read, run" in listed
    assert secret not in listed
    # And it works.
    assert Client().get("/api/runs", **_bearer(secret)).status_code == 200


def test_a_token_is_revoked_from_the_account_page_and_stops_working_at_once(
    user_client: Client,
) -> None:
    token, secret = _token(user_client.user)  # type: ignore[attr-defined]
    assert Client().get("/api/runs", **_bearer(secret)).status_code == 200
    other, _ = _token()  # someone else's: 404, untouched
    assert user_client.post(f"/accounts/tokens/{other.pk}/revoke/").status_code == 404
    response = user_client.post(f"/accounts/tokens/{token.pk}/revoke/", follow=True)
    assert "is revoked" in response.content.decode()
    refused = Client().get("/api/runs", **_bearer(secret))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    other.refresh_from_db()
    assert other.revoked_at is None


def test_making_tokens_is_rate_limited_and_capped_per_account(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table(
        "public", {"api_tokens.user": "3/d", "api_tokens_active.user": 2}
    )
    user_client = Client()
    user_client.force_login(_counted_user())

    def make(name: str) -> Any:
        return user_client.post("/accounts/tokens/", {"name": name, "scope": "read"})

    assert SECRET_PATTERN.search(make("one").content.decode())
    assert SECRET_PATTERN.search(make("two").content.decode())
    capped = make("three")  # the cap: 2 active at once; what was typed stays in the form
    assert not SECRET_PATTERN.search(capped.content.decode())
    assert "already have 2 active API tokens" in capped.content.decode()
    assert 'value="three"' in capped.content.decode()
    first = ApiToken.objects.get(name="one")
    user_client.post(f"/accounts/tokens/{first.pk}/revoke/")  # a revoked one frees a place...
    limited = make("four")  # ...but that was the 4th attempt of the day: over 3/d
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert "Too many API tokens made: at most 3 a day." in limited.content.decode()
    assert ApiToken.objects.count() == 2


def test_the_account_pages_need_a_login() -> None:
    assert Client().get("/accounts/").status_code == 302
    assert Client().post("/accounts/tokens/", {"name": "x", "scope": "run"}).status_code == 302
    assert not ApiToken.objects.exists()


# -- Using a token ----------------------------------------------------------------------------


def test_a_token_request_acts_as_its_owner_and_needs_no_csrf_token(
    eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    owner = UserFactory()
    _, secret = _token(owner)
    # A client that enforces CSRF, as a browser would: the token needs no CSRF token.
    client = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = _start(client, secret)
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.owner == owner
    assert run.anon_owner == ""
    assert "sessionid" not in response.cookies  # no anonymous session was started for it
    assert client.get(f"/api/runs/{run.pk}", **_bearer(secret)).json()["status"] == "done"
    # The owner's pages show it; another account's token does not reach it.
    _, stranger = _token()
    assert Client().get(f"/api/runs/{run.pk}", **_bearer(stranger)).status_code == 404


def test_a_read_token_reads_but_does_not_start_runs(
    eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    owner = UserFactory()
    _, reader = _token(owner, scope="read")
    with django_capture_on_commit_callbacks(execute=True):
        run = start_run(program=ProgramFactory(owner=owner), user=owner, anon_token=None)
    assert Client().get(f"/api/runs/{run.pk}", **_bearer(reader)).status_code == 200
    assert Client().get("/api/models", **_bearer(reader)).status_code == 200
    refused = _start(Client(), reader)
    assert refused.status_code == 403
    assert "scope 'read'" in refused.json()["detail"]
    assert Run.objects.count() == 1


@pytest.mark.parametrize("case", ["unknown", "malformed", "revoked", "expired", "disabled"])
def test_a_token_that_cannot_be_used_is_a_401_never_the_anonymous_view(
    case: str, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    owner = UserFactory()
    token, secret = _token(owner)
    if case == "unknown":
        secret = "pgt_" + "A" * 43
    elif case == "malformed":
        secret = "not-a-token"
    elif case == "revoked":
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    elif case == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    else:  # the moderation's way of disabling an account
        type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    # Reads that an anonymous visitor could make (models, an empty list) are refused too.
    for response in (
        Client().get("/api/models", **_bearer(secret)),
        Client().get("/api/runs", **_bearer(secret)),
        _start(Client(), secret),
    ):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        detail = response.json()["detail"]
        expected = {"unknown": "Unknown API token", "malformed": "Unknown API token",
                    "revoked": "revoked", "expired": "expired", "disabled": "disabled"}  # fmt: skip
        assert expected[case] in detail
    assert not Run.objects.exists()


def test_with_a_session_cookie_and_a_token_the_token_decides(
    eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    """Decided: the token is who the request is; the session cookie is not read for identity
    and needs no CSRF token (a forged cross-site request cannot carry the header)."""
    browser_user, script_owner = UserFactory(), UserFactory()
    _, secret = _token(script_owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(browser_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = _start(client, secret)
    assert response.status_code == 201, response.content
    assert Run.objects.get().owner == script_owner
    # The browser's session is still signed in as before (nothing was changed or ended).
    assert client.get("/accounts/").context["user"] == browser_user
    # Without the token, the same cookie still needs its CSRF token.
    no_token = client.post(
        "/api/runs", {"source": SOURCE, "call": "f([1])"}, content_type="application/json"
    )
    assert no_token.status_code == 403


def test_a_token_is_not_read_on_pages_and_another_scheme_is_left_alone() -> None:
    owner = UserFactory()
    _, secret = _token(owner)
    page = Client().get("/accounts/", **_bearer(secret))
    assert page.status_code == 302  # pages use the session only: not signed in
    # A proxy's Basic authentication reaches the API untouched: an anonymous visitor.
    basic = Client().get("/api/models", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert basic.status_code == 200


def test_the_owners_limits_apply_to_token_requests(settings: Settings) -> None:
    """The token is its owner: a page run and a token run count against one runs.user."""
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"runs.user": "2/m"})
    owner = _counted_user()
    _, secret = _token(owner)
    page_client = Client()
    page_client.force_login(owner)
    program = ProgramFactory(is_public=True)
    assert page_client.post(f"/programs/{program.pk}/run/").status_code == 302
    assert _start(Client(REMOTE_ADDR="192.0.2.1"), secret).status_code == 201
    refused = _start(Client(REMOTE_ADDR="192.0.2.2"), secret)  # another address: same account
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many runs started: at most 2 a minute.")
    assert int(refused["Retry-After"]) >= 1


def test_last_used_is_written_at_most_once_a_minute(
    django_assert_num_queries: Any,
) -> None:
    token, secret = _token()
    assert token.last_used_at is None
    Client().get("/api/models", **_bearer(secret))
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the lookup only: no UPDATE within the minute
        Client().get("/api/models", **_bearer(secret))
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(seconds=61))
    Client().get("/api/models", **_bearer(secret))
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_at > first


def test_a_token_follows_a_run_on_its_event_stream(
    eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    owner = UserFactory()
    _, secret = _token(owner, scope="read")
    with django_capture_on_commit_callbacks(execute=True):
        run = start_run(program=ProgramFactory(owner=owner), user=owner, anon_token=None)
    assert Client().get(f"/runs/{run.pk}/events").status_code == 404  # anonymous: not theirs
    response = Client().get(f"/runs/{run.pk}/events", **_bearer(secret))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    refused = Client().get(f"/runs/{run.pk}/events", **_bearer("pgt_" + "B" * 43))
    assert refused.status_code == 401


def test_operators_see_and_revoke_tokens_in_the_admin_but_never_make_one(
    admin_client: Client,
) -> None:
    token, secret = _token()
    listing = admin_client.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200
    assert token.prefix in listing.content.decode()
    assert (
        secret
        not in admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    )
    assert admin_client.get("/admin/accounts/apitoken/add/").status_code == 403


def test_a_students_token_meets_the_hiding_policy_and_exam_mode(
    eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    from playground.classroom.models import Assignment, Item, Mode
    from playground.classroom.visibility import HIDDEN_MESSAGE
    from tests.classroom.student_world import SECRET, assignment, course_world, library_program

    w = course_world()
    program = library_program()
    with django_capture_on_commit_callbacks(execute=True):
        earlier = start_run(program=program, user=w.s1, anon_token=None)
    _, secret = _token(w.s1)
    assert SECRET in Client().get(f"/api/runs/{earlier.pk}", **_bearer(secret)).content.decode()
    opened = assignment(w.course)
    Item.objects.create(assignment=opened, mode=Mode.OUTPUT, program=program)
    for url in (f"/api/runs/{earlier.pk}", f"/runs/{earlier.pk}/events"):
        hidden = Client().get(url, **_bearer(secret))
        assert hidden.status_code == 403, url
        assert hidden.json()["detail"] == HIDDEN_MESSAGE
    same_text = Client().post(
        "/api/runs", {"source": program.source, "call": program.call},
        content_type="application/json", **_bearer(secret),
    )  # fmt: skip
    assert same_text.status_code == 403
    assert same_text.json()["detail"] == HIDDEN_MESSAGE
    Assignment.objects.filter(pk=opened.pk).update(exam_mode=True)
    exam = _start(Client(), secret)
    assert exam.status_code == 403
    assert exam.json()["detail"].startswith("Exam mode: until ")
    assert Run.objects.filter(owner=w.s1).count() == 1
