"""The run websocket over the real Redis channel layer: replay, live tail, no gap, no duplicate,
and only for whoever may see the run."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from playground.asgi import application
from playground.runs.events import publish
from playground.runs.models import Run
from tests.factories import ProgramFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    """Database connections opened in sync_to_async's thread would keep the test database busy."""
    yield
    await sync_to_async(connections.close_all)()


def _session_cookie(client: Client) -> list[tuple[bytes, bytes]]:
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1")]


def _owned_run() -> tuple[Run, Client]:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=user, method="direct"
    )
    return run, client


async def _connect(run: Run, client: Client) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application, f"/ws/runs/{run.pk}/", headers=_session_cookie(client)
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def _text(messages: list[str]) -> str:
    """What the page shows in #model-output after applying these fragments."""
    shown = ""
    for message in messages:
        full = re.search(r'<pre id="model-output"[^>]*>(.*?)</pre>', message, re.S)
        if full:
            shown = full.group(1)
        for part in re.findall(
            r'<span hx-swap-oob="beforeend:#model-output">(.*?)</span>', message, re.S
        ):
            shown += part
    return shown


async def _drain(communicator: WebsocketCommunicator, until: str) -> list[str]:
    messages = []
    while True:
        message = await communicator.receive_from(timeout=5)
        messages.append(message)
        if until in message:
            return messages


async def test_a_viewer_sees_the_backlog_then_the_live_tail_without_gaps_or_duplicates() -> None:
    run, client = await sync_to_async(_owned_run)()
    for i in range(5):
        await sync_to_async(publish)(run.events_key, "token", text=f"a{i} ")
    communicator = await _connect(run, client)
    first = await communicator.receive_from(timeout=5)
    assert _text([first]) == "a0 a1 a2 a3 a4 "
    for i in range(5):
        await sync_to_async(publish)(run.events_key, "token", text=f"b{i} ")
    await sync_to_async(publish)(run.events_key, "done", verdict=None)
    messages = await _drain(communicator, "Finished.")
    assert _text([first, *messages]) == "a0 a1 a2 a3 a4 b0 b1 b2 b3 b4 "
    assert 'hx-trigger="load"' in messages[-1]  # the page loads the finished result
    await communicator.disconnect()


async def test_a_reconnecting_viewer_gets_everything_once() -> None:
    run, client = await sync_to_async(_owned_run)()
    communicator = await _connect(run, client)
    await communicator.receive_from(timeout=5)
    await sync_to_async(publish)(run.events_key, "token", text="one ")
    assert _text([await communicator.receive_from(timeout=5)]) == "one "
    await communicator.disconnect()
    await sync_to_async(publish)(run.events_key, "token", text="two ")  # missed while away
    again = await _connect(run, client)
    assert _text([await again.receive_from(timeout=5)]) == "one two "
    await again.disconnect()


async def test_model_text_is_escaped() -> None:
    run, client = await sync_to_async(_owned_run)()
    communicator = await _connect(run, client)
    await communicator.receive_from(timeout=5)
    await sync_to_async(publish)(run.events_key, "token", text="<script>alert(1)</script>")
    message = await communicator.receive_from(timeout=5)
    assert "<script>" not in message
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message
    await communicator.disconnect()


@pytest.mark.parametrize("who", ["anonymous", "another user"])
async def test_others_are_refused(who: str) -> None:
    run, _ = await sync_to_async(_owned_run)()
    other = Client()
    headers: list[tuple[bytes, bytes]] = [(b"origin", b"http://127.0.0.1")]
    if who == "another user":
        await sync_to_async(other.force_login)(await sync_to_async(UserFactory)())
        headers = _session_cookie(other)
    communicator = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4403
