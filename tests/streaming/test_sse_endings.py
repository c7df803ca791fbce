"""``/runs/<id>/events`` always ends: on a run whose events are gone, when the run becomes hidden
from its viewer, and after ``stream_seconds`` (resumable); and it holds a place among the
requester's open streams (``streams.*``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient, Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from playground.classroom.models import Item, Mode
from playground.lib import ratelimits
from playground.runs.events import _keys, publish, redis_client
from playground.runs.models import Run
from playground.streaming import leases, views
from tests.classroom.student_world import assignment, course_world, library_program
from tests.factories import ProgramFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    await sync_to_async(forget_leases)()
    yield
    await sync_to_async(connections.close_all)()


def forget_leases() -> None:
    """Every test client comes from 127.0.0.1: start without the places of earlier tests."""
    for key in redis_client().scan_iter(f"{leases._prefix()}:*"):
        redis_client().delete(key)


def _client_of(user: Any) -> AsyncClient:
    client = Client()
    client.force_login(user)
    out = AsyncClient()
    out.cookies.load({"sessionid": client.cookies["sessionid"].value})
    return out


def _owned_run(user: Any = None) -> tuple[Run, Any]:
    user = user or UserFactory()
    program = ProgramFactory(owner=user)
    run = Run.objects.create(program=program, source=program.source, call=program.call, owner=user)
    return run, user


def _finish(run: Run) -> None:
    Run.objects.filter(pk=run.pk).update(status="done", verdict={"status": "correct"})


def _forget_events(run: Run) -> None:
    redis_client().delete(*_keys(run.events_key))


def _parse(body: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


async def _read_all(response: Any, timeout: float = 10) -> str:
    async def read() -> str:
        return b"".join([chunk async for chunk in response.streaming_content]).decode()

    return await asyncio.wait_for(read(), timeout)


@pytest.mark.parametrize("after", ["0", "2", "7"])
async def test_a_finished_run_whose_events_are_gone_ends_with_its_end_from_the_database(
    after: str,
) -> None:
    run, user = await sync_to_async(_owned_run)()
    for text in ("a", "b", "c"):
        await sync_to_async(publish)(run.events_key, "token", text=text)
    await sync_to_async(publish)(run.events_key, "done", verdict={"status": "correct"})
    await sync_to_async(_finish)(run)
    await sync_to_async(_forget_events)(run)
    client = await sync_to_async(_client_of)(user)

    for response in (
        await client.get(f"/runs/{run.pk}/events?after={after}"),
        await client.get(f"/runs/{run.pk}/events", headers={"Last-Event-ID": after}),
    ):
        assert response.status_code == 200
        events = _parse(await _read_all(response))  # on ebbbef9: keep-alives for ever
        assert [e["type"] for e in events] == ["done"]
        assert events[0]["verdict"] == {"status": "correct"}


async def test_asking_past_the_last_stored_event_of_a_finished_run_ends() -> None:
    run, user = await sync_to_async(_owned_run)()
    await sync_to_async(publish)(run.events_key, "token", text="a")
    await sync_to_async(_finish)(run)  # its "done" event was never stored (a worker died)
    client = await sync_to_async(_client_of)(user)
    response = await client.get(f"/runs/{run.pk}/events?after=1")
    assert [e["type"] for e in _parse(await _read_all(response))] == ["done"]
    response = await client.get(f"/runs/{run.pk}/events?after=0")
    assert [e["type"] for e in _parse(await _read_all(response))] == ["token", "done"]


def _student_run_of_an_item() -> tuple[Run, Any, Any]:
    world = course_world()
    program = library_program()
    later = assignment(world.course, opens_at=timezone.now() + timedelta(days=1))
    Item.objects.create(assignment=later, mode=Mode.OUTPUT, program=program)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=world.s1
    )
    return run, world.s1, later


def _open_now(assignment_: Any) -> None:
    type(assignment_).objects.filter(pk=assignment_.pk).update(
        opens_at=timezone.now() - timedelta(minutes=1)
    )


@pytest.mark.parametrize("events_flow", [True, False])
async def test_a_stream_stops_when_an_assignment_with_its_program_opens(
    events_flow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "RECHECK_S", 0.2)
    monkeypatch.setattr(views, "IDLE_RECHECK_S", 0.3)
    run, student, later = await sync_to_async(_student_run_of_an_item)()
    client = await sync_to_async(_client_of)(student)
    response = await client.get(f"/runs/{run.pk}/events")
    assert response.status_code == 200  # not open yet: nothing is hidden
    chunks = response.streaming_content.__aiter__()

    async def publish_tokens() -> None:
        while True:
            await sync_to_async(publish)(run.events_key, "token", text="42")
            await asyncio.sleep(0.05)

    feeder = asyncio.get_running_loop().create_task(publish_tokens()) if events_flow else None
    try:
        first = await asyncio.wait_for(chunks.__anext__(), 5) if events_flow else ""
        await sync_to_async(_open_now)(later)
        body = first.decode() if isinstance(first, bytes) else first

        async def rest() -> str:
            return "".join([c.decode() if isinstance(c, bytes) else c async for c in chunks])

        body += await asyncio.wait_for(rest(), 10)  # ends by itself; on ebbbef9 it streams on
    finally:
        if feeder is not None:
            feeder.cancel()
    events = _parse(body)
    assert events[-1]["type"] == "hidden"
    assert "assignment" in events[-1]["detail"]


async def test_a_stream_ends_after_stream_seconds_and_resumes_where_it_left(
    settings: Settings,
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"stream_seconds": 1})
    run, user = await sync_to_async(_owned_run)()
    await sync_to_async(publish)(run.events_key, "token", text="a")
    client = await sync_to_async(_client_of)(user)
    response = await client.get(f"/runs/{run.pk}/events")
    body = await _read_all(response, timeout=5)  # on ebbbef9: never ends
    assert "retry: " in body
    events = _parse(body)
    assert [e["type"] for e in events] == ["token", "reconnect"]
    assert events[-1]["after"] == 1

    await sync_to_async(publish)(run.events_key, "token", text="b")
    await sync_to_async(publish)(run.events_key, "done")
    resumed = await client.get(f"/runs/{run.pk}/events", headers={"Last-Event-ID": "1"})
    events = _parse(await _read_all(resumed, timeout=5))
    assert [(e["type"], e["seq"]) for e in events] == [("token", 2), ("done", 3)]


async def test_open_streams_are_capped_per_account_and_per_address(
    settings: Settings,
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table(
        "public", {"streams.user": 2, "streams.ip": 3, "streams.anon": 1}
    )
    run, user = await sync_to_async(_owned_run)()
    other_run, other = await sync_to_async(_owned_run)()
    client = await sync_to_async(_client_of)(user)
    url = f"/runs/{run.pk}/events"
    open_ = [await client.get(url) for _ in range(2)]
    assert [r.status_code for r in open_] == [200, 200]

    refused = await client.get(url)
    assert refused.status_code == 429  # on ebbbef9: a third stream opens
    assert int(refused["Retry-After"]) > 0
    detail = refused.json()["detail"]
    assert "Too many live views open at once: at most 2 for your account" in detail

    # Another account from the same address: one more place by the address's cap, then none.
    other_client = await sync_to_async(_client_of)(other)
    other_url = f"/runs/{other_run.pk}/events"
    others = [await other_client.get(other_url)]
    assert others[0].status_code == 200
    refused = await other_client.get(other_url)
    assert refused.status_code == 429
    assert "from your address" in refused.json()["detail"]

    # A stream that ends gives its place back.
    await sync_to_async(_finish)(run)
    assert _parse(await _read_all(open_[0]))[-1]["type"] == "done"
    others.append(await other_client.get(other_url))
    assert others[-1].status_code == 200
    # So does a response closed before it was read (the client went at once).
    for response in (open_[1], *others):
        await sync_to_async(response.close)()
    last = await client.get(url)
    assert last.status_code == 200
    await sync_to_async(last.close)()


async def test_a_stream_ends_when_staff_disable_its_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its sessions are deleted at once, but a stream already open holds its user object: the
    recheck reads the account again."""
    monkeypatch.setattr(views, "IDLE_RECHECK_S", 0.3)
    run, user = await sync_to_async(_owned_run)()
    client = await sync_to_async(_client_of)(user)
    response = await client.get(f"/runs/{run.pk}/events")
    assert response.status_code == 200
    await sync_to_async(type(user).objects.filter(pk=user.pk).update)(is_active=False)
    body = await _read_all(response, timeout=10)  # without the recheck: streams on, idle
    events = _parse(body)
    assert events[-1]["type"] == "closed"
    assert events[-1]["detail"] == views.ACCOUNT_DISABLED
