"""Publishing a run's events, and reading back the ones already published.

Every event gets the next number of its run (a Redis counter) and is appended, in the same
atomic step, to a capped Redis stream of that run's events; then it is sent to the run's
channel-layer group. A viewer joins the group first, then reads the stream: everything before
it joined comes from the stream, everything after from the group, and the sequence numbers
drop what arrives twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from functools import cache
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.conf import settings

KEEP_S = 24 * 3600  # a finished run's page renders from the database; the stream is for live use
MAX_EVENTS = 50_000

# INCR the run's counter and XADD the event with that number, atomically (two tasks publish
# for one run: the sandbox and the model).
_APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local event = string.gsub(ARGV[1], '"seq": 0', '"seq": ' .. seq, 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', event)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {seq, event}
"""


@cache
def run_key(run_id: int) -> str:
    """The name of a run's live channel: the database and the run's creation time as well as
    its id, so that a recreated database (tests, a restored backup) never meets the events of
    an older run with the same id, and two sites sharing one Redis never meet at all."""
    from playground.runs.models import Run

    created = Run.objects.values_list("created_at", flat=True).get(pk=run_id)
    database = "".join(c for c in str(settings.DATABASES["default"]["NAME"]) if c.isalnum())[:30]
    return f"run-{database}-{run_id}-{int(created.timestamp() * 1_000_000)}"


def group_name(run_id: int) -> str:
    return run_key(run_id)


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def _keys(run_id: int) -> list[str]:
    key = run_key(run_id)
    return [f"playground:{key}:seq", f"playground:{key}:events"]


class _Sender:
    """One event loop thread per process for group sends: async_to_sync would make a new loop,
    and so new Redis connections, for every event (milliseconds each, per token)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0
        self.lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None or self.pid != os.getpid():  # new process (a forked worker)
                self.loop = asyncio.new_event_loop()
                self.pid = os.getpid()
                thread = threading.Thread(target=self.loop.run_forever, name="events", daemon=True)
                thread.start()
            return self.loop

    def send(self, group: str, message: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        coroutine = layer.group_send(group, message)
        asyncio.run_coroutine_threadsafe(coroutine, self._running_loop()).result(timeout=5)


_sender = _Sender()


def publish(run_id: int, kind: str, **data: Any) -> dict[str, Any]:
    """Number, store and broadcast one event (``kind``: status, token, trace, done, failed)."""
    draft = json.dumps({"seq": 0, "type": kind, **data}, ensure_ascii=False)
    seq, stored = _redis().eval(_APPEND, 2, *_keys(run_id), draft, MAX_EVENTS, KEEP_S)
    event: dict[str, Any] = json.loads(stored)
    assert event["seq"] == int(seq)
    _sender.send(group_name(run_id), {"type": "run.event", "event": event})
    return event


def published(run_id: int, after: int = 0) -> list[dict[str, Any]]:
    """The run's stored events with a number above ``after``, in order."""
    entries: Any = _redis().xrange(_keys(run_id)[1])
    events = [json.loads(fields[b"e"]) for _, fields in entries or []]
    return sorted((e for e in events if e["seq"] > after), key=lambda e: e["seq"])


async def apublished(run_id: int, after: int = 0) -> list[dict[str, Any]]:
    from asgiref.sync import sync_to_async

    return await sync_to_async(published)(run_id, after)


async def agroup_name(run_id: int) -> str:
    from asgiref.sync import sync_to_async

    return await sync_to_async(group_name)(run_id)
