"""The run page's websocket: the run's events as htmx fragments, replayed then followed live."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from playground.runs.access import run_for_scope
from playground.streaming import fragments
from playground.streaming.events import agroup_name, apublished

REFUSED = 4403


class RunConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["pk"])
        run = await database_sync_to_async(run_for_scope)(self.scope, self.run_id)
        if run is None:
            await self.close(code=REFUSED)
            return
        self.group = await agroup_name(self.run_id)
        self.seen: set[int] = set()
        # Join first, then read what was published: nothing falls between the two, and what
        # arrives twice is dropped by its number.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        backlog = await apublished(self.run_id)
        self.seen.update(e["seq"] for e in backlog)
        await self.send(text_data=fragments.state(self.run_id, backlog))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # viewers only listen

    async def run_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event["seq"] in self.seen:
            return
        self.seen.add(event["seq"])
        await self.send(text_data=fragments.event_fragment(self.run_id, event))
