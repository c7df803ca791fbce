"""A run's live view (the websocket) open while its owner deletes their account: the connection
closes at the consumer's next check (the account is gone), and nothing published afterwards
reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse

from playground.asgi import application
from playground.runs.events import publish
from playground.runs.models import Run
from playground.streaming import consumers
from tests.factories import ProgramFactory
from tests.privacy.world import PASSWORD, counted_user


@pytest_asyncio.fixture
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("_close_thread_connections")
async def test_the_live_view_of_a_deleted_accounts_run_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumers, "RECHECK_S", 0.0)

    def setup() -> tuple[Run, Client]:
        user = counted_user("zq-live")
        client = Client()
        assert client.login(username="zq-live", password=PASSWORD)
        program = ProgramFactory(owner=user)
        run = Run.objects.create(
            program=program, source=program.source, call=program.call, owner=user,
            method="direct",
        )  # fmt: skip
        return run, client

    run, client = await sync_to_async(setup)()
    key = run.events_key
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1")]
    viewer = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
    connected, _ = await viewer.connect()
    assert connected
    await viewer.receive_from(timeout=5)  # the backlog

    response: Any = await sync_to_async(client.post)(
        reverse("delete_account"), {"password": PASSWORD, "confirm": "on"}
    )
    assert response.status_code == 302
    await sync_to_async(publish)(key, "token", text="zq-after ")
    seen = []
    while True:
        output = await viewer.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        seen.append(output.get("text", ""))
    assert output["code"] == consumers.REFUSED
    assert not any("zq-after" in text for text in seen)
