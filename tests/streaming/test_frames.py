"""Large audiences: events in frames, a shared read of the stored events for connects close in
time, a shared access check per link or account, and a viewer that cannot keep up closed alone.
Each viewer still sees every event once and in order, and a revoked one is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone
from pytest_django.fixtures import Settings

from playground.lib import ratelimits
from playground.runs.events import Event, publish
from playground.sharing.models import ShareLink
from playground.streaming import consumers, rooms
from tests.streaming.test_consumer import _connect, _drain, _owned_run, _text
from tests.streaming.test_consumer_limits import _closed_with, _communicator, _run_with_link
from tests.streaming.test_sse_endings import forget_leases

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _clean() -> AsyncIterator[None]:
    await sync_to_async(forget_leases)()
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def frames(settings: Settings) -> Settings:
    """Frames from the first viewer on, 50 ms long."""
    settings.STREAMING_FRAMES_ABOVE = 0
    settings.STREAMING_FRAME_S = 0.05
    return settings


async def _publish(key: str, *texts: str, pause: float = 0.0) -> None:
    for text in texts:
        await sync_to_async(publish)(key, "token", text=text)
        if pause:
            await asyncio.sleep(pause)


async def _finish(key: str) -> None:
    await sync_to_async(publish)(key, "done", verdict=None)


def _words(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i} " for i in range(count)]


async def test_a_large_audience_gets_every_event_once_in_order_in_fewer_messages(
    frames: Settings,
) -> None:
    run, client = await sync_to_async(_owned_run)()
    await _publish(run.events_key, *_words("a", 3))
    viewers = [await _connect(run, client) for _ in range(3)]
    states = [await v.receive_from(timeout=5) for v in viewers]
    live = _words("b", 30)
    await _publish(run.events_key, *live, pause=0.005)
    await _finish(run.events_key)
    for viewer, state in zip(viewers, states, strict=True):
        messages = await _drain(viewer, "Finished.")
        assert _text([state, *messages]) == "".join(_words("a", 3) + live)
        assert len(messages) < len(live) / 2  # 31 events in frames of 50 ms: batched
        await viewer.disconnect()


@pytest.mark.parametrize("read", ["its own read", "an earlier viewer's read"])
async def test_a_viewer_joining_while_a_frame_collects_gets_its_events_once(
    read: str, frames: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its own read holds the frame's events (dropped from the frame by their numbers); an
    # earlier read does not (they come with the frame, not with the snapshot as well).
    monkeypatch.setattr(rooms, "SNAPSHOT_S", 0.0 if read == "its own read" else 30.0)
    frames.STREAMING_FRAME_S = 0.4
    run, client = await sync_to_async(_owned_run)()
    first = await _connect(run, client)
    first_state = await first.receive_from(timeout=5)
    await _publish(run.events_key, "x0 ", "x1 ")  # collected in a frame, also stored
    await asyncio.sleep(0.05)
    second = await _connect(run, client)
    second_state = await second.receive_from(timeout=5)
    assert _text([second_state]) == ("x0 x1 " if read == "its own read" else "")
    await _publish(run.events_key, "x2 ")
    await _finish(run.events_key)
    assert _text([first_state, *await _drain(first, "Finished.")]) == "x0 x1 x2 "
    assert _text([second_state, *await _drain(second, "Finished.")]) == "x0 x1 x2 "
    for viewer in (first, second):
        await viewer.disconnect()


async def test_events_collected_in_a_frame_go_out_before_later_ones_when_the_audience_shrinks(
    settings: Settings,
) -> None:
    settings.STREAMING_FRAMES_ABOVE = 1
    settings.STREAMING_FRAME_S = 0.3
    run, client = await sync_to_async(_owned_run)()
    staying, leaving = await _connect(run, client), await _connect(run, client)
    state = await staying.receive_from(timeout=5)
    await leaving.receive_from(timeout=5)
    await _publish(run.events_key, "e1 ")  # two viewers: into a frame
    await leaving.disconnect()
    await _publish(run.events_key, "e2 ")  # one viewer, but after the collecting frame
    await _finish(run.events_key)
    assert _text([state, *await _drain(staying, "Finished.")]) == "e1 e2 "
    await staying.disconnect()


async def test_connects_close_in_time_share_one_read_and_lose_nothing_published_during_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rooms, "SNAPSHOT_S", 30.0)  # however slow this machine is today
    run, client = await sync_to_async(_owned_run)()
    await _publish(run.events_key, "a0 ")
    reads = 0
    real = rooms.apublished

    async def read_while_publishing(key: str, after: int = 0) -> list[Event]:
        nonlocal reads
        reads += 1
        await _publish(key, "before ")  # stored, so in the read, and also received live
        events = await real(key, after)
        await _publish(key, "after ")  # not in the read: received while it is not done
        await asyncio.sleep(0.2)
        return events

    monkeypatch.setattr(rooms, "apublished", read_while_publishing)
    viewers = list(await asyncio.gather(*(_connect(run, client) for _ in range(5))))
    expected = "a0 before after "
    for viewer in viewers:
        assert _text([await viewer.receive_from(timeout=5), await viewer.receive_from(1)]) == (
            expected
        )
    await _publish(run.events_key, "later ")  # received after the read: kept for later joiners
    await asyncio.sleep(0.1)
    late = await _connect(run, client)
    late_messages = [await late.receive_from(timeout=5), await late.receive_from(timeout=5)]
    assert _text(late_messages) == expected + "later "
    assert reads == 1  # six connects, one XRANGE
    await _publish(run.events_key, "live ")
    await _finish(run.events_key)
    for viewer in viewers:
        assert _text(await _drain(viewer, "Finished.")) == "later live "
    assert _text(await _drain(late, "Finished.")) == "live "
    for viewer in [*viewers, late]:
        await viewer.disconnect()


async def test_a_later_connect_reads_the_stream_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rooms, "SNAPSHOT_S", 0.1)
    run, client = await sync_to_async(_owned_run)()
    await _publish(run.events_key, "a ")
    keep = await _connect(run, client)  # keeps the room open
    assert _text([await keep.receive_from(timeout=5)]) == "a "
    await asyncio.sleep(0.2)
    await _publish(run.events_key, "b ")
    assert _text([await keep.receive_from(timeout=5)]) == "b "
    again = await _connect(run, client)
    assert _text([await again.receive_from(timeout=5)]) == "a b "  # one state, read anew
    assert await again.receive_nothing(timeout=0.2)
    for viewer in (keep, again):
        await viewer.disconnect()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = consumers._watchable

    def counted(scope: dict[str, Any], run_id: int, share_token: str) -> Any:
        calls.append(run_id)
        return real(scope, run_id, share_token)

    monkeypatch.setattr(consumers, "_watchable", counted)
    return calls


async def test_viewers_of_a_link_share_their_checks_and_a_revoked_link_closes_them(
    monkeypatch: pytest.MonkeyPatch, frames: Settings
) -> None:
    calls = _counting(monkeypatch)
    run, _, token = await sync_to_async(_run_with_link)()
    viewers = [
        _communicator(f"/ws/runs/{run.pk}/?share={token}", None, f"10.0.0.{i}") for i in range(20)
    ]
    for viewer in viewers:
        assert (await viewer.connect())[0]
        await viewer.receive_from(timeout=5)
    assert len(calls) <= len(viewers)  # each connect asks (or waits for a query under way)

    monkeypatch.setattr(consumers, "RECHECK_S", 0.3)
    monkeypatch.setattr(consumers, "CHECK_S", 0.2)
    calls.clear()
    await _publish(run.events_key, *_words("a", 24), pause=0.05)  # about 1.2 s of frames
    # Alone, 20 viewers checking every 0.3 s would ask about 80 times; together about once per
    # CHECK_S (and once more when the viewer whose answer it is checks again).
    assert 1 <= len(calls) < 20

    await sync_to_async(ShareLink.objects.filter(token=token).update)(revoked_at=timezone.now())
    revoked_at = asyncio.get_running_loop().time()
    publisher = asyncio.ensure_future(_publish(run.events_key, *_words("t", 40), pause=0.05))
    for viewer in viewers:
        _, code = await _closed_with(viewer, timeout=5)
        assert code == consumers.REFUSED
    closed_in = asyncio.get_running_loop().time() - revoked_at
    # The bound the module states: RECHECK_S + CHECK_S, plus a frame and the query (and this
    # machine's other work).
    assert closed_in < 0.3 + 0.2 + 1.0
    publisher.cancel()
    for viewer in viewers:
        await viewer.disconnect()


async def test_an_answer_serves_only_its_own_link(
    monkeypatch: pytest.MonkeyPatch, frames: Settings
) -> None:
    monkeypatch.setattr(consumers, "RECHECK_S", 0.1)
    run, _, revoked = await sync_to_async(_run_with_link)()
    kept = (await sync_to_async(ShareLink.objects.create)(run=run)).token
    viewers = {}
    for i, token in enumerate((revoked, revoked, kept, kept)):
        viewer = _communicator(f"/ws/runs/{run.pk}/?share={token}", None, f"10.0.1.{i}")
        assert (await viewer.connect())[0]
        await viewer.receive_from(timeout=5)
        viewers[viewer] = token
    await sync_to_async(ShareLink.objects.filter(token=revoked).update)(revoked_at=timezone.now())
    words = _words("a", 30)
    await _publish(run.events_key, *words, pause=0.05)
    await _finish(run.events_key)
    for viewer, token in viewers.items():
        if token == revoked:
            assert (await _closed_with(viewer))[1] == consumers.REFUSED
        else:
            assert _text(await _drain(viewer, "Finished.")) == "".join(words)
        await viewer.disconnect()


async def test_a_viewer_that_cannot_keep_up_is_closed_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch, frames: Settings
) -> None:
    monkeypatch.setattr(consumers, "MAX_QUEUED", 2_000)
    run, client = await sync_to_async(_owned_run)()
    viewers = [await _connect(run, client) for _ in range(2)]
    states = [await v.receive_from(timeout=5) for v in viewers]
    (room,) = [r for r in rooms._rooms.values() if r.group == run.events_key]
    slow: Any = next(iter(room.viewers))  # joining order: the first communicator's consumer
    real_send, never = slow.base_send, asyncio.Event()

    async def stuck(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            await never.wait()  # a socket whose reader went away
        await real_send(message)

    slow.base_send = stuck
    words = [f"w{i}-{'x' * 80} " for i in range(40)]
    await _publish(run.events_key, *words, pause=0.005)
    await _finish(run.events_key)
    said, code = await _closed_with(viewers[0])
    assert (said, code) == ("", consumers.FELL_BEHIND)  # nothing after the state went out
    assert _text([states[1], *await _drain(viewers[1], "Finished.")]) == "".join(words)
    again = await _connect(run, client)  # the page reconnects and gets the whole state
    assert _text(await _drain(again, "Finished.")) == "".join(words)
    for viewer in [*viewers, again]:
        await viewer.disconnect()


async def test_a_socket_in_frames_still_ends_after_stream_seconds(frames: Settings) -> None:
    frames.PLAYGROUND_LIMITS = ratelimits.table("public", {"stream_seconds": 1})
    run, session, _ = await sync_to_async(_run_with_link)()
    viewer = _communicator(f"/ws/runs/{run.pk}/", session, "10.0.0.1")
    assert (await viewer.connect())[0]
    await viewer.receive_from(timeout=5)
    publisher = asyncio.ensure_future(_publish(run.events_key, *_words("t", 30), pause=0.05))
    _, code = await _closed_with(viewer)
    assert code == consumers.LIFETIME_OVER
    await publisher
    await viewer.disconnect()
