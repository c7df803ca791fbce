"""``/runs/<id>/events``: the same events as JSON Server-Sent Events, resumable by number."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient, Client

from playground.runs.events import publish
from playground.runs.models import Run
from tests.factories import ProgramFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


def _owned_run() -> tuple[Run, dict[str, str]]:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(program=program, source=program.source, call=program.call, owner=user)
    return run, {"sessionid": client.cookies["sessionid"].value}


async def _events(response: Any) -> list[dict[str, Any]]:
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


async def test_events_replay_in_order_and_end_with_the_run() -> None:
    run, cookies = await sync_to_async(_owned_run)()
    for text in ("The ", "answer"):
        await sync_to_async(publish)(run.events_key, "token", text=text)
    await sync_to_async(publish)(run.events_key, "done", verdict={"status": "wrong"})
    client = AsyncClient()
    client.cookies.load(cookies)
    response = await client.get(f"/runs/{run.pk}/events")
    assert response["Content-Type"] == "text/event-stream"
    events = await _events(response)
    assert [e["type"] for e in events] == ["token", "token", "done"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[-1]["verdict"] == {"status": "wrong"}

    resumed = await client.get(f"/runs/{run.pk}/events", headers={"Last-Event-ID": "1"})
    assert [e["seq"] for e in await _events(resumed)] == [2, 3]


async def test_others_get_404() -> None:
    run, _ = await sync_to_async(_owned_run)()
    stranger = AsyncClient()
    await sync_to_async(stranger.force_login)(await sync_to_async(UserFactory)())
    assert (await stranger.get(f"/runs/{run.pk}/events")).status_code == 404
    assert (await AsyncClient().get(f"/runs/{run.pk}/events")).status_code == 404
