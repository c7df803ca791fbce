"""``GET /runs/<id>/events``: the run's events as Server-Sent Events (JSON), for API clients.

Replays what was published (after ``Last-Event-ID`` or ``?after=N`` when reconnecting), then
follows live until the run ends; a comment every 15 s keeps proxies from closing the stream.

A stream ends by itself, cleanly, when:

- the run has ended and its events are no longer all stored (they expire a day after the run,
  or the client asks for numbers past the last one): the run's end is sent from the database,
  then ``done`` (or ``failed``/``cancelled``), so a client never waits on events that cannot come;
- the run becomes hidden from the viewer (an assignment with its program opens): a ``hidden``
  event says so (checked every few seconds while events flow, and while idle);
- it has been open ``stream_seconds`` (the limits table): a ``reconnect`` event tells the client
  to reconnect, which resumes after the last event it received (``Last-Event-ID``).

Each open stream holds one of its requester's places (``streams.*`` in the limits table, see
``leases``); over the cap the request gets a 429 with ``Retry-After`` and a sentence that says so.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from playground.lib import hiding, ratelimits
from playground.lib.params import whole_number
from playground.runs.access import get_run_for_user, still_active
from playground.runs.events import (
    TERMINAL,
    Event,
    EventKind,
    StreamControlKind,
    apublished,
    filled,
)
from playground.runs.models import Run
from playground.streaming import leases

KEEPALIVE_S = 15.0
# How often a stream asks again whether its viewer may still see the run: while events flow,
# and (to notice an assignment that opens while nothing happens) while idle.
RECHECK_S = 5.0
IDLE_RECHECK_S = 10.0
# What a client that reconnects after ``reconnect`` should wait, in milliseconds (SSE ``retry``).
RECONNECT_MS = 1000


def _sse(event: Event) -> str:
    data = json.dumps(event, ensure_ascii=False)
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {data}\n\n"


ACCOUNT_DISABLED = "This account has been disabled: its live views end."


def _control(kind: StreamControlKind, **data: Any) -> str:
    """An event about the stream rather than the run: no ``id``, so that ``Last-Event-ID``
    stays the number of the run's last event."""
    text = json.dumps({"type": kind, **data}, ensure_ascii=False)
    return f"event: {kind}\ndata: {text}\n\n"


def _final_from_database(run: Run, seq: int = 0) -> Event:
    """For a run whose live events have expired: its end, from the database."""
    ends: dict[str, EventKind] = {"done": "done", "failed": "failed", "cancelled": "cancelled"}
    kind = ends[run.status]
    return {"seq": seq, "type": kind, "error": run.error or None, "verdict": run.verdict or None}


def _hidden_from(user: Any, run: Run) -> bool:
    return hiding.policy().hidden_for(user).run(run)


def _fresh(run: Run) -> Run:
    return Run.objects.get(pk=run.pk)


def _resume_from(request: HttpRequest) -> int:
    """Where a reconnecting client left off: ``Last-Event-ID``, else ``?after=``; anything that
    is not a plain number (the header is the client's to forge) means from the start."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    return whole_number(raw) or 0


def _too_many(refused: ratelimits.Refused) -> JsonResponse:
    response = JsonResponse({"detail": refused.message}, status=429)
    response["Retry-After"] = str(refused.retry_after)
    return response


async def run_events(request: HttpRequest, pk: int) -> StreamingHttpResponse | JsonResponse:
    run = await sync_to_async(get_run_for_user)(request, pk)
    user = await request.auser()
    if await sync_to_async(_hidden_from)(user, run):
        return JsonResponse({"detail": hiding.policy().hidden_message}, status=403)
    after = _resume_from(request)
    try:
        lease = await leases.aacquire(user, ratelimits.client_address(request))
    except ratelimits.Refused as refused:
        return _too_many(refused)
    lifetime = float(ratelimits.cap("stream_seconds"))

    async def stream() -> AsyncIterator[str]:
        opened = time.monotonic()
        checked = opened
        last_write = opened
        last_seq = after
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        group = run.events_key
        await layer.group_add(group, channel)

        async def gone() -> str | None:
            """The end of a finished run whose remaining events are no longer stored (or
            None while the run goes on, or when they are)."""
            current = await sync_to_async(_fresh)(run)
            if not current.is_finished:
                return None
            rest = await apublished(group, last_seq)
            if any(e["type"] in TERMINAL for e in rest):
                return "".join(_sse(e) for e in rest)
            # Events past the client's number were lost (expired, or never had that number):
            # what there is, then the end as the database has it.
            tail = "".join(_sse(e) for e in rest)
            seq = max([last_seq, *(e["seq"] for e in rest)])
            return tail + _sse(_final_from_database(current, seq))

        try:
            seen: set[int] = set()
            backlog = await apublished(group, after)
            for event in backlog:
                seen.add(event["seq"])
                last_seq = max(last_seq, event["seq"])
                yield _sse(event)
                if event["type"] in TERMINAL:
                    return
            ending = await gone()
            if ending is not None:
                yield ending
                return
            while True:
                now = time.monotonic()
                if now - opened >= lifetime:
                    yield f"retry: {RECONNECT_MS}\n" + _control(
                        "reconnect",
                        detail="This stream has been open for its longest time; reconnect to "
                        "go on from the last event received.",
                        after=last_seq,
                    )
                    return
                wait = min(IDLE_RECHECK_S - (now - checked), opened + lifetime - now)
                try:
                    message = await asyncio.wait_for(layer.receive(channel), max(0.01, wait))
                except TimeoutError:
                    message = None
                now = time.monotonic()
                limit = RECHECK_S if message is not None else IDLE_RECHECK_S
                if now - checked >= limit:
                    checked = now
                    if await sync_to_async(_hidden_from)(user, run):
                        yield _control("hidden", detail=hiding.policy().hidden_message)
                        return
                    # An account disabled by staff since the stream opened loses it, as its
                    # websockets and sessions do.
                    if not await sync_to_async(still_active)(user):
                        yield _control("closed", detail=ACCOUNT_DISABLED)
                        return
                    if message is None:
                        ending = await gone()
                        if ending is not None:
                            yield ending
                            return
                    if lease.due():
                        await lease.arefresh()
                if message is None:
                    if now - last_write >= KEEPALIVE_S:
                        last_write = now
                        yield ": keep-alive\n\n"
                    continue
                event = message["event"]
                if event["seq"] <= after or event["seq"] in seen:
                    continue
                # A gap (live messages lost while the channel layer's Redis failed over or
                # reconnected): the missing events from the stream first, in order.
                for one in await filled(group, last_seq, event):
                    if one["seq"] in seen:
                        continue
                    seen.add(one["seq"])
                    last_seq = max(last_seq, one["seq"])
                    last_write = now
                    yield _sse(one)
                    if one["type"] in TERMINAL:
                        return
        finally:
            await layer.group_discard(group, channel)
            await lease.arelease()

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    # A response closed before its first event (the client went at once) never runs the
    # stream's own clean-up: give the place back then too.
    response._resource_closers.append(lease.release)  # type: ignore[attr-defined]
    return response
