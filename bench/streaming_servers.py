"""ASGI applications for the web processes of ``bench/streaming_audience.py``, one per design
measured side by side, chosen by ``BENCH_STREAMING_DESIGN`` (read here only):

- ``today``: the websocket as it was before coalesced frames (commit 0000ed7 of
  ``playground/streaming/consumers.py``, copied below unchanged but for this docstring): one
  room per run and process, then per viewer and event a ``deliver`` call, a ``seen`` set, a
  ``_flush`` task per loop turn, and an access check through the database every ``RECHECK_S``
  per viewer; every connect reads the whole stream itself.
- ``new``: ``playground.asgi.application`` as it is, with ``BENCH_FRAMES_ABOVE`` (a number, or
  ``never``) set as ``STREAMING_FRAMES_ABOVE``, and ``BENCH_FRAME_MS`` as both the shortest and
  the longest frame (``STREAMING_FRAME_S``, ``STREAMING_FRAME_MAX_S``).

    uvicorn --app-dir bench streaming_servers:application
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from typing import Any
from urllib.parse import parse_qs

from playground.asgi import application as current  # sets Django up

# isort: split
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.urls import path, reverse
from django.utils.html import format_html

from playground.lib import hiding, ratelimits
from playground.runs.access import run_for_scope
from playground.runs.events import Event, apublished
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from playground.streaming import fragments, leases

REFUSED = 4403
TOO_MANY = 4429  # not one the htmx extension reconnects after
LIFETIME_OVER = 1012  # one it does reconnect after
RECHECK_S = 5.0
IDLE_RECHECK_S = 30.0


def _watchable(scope: dict[str, Any], run_id: int, share_token: str) -> Run | None:
    """The run, if this viewer may follow it now (one database round, in a worker thread)."""
    if share_token:
        link = (
            ShareLink.objects.active()
            .filter(token=share_token, run_id=run_id)
            .select_related("run")
            .first()
        )
        if link is None or hiding.policy().shared_run_hidden(link.run):
            return None
        return link.run
    run = run_for_scope(scope, run_id)
    if run is None or hiding.policy().hidden_for(scope.get("user")).run(run):
        return None
    return run


class _Room:
    """One subscription per run and web process: each event is taken from the channel layer once
    and handed to every local viewer of the run (instead of a layer message and a consumer
    dispatch per viewer)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.viewers: set[RunConsumer] = set()
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.channel = ""

    async def open(self, layer: Any) -> None:
        self.channel = await layer.new_channel()
        await layer.group_add(self.group, self.channel)
        self.task = asyncio.get_running_loop().create_task(self._pump(layer))
        self.ready.set()

    async def _pump(self, layer: Any) -> None:
        while True:
            event = (await layer.receive(self.channel))["event"]
            rendered: dict[str, str] = {}  # one fragment per page address, not per viewer
            for viewer in list(self.viewers):
                if viewer.page_url not in rendered:
                    rendered[viewer.page_url] = fragments.event_fragment(viewer.page_url, event)
                viewer.deliver(event, rendered[viewer.page_url])

    async def close(self, layer: Any) -> None:
        if self.task is not None:
            self.task.cancel()
        await layer.group_discard(self.group, self.channel)


# Rooms of this process, per event loop (tests run one loop per test).
_rooms: dict[tuple[int, str], _Room] = {}


async def _join(viewer: RunConsumer, layer: Any) -> None:
    key = (id(asyncio.get_running_loop()), viewer.group)
    room = _rooms.get(key)
    if room is None:
        room = _rooms[key] = _Room(viewer.group)
        await room.open(layer)
    await room.ready.wait()
    room.viewers.add(viewer)


async def _leave(viewer: RunConsumer, layer: Any) -> None:
    key = (id(asyncio.get_running_loop()), viewer.group)
    room = _rooms.get(key)
    if room is None:
        return
    room.viewers.discard(viewer)
    if not room.viewers:
        del _rooms[key]
        await room.close(layer)


def _too_many_fragment(message: str) -> str:
    return str(
        format_html(
            '<div id="run-status" class="notice" role="status" hx-swap-oob="true">{} This page '
            "will still show the result when the run ends.</div>",
            message,
        )
    )


_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class RunConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["pk"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.share_token = (query.get("share") or [""])[0]
        if self.share_token and not _TOKEN.fullmatch(self.share_token):
            # Not the shape of a share token (a NUL, a slash, 5,000 characters...): refused
            # like an unknown one, before it reaches a URL or a query.
            await self.close(code=REFUSED)
            return
        if self.share_token:
            self.page_url = reverse("sharing:view", args=[self.share_token])
        else:
            self.page_url = reverse("runs:detail", args=[self.run_id])
        run = await database_sync_to_async(_watchable)(self.scope, self.run_id, self.share_token)
        if run is None:
            await self.close(code=REFUSED)
            return
        try:
            self.lease = await leases.aacquire(
                self.scope.get("user"), leases.address_of_scope(self.scope)
            )
        except ratelimits.Refused as refused:
            # Said on the page (its status line), then closed: the page's slow poll goes on.
            await self.accept()
            await self.send(text_data=_too_many_fragment(refused.message))
            await self.close(code=TOO_MANY)
            return
        self.checked_at = time.monotonic()
        self.group = run.events_key
        self.seen: set[int] = set()
        self.outbox: list[str] = []
        self.early: list[tuple[Event, str]] | None = []  # live events during replay
        self.flush_pending = False
        # Join first, then read what was published: nothing falls between the two, and what
        # arrives twice is dropped by its number.
        await _join(self, self.channel_layer)
        await self.accept()
        backlog = await apublished(self.group)
        self.seen.update(e["seq"] for e in backlog)
        await self.send(text_data=fragments.state(self.page_url, backlog))
        early, self.early = self.early or [], None
        for event, fragment in early:
            self.deliver(event, fragment)
        self.keeper = asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        """While the socket is open: keep its lease, look again at who watches while no event
        comes, and end it after ``stream_seconds``."""
        deadline = time.monotonic() + ratelimits.cap("stream_seconds")
        while True:
            now = time.monotonic()
            if now >= deadline:
                await self.close(code=LIFETIME_OVER)
                return
            until_check = IDLE_RECHECK_S - (now - self.checked_at)
            await asyncio.sleep(max(0.05, min(leases.REFRESH_S, until_check, deadline - now)))
            if self.lease.due():
                await self.lease.arefresh()
            if time.monotonic() - self.checked_at >= IDLE_RECHECK_S and not await self._allowed():
                await self.close(code=REFUSED)
                return

    async def _allowed(self) -> bool:
        self.checked_at = time.monotonic()
        run = await database_sync_to_async(_watchable)(self.scope, self.run_id, self.share_token)
        return run is not None

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "keeper"):
            self.keeper.cancel()
        if hasattr(self, "lease"):
            await self.lease.arelease()
        if hasattr(self, "group"):
            await _leave(self, self.channel_layer)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # viewers only listen

    def deliver(self, event: Event, fragment: str) -> None:
        """Take one live event (called by the run's room, in this event loop)."""
        if self.early is not None:
            self.early.append((event, fragment))
            return
        if event["seq"] in self.seen:
            return
        self.seen.add(event["seq"])
        # Coalesce: send at the next turn of the event loop, together with whatever else has
        # arrived for this viewer by then. An idle viewer gets each token at once; a busy web
        # process sends fewer, larger messages instead of falling behind.
        self.outbox.append(fragment)
        if not self.flush_pending:
            self.flush_pending = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        self.flush_pending = False
        if time.monotonic() - self.checked_at > RECHECK_S and not await self._allowed():
            self.outbox = []
            await self.close(code=REFUSED)
            return
        if self.outbox:
            text, self.outbox = "".join(self.outbox), []
            await self.send(text_data=text)


_today = AllowedHostsOriginValidator(
    AuthMiddlewareStack(URLRouter([path("ws/runs/<int:pk>/", RunConsumer.as_asgi())]))
)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket" and DESIGN == "today":
        await _today(scope, receive, send)
    else:
        await current(scope, receive, send)


DESIGN = os.environ.get("BENCH_STREAMING_DESIGN", "new")
if DESIGN == "new":
    _above = os.environ.get("BENCH_FRAMES_ABOVE", "")
    if _above:
        settings.STREAMING_FRAMES_ABOVE = None if _above == "never" else int(_above)
    if os.environ.get("BENCH_FRAME_MS"):  # one frame length for every audience
        _frame = float(os.environ["BENCH_FRAME_MS"]) / 1000
        settings.STREAMING_FRAME_S = settings.STREAMING_FRAME_MAX_S = _frame
