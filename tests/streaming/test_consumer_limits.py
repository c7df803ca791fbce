"""The run websocket holds a place among its requester's open streams (``streams.*``): over the
cap the page is told so and the socket closes with a code the htmx extension does not retry;
after ``stream_seconds`` it closes with one it does retry; an idle viewer is checked again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from playground.asgi import application
from playground.classroom.models import Item, Mode
from playground.lib import ratelimits
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from playground.streaming import consumers
from tests.classroom.student_world import assignment, course_world, library_program
from tests.factories import ProgramFactory, UserFactory
from tests.streaming.test_sse_endings import forget_leases

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _clean() -> AsyncIterator[None]:
    await sync_to_async(forget_leases)()
    yield
    await sync_to_async(connections.close_all)()


def _run_with_link() -> tuple[Run, str, str]:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=user, method="direct"
    )
    link = ShareLink.objects.create(run=run)
    return run, client.cookies["sessionid"].value, link.token


def _communicator(path: str, session: str | None, address: str) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["client"] = (address, 50000)
    return communicator


async def _closed_with(communicator: WebsocketCommunicator, timeout: float = 5) -> tuple[str, int]:
    """What the socket said before it closed, and its close code."""
    said = ""
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return said, message.get("code", 1000)
        said += message.get("text", "")


async def test_viewers_over_the_cap_are_told_and_closed(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"streams.user": 1, "streams.anon": 1})
    run, session, token = await sync_to_async(_run_with_link)()
    owner = _communicator(f"/ws/runs/{run.pk}/", session, "10.0.0.1")
    assert (await owner.connect())[0]
    await owner.receive_from()  # the state

    second = _communicator(f"/ws/runs/{run.pk}/", session, "10.0.0.1")
    connected, _ = await second.connect()
    assert connected
    said, code = await _closed_with(second)  # on ebbbef9: a second live view opens
    assert code == consumers.TOO_MANY
    assert 'id="run-status"' in said
    assert "Too many live views open at once: at most 1 for your account" in said

    # Share viewers are anonymous: counted per address, whichever link they hold.
    share = f"/ws/runs/{run.pk}/?share={token}"
    viewer = _communicator(share, None, "10.0.0.2")
    assert (await viewer.connect())[0]
    await viewer.receive_from()
    elsewhere = _communicator(share, None, "10.0.0.3")
    assert (await elsewhere.connect())[0]
    await elsewhere.receive_from()
    same_address = _communicator(share, None, "10.0.0.2")
    await same_address.connect()
    said, code = await _closed_with(same_address)
    assert code == consumers.TOO_MANY
    assert "from your address" in said

    # A closed view gives its place back.
    await owner.disconnect()
    again = _communicator(f"/ws/runs/{run.pk}/", session, "10.0.0.1")
    assert (await again.connect())[0]
    assert "Too many" not in await again.receive_from()
    for communicator in (again, viewer, elsewhere):
        await communicator.disconnect()


async def test_a_socket_ends_after_stream_seconds_with_a_code_the_page_reconnects_on(
    settings: Settings,
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"stream_seconds": 1})
    run, session, _ = await sync_to_async(_run_with_link)()
    communicator = _communicator(f"/ws/runs/{run.pk}/", session, "10.0.0.1")
    assert (await communicator.connect())[0]
    _, code = await _closed_with(communicator)  # on ebbbef9: open for ever
    assert code == consumers.LIFETIME_OVER == 1012
    await communicator.disconnect()


def _student_world() -> tuple[Run, str, Any]:
    world = course_world()
    program = library_program()
    later = assignment(world.course, opens_at=timezone.now() + timedelta(days=1))
    Item.objects.create(assignment=later, mode=Mode.OUTPUT, program=program)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=world.s1
    )
    client = Client()
    client.force_login(world.s1)
    return run, client.cookies["sessionid"].value, later


async def test_an_idle_viewer_is_closed_when_an_assignment_with_the_program_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumers, "IDLE_RECHECK_S", 0.3)
    run, session, later = await sync_to_async(_student_world)()
    communicator = _communicator(f"/ws/runs/{run.pk}/", session, "10.0.0.1")
    assert (await communicator.connect())[0]
    await communicator.receive_from()
    await asyncio.sleep(0.5)
    assert await communicator.receive_nothing(timeout=0.1)  # still allowed: not open yet
    await sync_to_async(type(later).objects.filter(pk=later.pk).update)(
        opens_at=timezone.now() - timedelta(minutes=1)
    )
    _, code = await _closed_with(communicator)  # on ebbbef9: only events trigger a recheck
    assert code == consumers.REFUSED
    await communicator.disconnect()
