"""How many live views (event streams and websockets) one requester holds open, across every web
process: the caps ``streams.user`` (per account), ``streams.anon`` (per address, signed out) and
``streams.ip`` (per address, whoever is signed in) of the limits table.

Each open stream holds a lease (lib/leases.py): its id in a Redis sorted set per requester,
scored by when it expires. A stream refreshes its lease while it lives and drops it when it
ends; a web process that dies takes no lease with it for good, since an expired lease no longer
counts. Checking the caps and taking the lease is one Lua script, so two streams opening at once
cannot both take the last place."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest

from playground.lib import leases, ratelimits

# A lease not refreshed for this long no longer counts (its process died); streams refresh
# theirs well within it.
LEASE_S = 60
REFRESH_S = 20
# When to try again after a refusal: about when a view closed elsewhere frees its place.
RETRY_AFTER_S = 30

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
        leases.refresh(self.keys, self.stream_id, LEASE_S)
        self.refreshed_at = time.monotonic()

    def release(self) -> None:
        leases.release(self.keys, self.stream_id)

    def due(self) -> bool:
        return time.monotonic() - self.refreshed_at >= REFRESH_S

    async def arefresh(self) -> None:
        await sync_to_async(self.refresh, thread_sensitive=False)()

    async def arelease(self) -> None:
        await sync_to_async(self.release, thread_sensitive=False)()


def _prefix() -> str:
    return f"{leases.prefix()}:streams"


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
    lease = Lease(keys=keys, stream_id=leases.new_holder())
    caps = [ratelimits.cap(name) for name, _ in limits]
    full = leases.take(keys, caps, lease.stream_id, LEASE_S)
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
