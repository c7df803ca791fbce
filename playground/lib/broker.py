"""Whether Celery's broker still holds a task's message: how the reaper tells a message lost
with the broker's data from one that only waits its turn in a long queue.

A piece of work that no task has taken yet may be waiting in its queue (a class of 300 pressing
"run" at once), held by a worker that took it and has not acknowledged it yet, or gone: written
to a Redis primary that died before its replica had it (a Sentinel failover), or never sent (the
process that committed the row died before sending). Before, all three looked alike until
``UNCLAIMED_AFTER_S`` (25 minutes) had passed. The sender names each message after the work and
the attempt (``task_id``), so the reaper can ask the broker for it after ``LOST_AFTER_S``, and
send again at once what is in none of its places.

Where kombu's Redis transport (5.x) keeps a message: in its queue's list (one list per priority
step, ``queue``, ``queue\\x06\\x163``...), and, once a worker took it, in the ``unacked`` hash until
acknowledged (``acks_late``: after the task ran). The lists are read before the hash, so a
message that a worker takes during the read is found in one of them; one found in neither is
lost, except in the few microseconds between a worker's BRPOP and its write to the hash, where
it is sent twice, which the work's lease makes harmless (lib/leases.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

from django.conf import settings

from playground.lib import redis_roles

# kombu.transport.redis.Channel: the separator of a queue's priority lists, their steps, and the
# hash of messages taken and not yet acknowledged.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)
_UNACKED = "unacked"
_PAGE = 1000
# A message's task id, in its headers (Celery's message protocol 2): `"id": "..."`. Arguments
# are in the base64 body and their text form is an escaped string, so nothing else matches.
_ID = re.compile(rb'"id": "([^"\\]+)"')


def task_id(kind: str, pk: int, part: str, attempt: int) -> str:
    """The id a piece of work's message is sent under: unique per attempt, known to the reaper
    from the database alone (``kind`` and ``pk`` name the row, ``part`` what the task does)."""
    return f"{kind}-{pk}-{part}-{attempt}"


def queue_of(task_name: str) -> str:
    """The queue a task is routed to (settings.CELERY_TASK_ROUTES, else the default queue)."""
    route = settings.CELERY_TASK_ROUTES.get(task_name) or {}
    return str(route.get("queue") or settings.CELERY_TASK_DEFAULT_QUEUE)


def _keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS]


def lengths(queues: Iterable[str]) -> dict[str, int]:
    """How many messages wait in each queue (all its priority lists), in one round trip."""
    names = list(dict.fromkeys(queues))
    client = redis_roles.client(settings.REDIS_ROLES["broker"])
    pipe = client.pipeline(transaction=False)
    for queue in names:
        for key in _keys(queue):
            pipe.llen(key)
    counts = [int(n) for n in pipe.execute()]
    per = len(_PRIORITY_STEPS)
    return {queue: sum(counts[i * per : (i + 1) * per]) for i, queue in enumerate(names)}


def held(ids: Iterable[str], queues: Iterable[str]) -> set[str]:
    """Which of ``ids`` the broker holds now: waiting in one of ``queues`` or taken by a worker
    and not acknowledged. Reads each list in pages (never one reply of a whole deep queue) and
    stops as soon as every id is found."""
    wanted = {i.encode() for i in ids}
    found: set[bytes] = set()
    if not wanted:
        return set()
    client = redis_roles.client(settings.REDIS_ROLES["broker"])
    unacked = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("unacked_key", _UNACKED))
    keys = [key for queue in dict.fromkeys(queues) for key in _keys(queue)]
    for key in keys:
        start = 0
        while found != wanted:
            page = cast(list[bytes], client.lrange(key, start, start + _PAGE - 1))
            for message in page:
                found.update(m for m in _ID.findall(message) if m in wanted)
            if len(page) < _PAGE:
                break
            start += _PAGE
    cursor = 0
    while found != wanted:
        cursor, entries = cast(
            tuple[int, dict[bytes, bytes]], client.hscan(unacked, cursor, count=_PAGE)
        )
        for message in entries.values():
            found.update(m for m in _ID.findall(message) if m in wanted)
        if cursor == 0:
            break
    return {i.decode() for i in found}
