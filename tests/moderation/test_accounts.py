"""Disabling an account: its sessions end at once (deleted, not only refused), it cannot log
in or reset its password, its live views close at their next check; enabling lets it log in
again (with a new session). Every step is in the moderation log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core import mail
from django.db import connections
from django.test import Client
from django.urls import reverse

from playground.asgi import application
from playground.classroom.models import AuditEvent
from playground.moderation.models import AccountSession, ProgramLock
from playground.runs.events import publish
from playground.runs.models import Run
from playground.streaming import consumers
from tests.factories import ProgramFactory, UserFactory
from tests.moderation.helpers import client_for, public_program, staff

PASSWORD = "correct horse battery staple"
Action = AuditEvent.Action


def _logged_in(user) -> Client:  # type: ignore[no-untyped-def]
    """A client that signed in through the login form, as a person does."""
    client = client_for()
    response = client.post(
        reverse("login"), {"username": user.get_username(), "password": PASSWORD}
    )
    assert response.status_code == 302, response.content
    return client


def _who(client: Client) -> str:
    """The name in the top bar, or "" for a visitor."""
    page = client.get(reverse("home")).content.decode()
    found = re.search(r'class="who"[^>]*>([^<]*)<', page)
    return found.group(1) if found else ""


@pytest.mark.django_db
def test_disabling_ends_every_session_at_once_and_stops_logins() -> None:
    user = UserFactory(username="troll")
    laptop, phone = _logged_in(user), _logged_in(user)
    bystander = UserFactory(username="bystander")
    other = _logged_in(bystander)
    assert (_who(laptop), _who(phone), _who(other)) == ("troll", "troll", "bystander")
    assert AccountSession.objects.filter(account_id=user.pk).count() == 2

    moderator = client_for(staff(username="mod"))
    response = moderator.post(reverse("moderation:disable", args=[user.pk]), {"note": "spam wave"})
    assert response.status_code == 302
    assert "2 sessions ended" in moderator.get(response["Location"]).content.decode()
    user.refresh_from_db()
    assert not user.is_active

    # Their next request is a visitor's; nobody else is touched.
    assert (_who(laptop), _who(phone), _who(other)) == ("", "", "bystander")
    assert not AccountSession.objects.filter(account_id=user.pk).exists()
    # A page that needs an account sends them to log in.
    assert laptop.get(reverse("classroom:courses")).status_code == 302
    # They cannot log in again, nor get a password reset link.
    again = client_for().post(reverse("login"), {"username": "troll", "password": PASSWORD})
    assert again.status_code == 200
    assert "Please enter a correct username and password" in again.content.decode()
    user.email = "troll@example.org"
    user.save()
    client_for().post(reverse("password_reset"), {"email": "troll@example.org"})
    assert mail.outbox == []

    event = AuditEvent.objects.get(action=Action.ACCOUNT_DISABLED)
    assert (event.actor_name, event.subject_name, event.course_ref) == ("mod", "troll", None)
    assert event.detail == {"note": "spam wave", "sessions_ended": 2, "programs_unpublished": 0}


@pytest.mark.django_db
def test_the_old_sessions_stay_ended_when_the_account_is_enabled_again() -> None:
    """Deleted, not only refused while the account is inactive: enabling does not revive a
    session that someone else may hold (a stolen cookie, a shared computer)."""
    user = UserFactory()
    old = _logged_in(user)
    moderator = client_for(staff())
    moderator.post(reverse("moderation:disable", args=[user.pk]), {"note": ""})
    moderator.post(reverse("moderation:enable", args=[user.pk]))
    user.refresh_from_db()
    assert user.is_active
    assert _who(old) == ""
    assert _who(_logged_in(user)) == user.get_username()
    assert AuditEvent.objects.filter(action=Action.ACCOUNT_ENABLED, subject_ref=user.pk).exists()


@pytest.mark.django_db
def test_disabling_can_unpublish_all_their_public_programs() -> None:
    user = UserFactory()
    public = [public_program(owner=user) for _ in range(2)]
    private = ProgramFactory(owner=user, is_public=False)
    moderator = client_for(staff())
    moderator.post(
        reverse("moderation:disable", args=[user.pk]),
        {"note": "malware", "unpublish_programs": "on"},
    )
    for program in public:
        program.refresh_from_db()
        assert not program.is_public
    assert set(ProgramLock.objects.values_list("program", flat=True)) == {p.pk for p in public}
    assert not ProgramLock.objects.filter(program=private).exists()
    event = AuditEvent.objects.get(action=Action.ACCOUNT_DISABLED)
    assert event.detail["programs_unpublished"] == 2


@pytest.mark.django_db
def test_the_session_store_knows_each_sessions_account() -> None:
    user = UserFactory()
    client = _logged_in(user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert AccountSession.objects.get(session_key=key).account_id == user.pk
    # A visitor's session belongs to nobody; logging out ends the account's session.
    visitor = client_for()
    visitor.post(reverse("programs:new"), {"title": "t", "source": "x = 1\n"})
    visitor_key = visitor.cookies[settings.SESSION_COOKIE_NAME].value
    assert AccountSession.objects.get(session_key=visitor_key).account_id is None
    client.post(reverse("logout"))
    assert not AccountSession.objects.filter(account_id=user.pk).exists()


@pytest_asyncio.fixture
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("_close_thread_connections")
async def test_a_disabled_accounts_live_view_closes_at_its_next_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumers, "RECHECK_S", 0.0)

    def setup() -> tuple[Run, Client, object]:
        user = UserFactory()
        client = _logged_in(user)
        program = ProgramFactory(owner=user)
        run = Run.objects.create(
            program=program, source=program.source, call=program.call, owner=user,
            method="direct",
        )  # fmt: skip
        return run, client, user

    run, client, user = await sync_to_async(setup)()
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1")]
    viewer = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
    connected, _ = await viewer.connect()
    assert connected
    await viewer.receive_from(timeout=5)  # the backlog
    await sync_to_async(publish)(run.events_key, "token", text="before ")
    assert "before" in await viewer.receive_from(timeout=5)

    moderator = await sync_to_async(lambda: client_for(staff()))()
    await sync_to_async(moderator.post)(reverse("moderation:disable", args=[user.pk]), {})
    await sync_to_async(publish)(run.events_key, "token", text="after ")
    closed = await viewer.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": consumers.REFUSED}


@pytest.mark.django_db
def test_an_account_disabled_elsewhere_loses_its_sessions_too() -> None:
    """Django's admin (or the shell) unticking "active" ends the sessions as the page does."""
    user = UserFactory()
    client = _logged_in(user)
    root = UserFactory(is_staff=True, is_superuser=True)
    admin = client_for(root)
    change = reverse("admin:auth_user_change", args=[user.pk])
    form = {
        "username": user.get_username(), "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }  # fmt: skip
    response = admin.post(change, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert not user.is_active
    assert not AccountSession.objects.filter(account_id=user.pk).exists()
    assert _who(client) == ""


@pytest.mark.django_db
def test_a_disabled_accounts_api_tokens_stop_at_once_and_stay_revoked() -> None:
    from playground.accounts.tokens import create_token

    user = UserFactory()
    _, secret = create_token(user=user, name="laptop script", scope="run")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client_for().get("/api/runs", **bearer).status_code == 200
    moderator = client_for(staff())
    moderator.post(reverse("moderation:disable", args=[user.pk]), {"note": "leaked token"})
    refused = client_for().get("/api/runs", **bearer)
    assert refused.status_code == 401
    assert refused.json()["detail"]
    moderator.post(reverse("moderation:enable", args=[user.pk]))
    # Enabling does not bring the token back (it may be the reason the account was disabled).
    assert client_for().get("/api/runs", **bearer).status_code == 401
