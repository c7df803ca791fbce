"""A live message lost between Redis and a web process (the channel layer's Redis failing over,
a reconnection) or two publishers' messages crossing: viewers still get every event once, in
order. The loss is forced by not broadcasting one event (it is stored, as publishing always
stores before it broadcasts): a real channel layer cannot drop one message on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator

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


def _publish_unbroadcast(key: str, text: str) -> None:
    """Store and number a token event, but lose its live message."""
    send = events._sender.send
    events._sender.send = lambda group, message: None  # type: ignore[method-assign]
    try:
        events.publish(key, "token", text=text)
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
