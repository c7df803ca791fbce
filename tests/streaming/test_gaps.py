"""A live message lost between Redis and a web process (the channel layer's Redis failing over,
a reconnection) or two publishers' messages crossing: viewers still get every event once, in
order. The loss is forced by not broadcasting one event (it is stored, as publishing always
stores before it broadcasts): a real channel layer cannot drop one message on demand."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections

from playground.runs import events
from playground.streaming import rooms
from tests.streaming.test_consumer import _connect, _drain, _owned_run, _text
from tests.streaming.test_sse_endings import forget_leases

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _clean() -> AsyncIterator[None]:
    await sync_to_async(forget_leases)()
    yield
    await sync_to_async(connections.close_all)()


def _publish_unbroadcast(key: str, text: str, kind: events.EventKind = "token") -> None:
    """Store and number an event (a token with ``text``), but lose its live message."""
    send = events._sender.send
    events._sender.send = lambda group, message: None  # type: ignore[method-assign]
    try:
        if kind == "token":
            events.publish(key, kind, text=text)
        else:
            events.publish(key, kind, verdict=None)
    finally:
        events._sender.send = send  # type: ignore[method-assign]


async def test_a_lost_live_message_is_read_from_the_stream_in_its_place() -> None:
    run, client = await sync_to_async(_owned_run)()
    await sync_to_async(events.publish)(run.events_key, "token", text="one ")
    viewer = await _connect(run, client)
    state = await viewer.receive_from(timeout=5)
    await sync_to_async(events.publish)(run.events_key, "token", text="two ")
    await sync_to_async(_publish_unbroadcast)(run.events_key, "three ")
    await sync_to_async(_publish_unbroadcast)(run.events_key, "four ")
    await sync_to_async(events.publish)(run.events_key, "token", text="five ")
    await sync_to_async(events.publish)(run.events_key, "done", verdict=None)
    messages = await _drain(viewer, "Finished.")
    assert _text([state, *messages]) == "one two three four five "
    await viewer.disconnect()


async def test_the_first_live_message_after_a_gap_waits_for_the_missing_ones() -> None:
    """Nothing handed out yet: the room knows from the first viewer's snapshot which number
    comes next, so a lost first live message is read from the stream too."""
    run, client = await sync_to_async(_owned_run)()
    viewer = await _connect(run, client)
    state = await viewer.receive_from(timeout=5)
    await sync_to_async(_publish_unbroadcast)(run.events_key, "x ")
    await sync_to_async(events.publish)(run.events_key, "token", text="y ")
    await sync_to_async(events.publish)(run.events_key, "done", verdict=None)
    messages = await _drain(viewer, "Finished.")
    assert _text([state, *messages]) == "x y "
    await viewer.disconnect()


async def test_messages_that_cross_are_handed_out_in_number_order() -> None:
    """The room gets 3 before 2 (two publishers: the sandbox's and the model's tasks): it reads
    2 from the stream, hands out 2 then 3, and drops the late copy of 2."""
    run, client = await sync_to_async(_owned_run)()
    viewer = await _connect(run, client)
    await viewer.receive_from(timeout=5)
    first = await sync_to_async(events.publish)(run.events_key, "token", text="a ")
    shown = [await viewer.receive_from(timeout=5)]  # a, live
    room = next(r for r in rooms._rooms.values() if r.group == run.events_key)
    await sync_to_async(_publish_unbroadcast)(run.events_key, "b ")
    await sync_to_async(_publish_unbroadcast)(run.events_key, "c ")
    stored = await events.apublished(run.events_key, first["seq"])
    room.take(stored[1])  # c, before b
    room.take(stored[0])  # the late b
    await sync_to_async(events.publish)(run.events_key, "done", verdict=None)
    messages = await _drain(viewer, "Finished.")
    assert _text(shown + messages) == "a b c ", messages
    await viewer.disconnect()


async def test_the_last_messages_lost_with_none_after_them_still_reach_the_page(
    settings: Any,
) -> None:
    """The run's last token and its end are stored but their live messages are lost (the
    channel layer's Redis failing over as the run ends): no later message shows the gap, so
    the room's quiet check finds them from the run's counter and the page still ends."""
    settings.STREAMING_QUIET_S = 0.5
    run, client = await sync_to_async(_owned_run)()
    viewer = await _connect(run, client)
    state = await viewer.receive_from(timeout=5)
    await sync_to_async(events.publish)(run.events_key, "token", text="live ")
    shown = [await viewer.receive_from(timeout=5)]
    await sync_to_async(_publish_unbroadcast)(run.events_key, "lost ")
    await sync_to_async(_publish_unbroadcast)(run.events_key, "", "done")
    started = time.monotonic()
    messages = await _drain(viewer, "Finished.")
    assert _text([state, *shown, *messages]) == "live lost "
    assert time.monotonic() - started < 5, "found by the quiet check, not at a timeout"
    room = next(r for r in rooms._rooms.values() if r.group == run.events_key)
    assert room.ended  # and it stops asking
    await viewer.disconnect()


async def test_a_quiet_run_costs_its_room_one_counter_read_per_check_and_loses_nothing(
    settings: Any,
) -> None:
    """A run waiting in a queue: nothing is published, the checks find nothing to hand out,
    and the next live event is handed out once."""
    settings.STREAMING_QUIET_S = 0.2
    run, client = await sync_to_async(_owned_run)()
    viewer = await _connect(run, client)
    state = await viewer.receive_from(timeout=5)
    await asyncio.sleep(0.7)
    await sync_to_async(events.publish)(run.events_key, "token", text="late ")
    await sync_to_async(events.publish)(run.events_key, "done", verdict=None)
    messages = await _drain(viewer, "Finished.")
    assert _text([state, *messages]) == "late "
    await viewer.disconnect()
