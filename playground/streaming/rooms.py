"""One room per run and web process: the run's events are taken from the channel layer once and
handed to every local viewer of the run, rendered once per page address.

Small audiences get each event at once (what arrived in one turn of the event loop goes out
together). With more than ``STREAMING_FRAMES_ABOVE`` local viewers of one run (``FRAMES_ABOVE``,
100: about where delivering each event at once stops meeting 25 ms added at p95) the room
collects events for a frame (``frame_s``: 50 ms, growing with the audience to 100 ms at 1,000
viewers) and hands each viewer one message per frame: the frame's fragments are rendered and
joined once per page address, not per viewer, so a token costs a viewer a list append instead of
a render, a task and a websocket message (docs/BENCHMARKS.md, "Streaming to large audiences").

A joining viewer is given a snapshot: the run's stored events, read after the room subscribed,
plus every event the room handed out since that read began. Connects within ``SNAPSHOT_S``
share one read (a class of 300 opening a link at once make one ``XRANGE``, not 300). Why nothing
is lost or doubled: publishing numbers an event and appends it to the stream in one atomic step,
then sends it to the group. So the read holds every event numbered up to its highest
(``floor``), and any later one was sent after the read began, to a room already subscribed: it
was handed out since (and is in the snapshot) or is still in the collecting frame (and reaches
the viewer admitted meanwhile with that frame). A viewer is sent the snapshot's events and,
after that, only live events numbered above ``floor``; each event reaches the room once, in
number order: a copy is dropped, and a live event past a gap (messages the channel layer lost
in a Redis failover, or two publishers' messages crossing) waits while the room reads the
missing ones from the stream (``take``).

Events lost with no later one to show the gap (the run's last messages, sent while the channel
layer's Redis failed over) are found by the room's quiet check: after ``QUIET_S`` without a live
event, and every ``QUIET_S`` while it stays quiet, the room reads the run's counter (one ``GET``
per room, not per viewer) and, when it is ahead of the last event handed out, reads the missing
events from the stream. It stops once the run's end has been handed out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings

from playground.lib import logcontext
from playground.runs.events import TERMINAL, Event, alatest, apublished
from playground.streaming import fragments

log = logging.getLogger(__name__)

FRAMES_ABOVE = 100  # local viewers of one run beyond which events go out in frames
# How long a frame collects events: FRAME_PER_VIEWER_S per local viewer (about twice what one
# message costs the web process, so sending a frame to everyone takes at most half a frame),
# between FRAME_S (50 ms, up to 500 viewers) and FRAME_MAX_S (100 ms, from 1,000).
FRAME_S = 0.05
FRAME_MAX_S = 0.1
FRAME_PER_VIEWER_S = 0.0001
SNAPSHOT_S = 1.0  # how long a read of the stored events serves further connects
# How long a room waits without a live event before it asks the run's counter whether it missed
# any (``STREAMING_QUIET_S``).
QUIET_S = 3.0


def quiet_s() -> float:
    return float(getattr(settings, "STREAMING_QUIET_S", QUIET_S))


def frames_above() -> int | None:
    """The audience beyond which frames are used (None: never), ``STREAMING_FRAMES_ABOVE``."""
    value: int | None = getattr(settings, "STREAMING_FRAMES_ABOVE", FRAMES_ABOVE)
    return value


def frame_s(viewers: int) -> float:
    """How long a frame for this many local viewers collects (``STREAMING_FRAME_S``, the
    shortest, and ``STREAMING_FRAME_MAX_S``, the longest)."""
    shortest = float(getattr(settings, "STREAMING_FRAME_S", FRAME_S))
    longest = max(shortest, float(getattr(settings, "STREAMING_FRAME_MAX_S", FRAME_MAX_S)))
    return min(longest, max(shortest, viewers * FRAME_PER_VIEWER_S))


class Viewer(Protocol):
    page_url: str
    floor: int  # events numbered up to this one came with the snapshot

    def push(self, text: str) -> None:
        """Take the fragments of one or more live events (called in the room's event loop)."""


@dataclass(eq=False)
class Snapshot:
    """The stored events as one read found them, and what the room received since it began."""

    reading: asyncio.Task[None] | None = None
    read_at: float | None = None  # when the read ended
    events: list[Event] = field(default_factory=list)
    floor: int = 0
    tail: list[Event] = field(default_factory=list)  # handed out since the read began, > floor
    states: dict[str, str] = field(default_factory=dict)  # rendered once per page address
    tail_fragments: dict[str, list[str]] = field(default_factory=dict)

    def stale(self, now: float) -> bool:
        return self.read_at is not None and now - self.read_at >= SNAPSHOT_S

    def note(self, event: Event) -> None:
        # While the read runs, every event is kept (the read decides which it already holds).
        if self.read_at is None or event["seq"] > self.floor:
            self.tail.append(event)

    def done(self, events: list[Event]) -> None:
        self.events = events
        self.floor = max((e["seq"] for e in events), default=0)
        self.tail = [e for e in self.tail if e["seq"] > self.floor]
        self.read_at = time.monotonic()


class Room:
    def __init__(self, group: str) -> None:
        self.group = group
        self.viewers: dict[Viewer, None] = {}  # receiving live events, in joining order
        self.members = 0  # viewers between joining and leaving (the room lives while any do)
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.channel = ""
        self.snapshot: Snapshot | None = None
        self.pending: list[Event] = []  # the frame being collected
        self.timer: asyncio.TimerHandle | None = None
        self.broken = False  # its subscription failed: joiners waiting on it give up
        # The highest event number handed out, or given with the first viewer's snapshot
        # (None: not known yet, the first event is taken as it comes).
        self.last: int | None = None
        self.filling: asyncio.Task[None] | None = None  # reading events missing from a gap
        self.held: list[Event] = []  # live events that arrived during the read
        self.heard_at = time.monotonic()  # when the last live event came (or the room opened)
        self.ended = False  # the run's end was handed out: nothing more to wait for
        self.watcher: asyncio.Task[None] | None = None

    async def open(self, layer: Any) -> None:
        self.channel = await layer.new_channel()
        await layer.group_add(self.group, self.channel)
        # Every viewer's: not run under the request id of the one whose connect opened it.
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(self._pump(layer), context=logcontext.without_ids())
        self.watcher = loop.create_task(self._watch(), context=logcontext.without_ids())
        self.ready.set()

    async def close(self, layer: Any) -> None:
        for task in (self.task, self.watcher):
            if task is not None:
                task.cancel()
        if self.filling is not None:
            self.filling.cancel()
        if self.timer is not None:
            self.timer.cancel()
        await layer.group_discard(self.group, self.channel)

    async def _pump(self, layer: Any) -> None:
        while True:
            event = (await layer.receive(self.channel))["event"]
            self.heard_at = time.monotonic()
            self.take(event)

    async def _watch(self) -> None:
        """The quiet check (see the module's docstring)."""
        while not self.ended:
            wait = quiet_s() - (time.monotonic() - self.heard_at)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.heard_at = time.monotonic()  # the next check: one QUIET_S from now
            if self.last is None or self.filling is not None:
                continue  # no viewer admitted yet, or a read of missing events under way
            try:
                newest = await alatest(self.group)
            except Exception:  # Redis unreachable: ask again at the next check
                log.warning("room %s: could not read the run's last event number", self.group)
                continue
            if newest > self.last and self.filling is None:
                log.info("room %s: events %d-%d came by no live message", self.group,
                         self.last + 1, newest)  # fmt: skip
                self.filling = asyncio.get_running_loop().create_task(self._catch_up())
                await asyncio.shield(self.filling)

    async def _catch_up(self) -> None:
        """Hand out the stored events after the last handed out, then what arrived meanwhile.
        Unlike ``_fill``, a failed read skips nothing: the next quiet check tries again."""
        try:
            stored = await apublished(self.group, self.last or 0)
        except Exception:
            log.warning("room %s: could not read the events it missed", self.group)
            stored = []
        self.filling = None
        for event in stored:
            if self.last is None or event["seq"] > self.last:
                self.last = event["seq"]
                self._route(event)
        held, self.held = self.held, []
        for event in sorted(held, key=lambda e: e["seq"]):
            self.take(event)

    def take(self, event: Event) -> None:
        """One event from the channel layer, in number order: one already handed out is dropped;
        one past a gap (live messages lost while the channel layer's Redis failed over, or two
        publishers' messages crossing) waits while the missing ones are read from the stream."""
        if self.filling is not None:
            self.held.append(event)
            return
        seq = event["seq"]
        if self.last is not None and seq <= self.last:
            return
        if self.last is not None and seq > self.last + 1:
            self.held.append(event)
            self.filling = asyncio.get_running_loop().create_task(self._fill(seq))
            return
        self.last = seq
        self._route(event)

    async def _fill(self, upto: int) -> None:
        """Hand out the stored events between the last handed out and ``upto``, then what
        arrived meanwhile. Events no longer stored (expired) are skipped, not waited for."""
        last = self.last or 0
        try:
            stored = await apublished(self.group, last)
        except Exception:  # Redis down too: go on without them (the page's end loads all)
            log.warning("room %s: could not read the events missing before %d", self.group, upto)
            stored = []
        self.filling = None
        for event in stored:
            if last < event["seq"] < upto:
                last = self.last = event["seq"]
                self._route(event)
        self.last = max(last, upto - 1)
        held, self.held = self.held, []
        for event in sorted(held, key=lambda e: e["seq"]):
            self.take(event)

    def _route(self, event: Event) -> None:
        if event["type"] in TERMINAL:
            self.ended = True
        if self.pending or self._framed():
            self.pending.append(event)  # after a frame already collecting, whatever the audience
            if self.timer is None:
                self.timer = asyncio.get_running_loop().call_later(
                    frame_s(len(self.viewers)), self._frame
                )
        else:
            self._hand_out([event])

    def _framed(self) -> bool:
        threshold = frames_above()
        return threshold is not None and len(self.viewers) > threshold

    def _frame(self) -> None:
        self.timer = None
        events, self.pending = self.pending, []
        if events:
            self._hand_out(events)

    def _hand_out(self, events: list[Event]) -> None:
        # A snapshot keeps what was handed out since its read began; what a frame still
        # collects is not in it yet, and reaches a viewer admitted meanwhile with the frame.
        snapshot = self.snapshot
        if snapshot is not None:
            if snapshot.stale(time.monotonic()):
                self.snapshot = None
            else:
                for event in events:
                    snapshot.note(event)
        rendered: dict[tuple[str, int], str] = {}
        whole: dict[str, str] = {}

        def fragment(url: str, event: Event) -> str:
            key = (url, event["seq"])
            if key not in rendered:
                rendered[key] = fragments.event_fragment(url, event)
            return rendered[key]

        lowest = min(e["seq"] for e in events)
        for viewer in list(self.viewers):
            url = viewer.page_url
            if viewer.floor < lowest:  # every viewer but one that joined during this frame
                if url not in whole:
                    whole[url] = "".join(fragment(url, e) for e in events)
                text = whole[url]
            else:
                text = "".join(fragment(url, e) for e in events if e["seq"] > viewer.floor)
            if text:
                viewer.push(text)

    async def current_snapshot(self) -> Snapshot:
        """A snapshot taken after this room subscribed, shared with connects close in time."""
        while True:
            snapshot = self.snapshot
            if snapshot is None or snapshot.stale(time.monotonic()):
                snapshot = self.snapshot = Snapshot()
                snapshot.reading = asyncio.get_running_loop().create_task(self._read(snapshot))
            assert snapshot.reading is not None
            await asyncio.shield(snapshot.reading)
            if self.snapshot is snapshot:
                return snapshot
            # Dropped while this connect waited (gone stale): what it received is not kept any
            # more, so take the next one.

    async def _read(self, snapshot: Snapshot) -> None:
        try:
            snapshot.done(await apublished(self.group))
        except BaseException:
            if self.snapshot is snapshot:
                self.snapshot = None
            raise

    def admit(self, viewer: Viewer, snapshot: Snapshot) -> tuple[str, str]:
        """Start handing live events to ``viewer``; what it must send first: the state of the
        snapshot's stored events, then the fragments of those received since (either may be
        empty). Called without awaiting between ``current_snapshot`` and here."""
        assert self.snapshot is snapshot
        url = viewer.page_url
        if url not in snapshot.states:
            snapshot.states[url] = fragments.state(url, snapshot.events)
        done = snapshot.tail_fragments.setdefault(url, [])
        done += [fragments.event_fragment(url, e) for e in snapshot.tail[len(done) :]]
        viewer.floor = snapshot.floor
        if self.last is None:  # nothing handed out yet: what comes next follows the snapshot
            self.last = snapshot.floor
            if any(e["type"] in TERMINAL for e in snapshot.events):
                self.ended = True  # the run had ended: the quiet check has nothing to wait for
        self.viewers[viewer] = None
        return snapshot.states[url], "".join(done)

    def stop_sending(self, viewer: Viewer) -> None:
        self.viewers.pop(viewer, None)


# Rooms of this process, per event loop (tests run one loop per test).
_rooms: dict[tuple[int, str], Room] = {}


async def join(group: str, layer: Any) -> Room:
    """The run's room in this process, opened if needed; the caller must ``leave`` it."""
    key = (id(asyncio.get_running_loop()), group)
    room = _rooms.get(key)
    if room is None:
        room = _rooms[key] = Room(group)
        room.members += 1
        try:
            await room.open(layer)
        except BaseException:
            room.members -= 1
            room.broken = True
            room.ready.set()
            if _rooms.get(key) is room:
                del _rooms[key]
            raise
    else:
        room.members += 1
        await room.ready.wait()
        if room.broken:
            room.members -= 1
            raise RuntimeError(f"could not subscribe to {group}")
    return room


async def leave(room: Room, viewer: Viewer, layer: Any) -> None:
    room.stop_sending(viewer)
    room.members -= 1
    if room.members == 0:
        key = (id(asyncio.get_running_loop()), room.group)
        if _rooms.get(key) is room:
            del _rooms[key]
        await room.close(layer)
