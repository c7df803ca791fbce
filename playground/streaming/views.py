"""``GET /runs/<id>/events``: the run's events as Server-Sent Events (JSON), for API clients.

Replays what was published (after ``Last-Event-ID`` or ``?after=N`` when reconnecting), then
follows live until the run ends; a comment every 15 s keeps proxies from closing the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from playground.classroom.guards import run_hidden_from
from playground.classroom.hiding import HIDDEN_MESSAGE
from playground.lib.params import whole_number
from playground.runs.access import get_run_for_user
from playground.runs.models import Run
from playground.streaming.events import agroup_name, apublished
from playground.streaming.fragments import TERMINAL

KEEPALIVE_S = 15.0


def _sse(event: dict[str, Any]) -> str:
    data = json.dumps(event, ensure_ascii=False)
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {data}\n\n"


def _final_from_database(run: Run) -> dict[str, Any]:
    """For a run whose live events have expired: its end, from the database."""
    kind = {"done": "done", "failed": "failed", "cancelled": "cancelled"}[run.status]
    return {"seq": 0, "type": kind, "error": run.error or None, "verdict": run.verdict or None}


async def run_events(request: HttpRequest, pk: int) -> StreamingHttpResponse | JsonResponse:
    run = await sync_to_async(get_run_for_user)(request, pk)
    if await sync_to_async(run_hidden_from)(request.user, run):
        return JsonResponse({"detail": HIDDEN_MESSAGE}, status=403)
    raw_after = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    after = whole_number(raw_after) or 0

    async def stream() -> AsyncIterator[str]:
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        group = await agroup_name(pk)
        await layer.group_add(group, channel)
        try:
            seen: set[int] = set()
            backlog = await apublished(pk, after)
            for event in backlog:
                seen.add(event["seq"])
                yield _sse(event)
                if event["type"] in TERMINAL:
                    return
            if not backlog and after == 0 and run.is_finished:
                yield _sse(_final_from_database(run))
                return
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive(channel), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                event = message["event"]
                if event["seq"] <= after or event["seq"] in seen:
                    continue
                seen.add(event["seq"])
                yield _sse(event)
                if event["type"] in TERMINAL:
                    return
        finally:
            await layer.group_discard(group, channel)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response
