"""Publishing a run's events, and reading back the ones already published; the kinds of event.

The run's own event stream, so it lives with the run: the pipeline (``runs``) publishes, and
``streaming`` (websocket fragments, Server-Sent Events) only reads. Every function takes the run's
key (``Run.events_key``, known to whoever holds the run): publishing asks the database nothing.

Every event gets the next number of its run (a Redis counter) and is appended, in the same
atomic step, to a capped Redis stream of that run's events; then it is sent to the run's
channel-layer group. A viewer joins the group first, then reads the stream: everything before
it joined comes from the stream, everything after from the group, and the sequence numbers
drop what arrives twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypedDict, cast

import redis
from channels.layers import get_channel_layer

from playground.emulation.base import MethodEventKind
from playground.lib import redis_roles

log = logging.getLogger(__name__)

# Every kind of event a run publishes: what a method emits while it works (``MethodEventKind``:
# status, token, step, plan, program) and what the pipeline adds around it.
EventKind = (
    MethodEventKind
    | Literal[
        "trace",  # the real run's trace is stored (status, steps, result)
        "progress",  # the steps so far compared with the real trace (steps, correct_prefix, ...)
        "emulated",  # the model's trace is stored (status, steps)
        # A new attempt at the model's part (the worker writing it died mid-answer): what the
        # model wrote before (tokens, steps, plan, program, progress) is dropped (text).
        "restarted",
        "done",  # judged (verdict, comparison)
        "failed",  # error
        "cancelled",
    ]
)
TERMINAL: frozenset[EventKind] = frozenset({"done", "failed", "cancelled"})
# What the model wrote, which a ``restarted`` event drops.
WRITTEN: frozenset[EventKind] = frozenset({"token", "step", "plan", "program", "progress"})


def since_restart(events: list[Event]) -> list[Event]:
    """The events after the last ``restarted`` one (all of them when there is none): what the
    model's current attempt wrote, with the statuses since."""
    starts = [i for i, e in enumerate(events) if e["type"] == "restarted"]
    return events[starts[-1] + 1 :] if starts else events


# What the Server-Sent Events stream says about itself (never stored, never numbered).
StreamControlKind = Literal["hidden", "closed", "reconnect"]


class Event(TypedDict):
    """One published event: its number in the run, its kind, and the kind's fields."""

    seq: int
    type: EventKind
    text: NotRequired[str]  # status, token
    tokens: NotRequired[int]  # token: the meter (tokens, answer_tokens, limit, rate, calls)
    answer_tokens: NotRequired[int]
    limit: NotRequired[int | None]
    rate: NotRequired[float | None]
    calls: NotRequired[int]
    step: NotRequired[dict[str, Any]]  # step
    plan: NotRequired[dict[str, Any]]  # plan
    reused: NotRequired[bool]
    source: NotRequired[str]  # program
    status: NotRequired[str]  # trace, emulated
    steps: NotRequired[int]  # trace, emulated, progress
    result: NotRequired[Any]  # trace
    correct_prefix: NotRequired[int]  # progress
    divergence: NotRequired[str | None]
    verdict: NotRequired[dict[str, Any] | None]  # done
    comparison: NotRequired[dict[str, Any] | None]
    error: NotRequired[str | None]  # failed
    live_steps: NotRequired[bool]  # restarted: the page has a list of live steps to empty


KEEP_S = 24 * 3600  # a finished run's page renders from the database; the stream is for live use
MAX_EVENTS = 50_000

# INCR the run's counter and XADD the event with that number, atomically (two tasks publish
# for one run: the sandbox and the model). Idempotent: a client that lost the answer (a
# failover) sends the same call again, and the publisher's last event id (``KEYS[3]``, one
# field per publishing thread) says it was already stored, under which number.
_APPEND = """
local last = redis.call('HGET', KEYS[3], ARGV[4])
if last then
  local space = string.find(last, ' ', 1, true)
  if string.sub(last, 1, space - 1) == ARGV[5] then
    local seq = tonumber(string.sub(last, space + 1))
    -- A write all the same: a WAIT after this call waits for the replica to have the event.
    redis.call('EXPIRE', KEYS[3], ARGV[3])
    return {seq, (string.gsub(ARGV[1], '"seq": 0', '"seq": ' .. seq, 1))}
  end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local event = string.gsub(ARGV[1], '"seq": 0', '"seq": ' .. seq, 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', event)
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5] .. ' ' .. seq)
redis.call('EXPIRE', KEYS[3], ARGV[3])
return {seq, event}
"""
# Behind Sentinel, an event is broadcast only once a replica has it (WAIT): a primary that dies
# right after would otherwise take the event with it, and the new primary would give its number
# to the next event, which viewers that saw the first would drop. A replica that acknowledges
# late (a loaded host) is waited for again, REPLICA_WAIT_MS at a time, before the event goes
# out; with no replica connected to the primary, or one that missed REPLICA_MISSES waits in a
# row (hung, or far behind), publishing goes on unreplicated and asks again after
# REPLICA_RETRY_S (then a primary that dies can take events with it: viewers miss them).
REPLICA_WAIT_MS = 200
REPLICA_MISSES = 5
REPLICA_RETRY_S = 10.0


def _role_url() -> str:
    from django.conf import settings

    return str(settings.REDIS_ROLES["events"])


def redis_client() -> redis.Redis:
    """This process's client of the Redis that keeps the runs' event streams (the events role:
    lib/redis_roles.py)."""
    return redis_roles.client(_role_url())


def _replicated() -> bool:
    return redis_roles.is_sentinel(_role_url())


def _keys(key: str) -> list[str]:
    """The run's counter, stream and publishers' last ids; one hash tag (``{...}``) keeps them
    in one slot, as a script's keys must be on a sharded server."""
    return [
        f"playground:{{{key}}}:seq",
        f"playground:{{{key}}}:events",
        f"playground:{{{key}}}:ids",
    ]


class _Replicas:
    """Whether to wait for a replica: not until ``missing_until`` once none is connected or the
    connected ones keep missing the wait."""

    def __init__(self) -> None:
        self.missing_until = 0.0
        self.misses = 0

    def wanted(self) -> bool:
        return time.monotonic() >= self.missing_until

    def acknowledged(self) -> None:
        self.misses = 0

    def wait_again(self, connected: Callable[[], int]) -> bool:
        """After a wait no replica acknowledged: whether to wait once more (a replica is
        connected and has not missed ``REPLICA_MISSES`` waits in a row); if not, none is
        waited for until ``REPLICA_RETRY_S`` from now. ``connected`` counts the primary's
        replicas."""
        self.misses += 1
        attached = connected()
        if attached and self.misses < REPLICA_MISSES:
            return True  # it lags (a loaded host): the event waits for it
        log.warning(
            "events: no Redis replica acknowledged within %d ms (%d connected, %d misses in a "
            "row); publishing unreplicated for %d s",
            REPLICA_WAIT_MS, attached, self.misses, REPLICA_RETRY_S,
        )  # fmt: skip
        self.misses = 0
        self.missing_until = time.monotonic() + REPLICA_RETRY_S
        return False


def _connected_replicas(client: redis.Redis) -> int:
    """How many replicas the primary has now (``ROLE``: 0 when it cannot say)."""
    try:
        role: Any = client.execute_command("ROLE")
    except redis.RedisError:
        return 0
    return len(role[2]) if role and role[0] in (b"master", "master") else 0


_replicas = _Replicas()


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


def _append(client: redis.Redis, args: list[str | int]) -> tuple[int, bytes]:
    """Run the append (its number and stored text); behind Sentinel, wait until a replica has
    it, sending the idempotent append and its WAIT again while a connected replica lags: if
    the primary changed meanwhile, the new one appends the event afresh, and its number is
    the one that goes out."""
    if not (_replicated() and _replicas.wanted()):
        seq, stored = client.eval(_APPEND, 3, *args)
        return int(seq), bytes(stored)
    while True:
        # WAIT counts the writes of its own connection: one pipeline, so one connection.
        pipe = client.pipeline(transaction=False)
        pipe.eval(_APPEND, 3, *args)
        pipe.execute_command("WAIT", 1, REPLICA_WAIT_MS)
        (seq, stored), replicas = pipe.execute()
        if int(replicas) >= 1:
            _replicas.acknowledged()
            return int(seq), bytes(stored)
        if not _replicas.wait_again(lambda: _connected_replicas(client)):
            return int(seq), bytes(stored)


def publish(key: str, kind: EventKind, **data: Any) -> Event:
    """Number, store and broadcast one event of the run whose ``events_key`` is ``key`` (its
    channel-layer group has the same name)."""
    draft = json.dumps({"seq": 0, "type": kind, **data}, ensure_ascii=False)
    publisher = f"{os.getpid()}:{threading.get_ident()}"
    args: list[str | int] = [
        *_keys(key),
        draft,
        MAX_EVENTS,
        KEEP_S,
        publisher,
        secrets.token_hex(8),
    ]
    client = redis_client()
    # The append is idempotent (the publisher's id): sent again whole after any lost connection,
    # as many times as the role's clients retry (about 30 s behind Sentinel), including where
    # redis-py itself does not retry (taking a connection from the pool during a failover).
    retry = redis_roles.retry_for(_role_url())
    seq, stored = retry.call_with_retry(lambda: _append(client, args), lambda error: None)
    event = cast(Event, json.loads(stored))
    assert event["seq"] == int(seq)
    _sender.send(key, {"type": "run.event", "event": event})
    return event


def published(key: str, after: int = 0) -> list[Event]:
    """The run's stored events with a number above ``after``, in order."""
    entries: Any = redis_client().xrange(_keys(key)[1])
    events = [cast(Event, json.loads(fields[b"e"])) for _, fields in entries or []]
    return sorted((e for e in events if e["seq"] > after), key=lambda e: e["seq"])


def latest(key: str) -> int:
    """The number of the run's last published event (0: none yet): one ``GET``."""
    value: Any = redis_client().get(_keys(key)[0])
    return int(value or 0)


async def alatest(key: str) -> int:
    from asgiref.sync import sync_to_async

    return await sync_to_async(latest)(key)


async def apublished(key: str, after: int = 0) -> list[Event]:
    from asgiref.sync import sync_to_async

    return await sync_to_async(published)(key, after)


async def filled(key: str, last: int, event: Event) -> list[Event]:
    """What a live viewer that has everything up to ``last`` should show on receiving ``event``:
    the event alone, or, when live messages were lost in between (a Redis failover, a
    reconnection), the stored events after ``last`` up to and with it, in order."""
    if event["seq"] <= last + 1:
        return [event]
    missing = [e for e in await apublished(key, last) if e["seq"] < event["seq"]]
    return [*missing, event]
