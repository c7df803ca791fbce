"""The run page's websocket: the run's events as htmx fragments, replayed then followed live.

Open to whoever may see the run, or to a viewer holding an active share link of it
(``?share=TOKEN``); never while the run's results are hidden by an open assignment (from a
student of its course, or from every share viewer). Viewers are checked again every
``RECHECK_S`` while events flow (and every ``IDLE_RECHECK_S`` while none do), so a revoked link
or an assignment that opens stops the stream. When they check again, one answer serves the other
viewers with the same link (or account) of the run in this process for ``CHECK_S``: a revoked
viewer is closed within ``RECHECK_S + CHECK_S`` (7 s) while events flow; a connect asks anew.

The run's room (``rooms.py``) hands each viewer its events, at once or, for a large audience, in
frames; each viewer sends them from one task of its own, so a slow socket holds up only itself,
and one that falls ``MAX_QUEUED`` characters behind is closed with 1013, after which the page
reconnects and is sent the whole state again.

Each socket holds one of its requester's places among their open streams (``streams.*`` in the
limits table, see ``leases``; share viewers count per address like everyone). Over the cap the
page is told so in its status line and the socket closes with ``TOO_MANY`` (the page keeps its
slow poll). After ``stream_seconds`` the socket closes with 1012 ("service restart"), which the
htmx websocket extension answers by reconnecting: the new socket sends the whole state again.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html

from playground.lib import hiding, process_metrics, ratelimits
from playground.runs.access import run_for_scope
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from playground.streaming import leases, rooms

REFUSED = 4403
TOO_MANY = 4429  # not one the htmx extension reconnects after
LIFETIME_OVER = 1012  # one it does reconnect after
FELL_BEHIND = 1013  # "try again later": the extension reconnects and is sent the whole state
RECHECK_S = 5.0
IDLE_RECHECK_S = 30.0
CHECK_S = 2.0  # how long one answer to "may this viewer watch" serves its key (_checks)
# Characters still waiting for one viewer when more come (about 10 s of a 100-token/s run)
# beyond which it is closed.
MAX_QUEUED = 256 * 1024


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


def _check_key(scope: dict[str, Any], run_id: int, share_token: str) -> tuple[Any, ...]:
    """What the answer of ``_watchable`` depends on besides the time: the run and the share
    link, or the run and the account (or, signed out, the session and its owner token)."""
    loop = id(asyncio.get_running_loop())
    if share_token:
        return (loop, run_id, "share", share_token)
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return (loop, run_id, "user", user.pk)
    return (loop, run_id, "session", getattr(scope.get("session"), "session_key", None))


# Answers of _watchable per key, each reused for CHECK_S by the other viewers with that key
# when they check again (a viewer's own next check asks anew, and so does every connect, unless
# a query for its key is under way): 1,000 viewers of one link cost about one query per
# CHECK_S, not 200 a second. A revoked viewer is closed at its next check, so within
# RECHECK_S + CHECK_S while events flow (IDLE_RECHECK_S + CHECK_S while none do); a new one is
# refused at once.
_checks: dict[tuple[Any, ...], tuple[float, int, asyncio.Task[Run | None]]] = {}


def check_s() -> float:
    return float(getattr(settings, "STREAMING_CHECK_S", CHECK_S))


async def watchable(
    scope: dict[str, Any], run_id: int, share_token: str, asker: object, *, connecting: bool
) -> Run | None:
    """``_watchable``, asked at most once per ``check_s()`` per key in this process for viewers
    checking again (never ``asker``'s own earlier answer); a connect waits only for a query
    still under way."""
    key = _check_key(scope, run_id, share_token)
    now = time.monotonic()
    entry = _checks.get(key)
    if entry is None:
        reuse = False
    elif connecting:
        reuse = not entry[2].done()
    else:
        reuse = now - entry[0] < check_s() and entry[1] != id(asker)
    if not reuse:
        if len(_checks) > 10_000:
            for old in [k for k, (at, _, _) in _checks.items() if now - at >= check_s()]:
                del _checks[old]
        query = database_sync_to_async(_watchable)(scope, run_id, share_token)
        entry = _checks[key] = (now, id(asker), asyncio.get_running_loop().create_task(query))
    assert entry is not None
    try:
        return await asyncio.shield(entry[2])  # a viewer that leaves cancels only its wait
    except Exception:
        if _checks.get(key) is entry:
            del _checks[key]  # a failure is not an answer to keep
        raise


def _too_many_fragment(message: str) -> str:
    return str(
        format_html(
            '<div id="run-status" class="notice" hx-swap-oob="true">{} This page '
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
        run = await watchable(self.scope, self.run_id, self.share_token, self, connecting=True)
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
        self.outbox: list[str] = []
        self.queued = 0  # characters in the outbox
        self.floor = 0
        self.wake = asyncio.Event()
        self.ending = False
        # Join first, then read what was published (the room's snapshot, see rooms.py):
        # nothing falls between the two, and what arrives twice is dropped by its number.
        self.room = await rooms.join(self.group, self.channel_layer)
        await self.accept()
        process_metrics.VIEWERS.inc()
        self.viewing = True  # counted once, so disconnect() uncounts it once
        snapshot = await self.room.current_snapshot()
        state, received = self.room.admit(self, snapshot)  # live events go to the outbox now
        if received:  # handed out since the snapshot's read began: after the state, before live
            self.outbox.insert(0, received)
            self.queued += len(received)
            self.wake.set()
        await self.send(text_data=state)
        loop = asyncio.get_running_loop()
        self.sender = loop.create_task(self._send())
        self.keeper = loop.create_task(self._keep())

    def push(self, text: str) -> None:
        """Take the fragments of live events (called by the run's room, in this event loop)."""
        if self.queued > MAX_QUEUED:
            # What it was handed before is still not sent: it does not read as fast as the
            # run writes. Close it rather than hold its backlog; it reconnects after 1013 and
            # is sent the whole state again.
            self.room.stop_sending(self)
            self.outbox, self.queued = [], 0
            asyncio.get_running_loop().create_task(self._end(FELL_BEHIND))
            return
        self.outbox.append(text)
        self.queued += len(text)
        if not self.wake.is_set():
            self.wake.set()

    async def _send(self) -> None:
        """Send what the room handed over, one message at a time: a viewer whose socket is
        slow holds up only itself (its backlog is bounded by ``push``)."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            if time.monotonic() - self.checked_at > RECHECK_S and not await self._allowed():
                await self._end(REFUSED)
                return
            if self.outbox:
                text = "".join(self.outbox)
                self.outbox, self.queued = [], 0
                await self.base_send({"type": "websocket.send", "text": text})

    async def _end(self, code: int) -> None:
        """Stop sending and close with ``code`` (disconnect() cleans up the rest)."""
        if self.ending:
            return
        self.ending = True
        self.room.stop_sending(self)
        self.outbox, self.queued = [], 0
        current = asyncio.current_task()
        for task in (getattr(self, "sender", None), getattr(self, "keeper", None)):
            if task is not None and task is not current:
                task.cancel()
        await self.close(code=code)

    async def _keep(self) -> None:
        """While the socket is open: keep its lease, look again at who watches while no event
        comes, and end it after ``stream_seconds``."""
        deadline = time.monotonic() + ratelimits.cap("stream_seconds")
        while True:
            now = time.monotonic()
            if now >= deadline:
                await self._end(LIFETIME_OVER)
                return
            until_check = IDLE_RECHECK_S - (now - self.checked_at)
            await asyncio.sleep(max(0.05, min(leases.REFRESH_S, until_check, deadline - now)))
            if self.lease.due():
                await self.lease.arefresh()
            if time.monotonic() - self.checked_at >= IDLE_RECHECK_S and not await self._allowed():
                await self._end(REFUSED)
                return

    async def _allowed(self) -> bool:
        self.checked_at = time.monotonic()
        run = await watchable(self.scope, self.run_id, self.share_token, self, connecting=False)
        return run is not None

    async def disconnect(self, code: int) -> None:
        if getattr(self, "viewing", False):
            self.viewing = False
            process_metrics.VIEWERS.dec()
        for name in ("sender", "keeper"):
            if hasattr(self, name):
                getattr(self, name).cancel()
        if hasattr(self, "lease"):
            await self.lease.arelease()
        if hasattr(self, "room"):
            await rooms.leave(self.room, self, self.channel_layer)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # viewers only listen
