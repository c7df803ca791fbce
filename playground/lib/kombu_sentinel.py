"""Celery's broker behind Sentinel, with each sent task on a replica before the send returns.

Redis replicates asynchronously: a task message LPUSHed to the primary in the instant before it
dies is acknowledged to the sender, then missing on the replica that Sentinel promotes. The run
that sent it waits for a task nobody will take, and the reaper sends it again only after
``worktimes.UNCLAIMED_AFTER_S`` (25 minutes), since an unclaimed part may as well be waiting in a
long queue. Here the LPUSH and a ``WAIT 1`` go in one pipeline, so on one connection, as the
runs' event streams do (runs/events.py): the send returns once a replica has the message, or
after ``WAIT_MS`` without one (then it goes on unreplicated and logs it, and asks again after
``RETRY_S``). Only behind Sentinel: settings.py names this transport when the broker's URL is a
Sentinel one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kombu.transport.redis import SentinelChannel, SentinelTransport
from kombu.utils.json import dumps

log = logging.getLogger(__name__)

WAIT_MS = 200
RETRY_S = 10.0


class _Replicas:
    """Whether to wait for a replica: not for ``RETRY_S`` after one did not answer in time."""

    def __init__(self) -> None:
        self.missing_until = 0.0

    def wanted(self) -> bool:
        return time.monotonic() >= self.missing_until

    def acknowledged(self, replicas: int) -> None:
        if replicas < 1:
            log.warning("broker: no Redis replica acknowledged a task within %d ms", WAIT_MS)
            self.missing_until = time.monotonic() + RETRY_S


_replicas = _Replicas()


class Channel(SentinelChannel):
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        if kwargs.get("_publish_batch") is not None or not _replicas.wanted():
            super()._put(queue, message, **kwargs)
            return
        this: Any = self  # kombu's channel sets these attributes at run time
        key = this._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        with self.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=False)
            pipe.lpush(key, dumps(message))
            if this._expires and queue in this._expires:
                for step in self.priority_steps:
                    pipe.pexpire(this._q_for_pri(queue, step), this._expires[queue])
            pipe.execute_command("WAIT", 1, WAIT_MS)
            replicas = pipe.execute()[-1]
        _replicas.acknowledged(int(replicas))


class Transport(SentinelTransport):
    Channel = Channel
