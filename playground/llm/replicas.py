"""Which replica of a model gets a stream, and what every process knows about their health.

A model may list several base URLs (``ModelSpec.base_urls``). A replica that refused a
connection, broke it before answering, or answered 429/502/503/504 is *marked down* for a few
seconds (its ``Retry-After`` when it gave one, capped), and streams go to the others meanwhile.
The marks and the count of streams in flight on each replica live in the site's Redis (a key
with a TTL; per-replica leases, ``lib/leases.py``), so every worker on every host sees the same;
a process without leases (a script without Django) keeps its own.

Choosing: among the replicas not marked down, a call with a routing key goes where rendezvous
(highest-random-weight) hashing of the key puts it, so a Think-and-Execute plan or a user keeps
one replica's prefix cache, and moves (alone) when that replica is down; a call without one
goes to the replica with the fewest streams in flight. When every replica is down, the one back
soonest is tried anyway: a mark only steers, it never refuses a call by itself, except that a
replica's ``Retry-After`` is waited out.

Also here: the one ``httpx.Client`` of each process (keep-alive connections reused across
streams), and ``routing_key``, which turns an identity into an opaque key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx
import redis

from playground.lib import leases
from playground.llm.registry import ModelSpec

log = logging.getLogger(__name__)

# How long a replica that failed stays marked down: long enough that a dead one is not asked by
# every stream, short enough that a restarted one is back within seconds (a refused connection
# costs a millisecond, so the next probe is cheap).
DOWN_S = 5.0
# The longest Retry-After honoured: a replica is not skipped (nor waited for) longer than this.
RETRY_AFTER_CAP_S = 30.0
# Statuses that say "not now" (overloaded, restarting, behind a router that has no engine
# free): the request is sent again, elsewhere or later. Anything else is an answer.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def max_attempts(model: ModelSpec) -> int:
    """Attempts for one stream: each replica once and two more (3 for a single server)."""
    return min(8, len(model.base_urls) + 2)


def backoff_s(attempt: int) -> float:
    """The pause before attempt ``attempt`` (0-based) when every replica is down."""
    return 0.0 if attempt == 0 else min(2.0, 0.25 * 2 ** (attempt - 1))


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header's seconds (delta-seconds or an HTTP date), capped; None when
    absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(RETRY_AFTER_CAP_S, max(0.0, seconds))


def routing_key(kind: str, value: object) -> str:
    """A stable opaque key for ``kind:value`` ("user:42", "plan:<digest>"): the same on every
    host and after a restart, and not the identity itself (no personal data leaves the site)."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]


def _rank(key: str, url: str) -> bytes:
    """Rendezvous hashing's weight of ``url`` for ``key``: the highest wins."""
    return hashlib.sha256(f"{key}\0{url}".encode()).digest()


def by_key(key: str, urls: Collection[str]) -> list[str]:
    """``urls`` in the order the key prefers them: removing one moves only its own keys."""
    return sorted(urls, key=lambda url: _rank(key, url), reverse=True)


def _digest(url: str) -> str:
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:12]


def streams_key(model: ModelSpec, url: str) -> str:
    """The Redis set of the streams in flight on one replica (lib/leases.py)."""
    return f"{leases.prefix()}:model:{model.name}:replica:{_digest(url)}:streams"


def down_key(model: ModelSpec, url: str) -> str:
    """The Redis key that marks a replica down while it lives (its TTL is the mark's length)."""
    return f"{leases.prefix()}:model:{model.name}:replica:{_digest(url)}:down"


@dataclass(frozen=True)
class Health:
    """What is known of one replica now: seconds left of its down mark (0: up) and whether the
    mark is the replica's own Retry-After (waited out) or a failure (probed after a backoff)."""

    url: str
    down_s: float = 0.0
    retry_after: bool = False
    in_flight: int = 0


# A process without leases: its own marks (url -> until, on time.monotonic) and counts.
_local_lock = threading.Lock()
_local_down: dict[tuple[str, str], tuple[float, bool]] = {}
_local_streams: dict[tuple[str, str], int] = {}


class Balancer:
    """One stream's view of its model's replicas: ``choose`` one, ``claim`` a place on it (a
    per-replica lease joined to the stream's model lease, or a local count), ``mark_down`` a
    failing one, ``mark_up`` one that answered after being marked."""

    def __init__(self, model: ModelSpec, held: leases.Held | None = None) -> None:
        self.model = model
        self.held = held  # the stream's model lease, to which its replica's place is joined
        self.shared = leases.configured()
        self.claimed: str | None = None

    # -- what is known -----------------------------------------------------------------------
    def health(self) -> list[Health]:
        """Every replica, in configuration order, as the site knows it now."""
        urls = self.model.base_urls
        if not self.shared:
            now = time.monotonic()
            with _local_lock:
                out = []
                for url in urls:
                    until, waited = _local_down.get((self.model.name, url), (0.0, False))
                    out.append(
                        Health(url, max(0.0, until - now), waited and until > now,
                               _local_streams.get((self.model.name, url), 0))
                    )  # fmt: skip
                return out
        try:
            pipe = leases.redis_client().pipeline(transaction=False)
            for url in urls:
                pipe.pttl(down_key(self.model, url))
                pipe.get(down_key(self.model, url))
            marks = pipe.execute()
            counts = leases.live_many([streams_key(self.model, url) for url in urls])
        except redis.RedisError as exc:  # balancing is best effort: every replica looks up
            log.warning("model %s: replica health unknown (%s)", self.model.name, exc)
            return [Health(url) for url in urls]
        return [
            Health(url, max(0, ttl) / 1000, reason == b"retry-after", count)
            for url, ttl, reason, count in zip(urls, marks[::2], marks[1::2], counts, strict=True)
        ]

    def choose(
        self, key: str = "", tried: Collection[str] = (), attempt: int = 0
    ) -> tuple[Health, float]:
        """The replica for this attempt and the seconds to wait before sending to it (0 unless
        every replica is down). Replicas already ``tried`` by this stream come last."""
        replicas = self.health()
        up = [h for h in replicas if not h.down_s]
        fresh = [h for h in up if h.url not in tried] or up
        if fresh:
            if key:
                best = by_key(key, [h.url for h in fresh])[0]
                return next(h for h in fresh if h.url == best), 0.0
            fewest = min(h.in_flight for h in fresh)
            ties = [h for h in fresh if h.in_flight == fewest]
            return ties[secrets.randbelow(len(ties))], 0.0
        # Every replica is down: the one back soonest (the key's own first, among equals).
        order = by_key(key, [h.url for h in replicas]) if key else [h.url for h in replicas]
        soonest = min(replicas, key=lambda h: (h.down_s, order.index(h.url)))
        wait = soonest.down_s if soonest.retry_after else backoff_s(attempt)
        return soonest, wait

    # -- a stream's place ---------------------------------------------------------------------
    def claim(self, url: str) -> None:
        """Count this stream on ``url`` until ``release``."""
        self.release()
        if self.held is not None:
            try:
                self.held.join(streams_key(self.model, url), max(1, self.model.max_concurrency))
            except redis.RedisError as exc:  # only the balance suffers
                log.warning("model %s: cannot count a stream on %s (%s)", self.model.name, url, exc)
        else:
            with _local_lock:
                place = (self.model.name, url)
                _local_streams[place] = _local_streams.get(place, 0) + 1
        self.claimed = url

    def release(self) -> None:
        url, self.claimed = self.claimed, None
        if url is None:
            return
        if self.held is not None:
            self.held.leave(streams_key(self.model, url))
        else:
            with _local_lock:
                place = (self.model.name, url)
                _local_streams[place] = max(0, _local_streams.get(place, 0) - 1)

    # -- health ------------------------------------------------------------------------------
    def mark_down(self, url: str, retry_after: float | None = None) -> None:
        """Steer streams away from ``url`` for DOWN_S seconds, or for its ``Retry-After``."""
        seconds = retry_after if retry_after is not None else DOWN_S
        seconds = min(RETRY_AFTER_CAP_S, max(0.05, seconds))
        waited = retry_after is not None
        if not self.shared:
            with _local_lock:
                _local_down[(self.model.name, url)] = (time.monotonic() + seconds, waited)
            return
        try:
            leases.redis_client().set(
                down_key(self.model, url),
                b"retry-after" if waited else b"failed",
                px=max(1, int(seconds * 1000)),
            )
        except redis.RedisError as exc:
            log.warning("model %s: cannot mark %s down (%s)", self.model.name, url, exc)

    def mark_up(self, url: str) -> None:
        """``url`` answered: it is up again for everyone, before its mark would lapse."""
        if not self.shared:
            with _local_lock:
                _local_down.pop((self.model.name, url), None)
            return
        try:
            leases.redis_client().delete(down_key(self.model, url))
        except redis.RedisError as exc:
            log.warning("model %s: cannot mark %s up (%s)", self.model.name, url, exc)


def first_up(model: ModelSpec) -> str:
    """A replica for a small side request (counting a prompt's tokens): the first one not
    marked down, or the first one."""
    for health in Balancer(model).health():
        if not health.down_s:
            return health.url
    return model.base_url


# One client per process: its pool keeps connections alive between streams. Keyed by the pid
# because a forked child (a Celery prefork worker) must not share its parent's sockets.
_clients: dict[int, httpx.Client] = {}
_clients_lock = threading.Lock()


def http_client() -> httpx.Client:
    """This process's HTTP client for model servers (thread-safe; timeouts are per request)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _clients_lock:
            client = _clients.get(pid)
            if client is None:
                _clients.clear()  # a parent's client, inherited through fork: left unused
                client = _clients[pid] = httpx.Client(
                    # The model's max_concurrency bounds the streams; the pool must not.
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
                    timeout=httpx.Timeout(5.0),
                )
    return client
