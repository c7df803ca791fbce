"""How many live views (event streams and websockets) one requester holds open, across every web
process: the caps ``streams.user`` (per account), ``streams.anon`` (per address, signed out) and
``streams.ip`` (per address, whoever is signed in) of the limits table.

Each open stream holds a lease: its id in a Redis sorted set per requester, scored by when it
expires. A stream refreshes its lease while it lives and drops it when it ends; a web process
that dies takes no lease with it for good, since an expired lease no longer counts. Checking
the caps and taking the lease is one Lua script, so two streams opening at once cannot both take
the last place."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest

from playground.lib import ratelimits
from playground.runs.events import redis_client

# A lease not refreshed for this long no longer counts (its process died); streams refresh
# theirs well within it.
LEASE_S = 60
REFRESH_S = 20
# When to try again after a refusal: about when a view closed elsewhere frees its place.
RETRY_AFTER_S = 30

# KEYS: the requester's sets; ARGV: now, expiry, stream id, then one cap per key.
# Returns 0 when the lease is taken, else the (1-based) number of the first set that is full.
_ACQUIRE = """
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[3])
  redis.call('EXPIRE', key, math.ceil(ARGV[2] - ARGV[1]) + 1)
end
return 0
"""

_WHOSE = {
    "streams.user": "for your account",
    "streams.anon": "from your address",
    "streams.ip": "from your address",
}


@dataclass
class Lease:
    """One open stream's place in its requester's sets."""

    keys: list[str]
    stream_id: str
    refreshed_at: float = 0.0

    def refresh(self) -> None:
        """Push the expiry on (a stream that lives calls this every ``REFRESH_S``)."""
        now = time.time()
        pipe = redis_client().pipeline()
        for key in self.keys:
            pipe.zadd(key, {self.stream_id: now + LEASE_S})
            pipe.expire(key, LEASE_S + 1)
        pipe.execute()
        self.refreshed_at = time.monotonic()

    def release(self) -> None:
        pipe = redis_client().pipeline()
        for key in self.keys:
            pipe.zrem(key, self.stream_id)
        pipe.execute()

    def due(self) -> bool:
        return time.monotonic() - self.refreshed_at >= REFRESH_S

    async def arefresh(self) -> None:
        await sync_to_async(self.refresh, thread_sensitive=False)()

    async def arelease(self) -> None:
        await sync_to_async(self.release, thread_sensitive=False)()


def _prefix() -> str:
    # Two sites (or a test database and a real one) sharing one Redis count separately.
    database = "".join(c for c in str(settings.DATABASES["default"]["NAME"]) if c.isalnum())[:30]
    return f"playground:{database}:streams"


def _limits(user: Any, address: str) -> list[tuple[str, str]]:
    """(limit name, counter) pairs that one more stream of this requester must fit in."""
    if user is not None and getattr(user, "is_authenticated", False):
        first = ("streams.user", f"user:{user.pk}")
    else:
        first = ("streams.anon", f"ip:{address}")
    return [first, ("streams.ip", f"ip:{address}")]


def refusal(name: str) -> ratelimits.Refused:
    cap = ratelimits.cap(name)
    message = (
        f"Too many live views open at once: at most {cap:,} {_WHOSE[name]}. "
        "Close another tab showing a run, or wait for one to finish."
    )
    return ratelimits.Refused(name, message, RETRY_AFTER_S)


def acquire(user: Any, address: str) -> Lease:
    """Take a place for one more stream of this requester, or raise ``ratelimits.Refused``."""
    limits = _limits(user, address)
    prefix = _prefix()
    keys = [f"{prefix}:{name}:{counter}" for name, counter in limits]
    lease = Lease(keys=keys, stream_id=secrets.token_hex(8))
    now = time.time()
    caps = [ratelimits.cap(name) for name, _ in limits]
    full = int(
        redis_client().eval(_ACQUIRE, len(keys), *keys, now, now + LEASE_S, lease.stream_id, *caps)
    )
    if full:
        raise refusal(limits[full - 1][0])
    lease.refreshed_at = time.monotonic()
    return lease


def address_of_scope(scope: dict[str, Any]) -> str:
    """A websocket's client address, read as the pages read theirs (``client_address``)."""
    client = scope.get("client") or ("", 0)
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = str(client[0] or "")
    return ratelimits.client_address(request)


async def aacquire(user: Any, address: str) -> Lease:
    return await sync_to_async(acquire, thread_sensitive=False)(user, address)
