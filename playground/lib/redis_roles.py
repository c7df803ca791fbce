"""Where each of Redis's roles lives, and how every client reaches it, directly or through Sentinel.

The site uses Redis for five things with different needs, each configurable on its own (settings:
``REDIS_URL`` and the ``PLAYGROUND_REDIS_*_URL(S)`` that default to it):

- **broker**: Celery's queues, and with them the leases and the other coordination keys
  (lib/leases.py: who works on which run, a model's open streams, sandbox jobs). Losing a key
  here loses or doubles work: ``noeviction`` and AOF.
- **results**: Celery's result backend (a sandbox job's answer to the task that waits for it).
- **channels**: the channel layer's pub/sub (a comma list of servers: channels_redis shards the
  groups over them). Bandwidth; nothing stored.
- **cache**: Django's cache (rate limits). TTL eviction (``volatile-lru``), no persistence.
- **events**: the runs' event streams (runs/events.py), replayed by viewers. TTL eviction.

Each one is either a plain URL (``redis://``, ``rediss://``, ``unix://``) or a Sentinel URL, in the
form the redis-sentinel-url package made common::

    redis+sentinel://[:password@]host:port[,host:port...]/<master>[/<db>][?sentinel_password=...]

The password is the primary's; ``sentinel_password`` is the sentinels' own, when they require
one. Every client then asks the sentinels where the primary is, and asks again after losing it:
Celery (kombu's ``sentinel://`` transport and result backend), channels_redis (its Sentinel host
dicts), Django's cache (``SentinelPool`` below) and redis-py (``client``: ``Sentinel.master_for``).

Redis Cluster is not supported: Celery's Redis transport does not work on one (celery/celery#2852)
and one Cluster would again mix the broker's durability with the events' churn; give each role
its own primary with a replica and Sentinel (or a managed service that fails over) instead.

No Django here (the model client uses this without it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

SCHEME = "redis+sentinel"
# A client rides through a lost connection by trying again: over a Sentinel failover (the
# sentinels' ``down-after-milliseconds`` plus the election: a few seconds with the settings in
# deploy/README.md) for a Sentinel target, briefly for a plain server (a restart).
FAILOVER_RETRIES = 20  # backoff 0.05 s doubling to 2 s: about 30 s in all
PLAIN_RETRIES = 3
SOCKET_TIMEOUT_S = 5.0


class RedisURLError(ValueError):
    """A role's URL is malformed; the message says how, without its password."""


@dataclass(frozen=True)
class SentinelTarget:
    """A primary that sentinels watch: where they are, its name, its database and password."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    password: str | None = None
    sentinel_password: str | None = None


def is_sentinel(url: str) -> bool:
    return url.startswith(SCHEME + "://")


def parse_sentinel(url: str) -> SentinelTarget:
    """``redis+sentinel://[:pw@]h1:p1,h2:p2/master[/db][?sentinel_password=...]``."""
    if not is_sentinel(url):
        raise RedisURLError(f"not a {SCHEME}:// URL")
    rest = url[len(SCHEME) + 3 :]
    netloc, _, path_query = rest.partition("/")
    path, _, query = path_query.partition("?")
    password: str | None = None
    if "@" in netloc:
        auth, _, netloc = netloc.rpartition("@")
        password = unquote(auth.partition(":")[2]) or None
    sentinels: list[tuple[str, int]] = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise RedisURLError(
                f"{SCHEME}:// URL: each sentinel must be host:port, separated by commas"
            )
        sentinels.append((host.strip("[]"), int(port)))
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise RedisURLError(f"{SCHEME}:// URL: the master's name is missing (.../<name>[/<db>])")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise RedisURLError(f"{SCHEME}:// URL: the path must be /<master name>[/<db number>]")
    options = parse_qs(query)
    unknown = set(options) - {"sentinel_password"}
    if unknown:
        raise RedisURLError(f"{SCHEME}:// URL: unknown option(s) {', '.join(sorted(unknown))}")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        master=unquote(segments[0]),
        db=int(segments[1]) if len(segments) == 2 else 0,
        password=password,
        sentinel_password=next(iter(options.get("sentinel_password", [])), None),
    )


def check(url: str, what: str) -> None:
    """Raise ``RedisURLError`` naming the setting ``what`` when ``url`` is not one we can use."""
    if is_sentinel(url):
        try:
            parse_sentinel(url)
        except RedisURLError as exc:
            raise RedisURLError(f"{what}: {exc}") from None
        return
    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "unix"}:
        raise RedisURLError(
            f"{what} must be redis://, rediss://, unix:// or {SCHEME}:// (Redis Cluster is not "
            "supported: see deploy/README.md)"
        )


def split_urls(text: str) -> list[str]:
    """A comma list of role URLs, where a Sentinel URL's own commas (between its sentinels) do
    not split it: a piece without ``://`` belongs to the URL before it."""
    urls: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if "://" not in piece and urls:
            urls[-1] += "," + piece
        else:
            urls.append(piece)
    return urls


def _retry(url: str) -> Retry:
    retries = FAILOVER_RETRIES if is_sentinel(url) else PLAIN_RETRIES
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), retries)


def retry_for(url: str) -> Retry:
    """The retry policy of the role at ``url``'s clients, for an idempotent operation of
    several commands to go through a failover whole (``Retry.call_with_retry``)."""
    return _retry(url)


_RETRY_ON = [RedisConnectionError, RedisTimeoutError]


class FollowingConnection(SentinelManagedConnection):
    """A connection to the primary that asks the sentinels where it is whenever it connects.

    redis-py 8.2's own (``SentinelManagedConnection``) does so only from ``connect()``: one that
    breaks in the middle of a command (a pipeline sent as the primary dies) reconnects from
    ``send_packed_command`` through ``connect_check_health``, to the address it had, the dead
    primary's, until its retries run out (about 30 s here) and the command fails
    (redis/redis-py#3874, open; seen in tests/lib/test_redis_roles.py's failover test, a
    publish failing with "Connection refused" to the old primary)."""

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self._sock and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(
            check_health=check_health, retry_socket_connect=retry_socket_connect
        )


def _sentinel(target: SentinelTarget) -> Sentinel:
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SOCKET_TIMEOUT_S,
    }
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    return Sentinel(
        list(target.sentinels),
        sentinel_kwargs=sentinel_kwargs,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
    )


def new_client(
    url: str, *, socket_timeout: float = SOCKET_TIMEOUT_S, retry: bool = True
) -> redis.Redis:
    """A redis-py client of the role at ``url`` that retries over lost connections (and, through
    Sentinel, finds the new primary after a failover); ``retry=False``: one try (a health
    check)."""
    retrying = _retry(url) if retry else Retry(ExponentialBackoff(), 0)
    if is_sentinel(url):
        target = parse_sentinel(url)
        return _sentinel(target).master_for(
            target.master,
            db=target.db,
            password=target.password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=retrying,
            retry_on_error=_RETRY_ON,
            connection_class=FollowingConnection,
        )
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=retrying,
        retry_on_error=_RETRY_ON,
    )


_clients: dict[tuple[int, str], redis.Redis] = {}
_lock = threading.Lock()


def client(url: str) -> redis.Redis:
    """This process's one client (a thread-safe connection pool) of the role at ``url``; a
    forked child gets its own."""
    import os

    key = (os.getpid(), url)
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = new_client(url)
        return found


def forget_clients() -> None:
    """Drop this process's clients (a test that moves a role to another server)."""
    with _lock:
        _clients.clear()


# -- Celery ------------------------------------------------------------------------------------


def celery_url(url: str) -> tuple[str, dict[str, Any]]:
    """The URL and transport options of the broker or the result backend at ``url``: kombu's
    spellings (``redis+socket://`` for a unix socket, ``sentinel://h:p;sentinel://h:p/db`` with
    ``master_name`` for Sentinel)."""
    if is_sentinel(url):
        target = parse_sentinel(url)
        auth = f":{_quote(target.password)}@" if target.password else ""
        hosts = ";".join(f"sentinel://{auth}{host}:{port}" for host, port in target.sentinels)
        options: dict[str, Any] = {"master_name": target.master}
        if target.sentinel_password:
            options["sentinel_kwargs"] = {"password": target.sentinel_password}
        return f"{hosts}/{target.db}", options
    if url.startswith("unix://"):
        path, _, query = url.removeprefix("unix://").partition("?")
        db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("db", "0")
        return f"redis+socket://{path}?virtual_host={db}", {}
    return url, {}


def _quote(text: str | None) -> str:
    from urllib.parse import quote

    return quote(text or "", safe="")


# -- channels_redis ----------------------------------------------------------------------------


def channels_host(url: str) -> str | dict[str, Any]:
    """One entry of channels_redis's ``hosts``: the URL, or its Sentinel dict."""
    if is_sentinel(url):
        target = parse_sentinel(url)
        host: dict[str, Any] = {
            "sentinels": [list(s) for s in target.sentinels],
            "master_name": target.master,
            "db": target.db,
        }
        if target.password:
            host["password"] = target.password
        if target.sentinel_password:
            host["sentinel_kwargs"] = {"password": target.sentinel_password}
        return host
    return url


# -- Django's cache ----------------------------------------------------------------------------


class SentinelPool(redis.ConnectionPool):
    """Django's Redis cache builds its pools with ``pool_class.from_url(LOCATION)``: this one
    answers a Sentinel URL with a pool that follows the primary (and a plain URL as redis-py
    does). Retries are the client's: Django's cache calls each command once, so a failover
    shows as a few seconds' wait, not an error page."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> redis.ConnectionPool:  # type: ignore[override]
        kwargs.setdefault("socket_timeout", SOCKET_TIMEOUT_S)
        kwargs.setdefault("socket_connect_timeout", SOCKET_TIMEOUT_S)
        kwargs.setdefault("retry", _retry(url))
        kwargs.setdefault("retry_on_error", _RETRY_ON)
        if not is_sentinel(url):
            return redis.ConnectionPool.from_url(url, **kwargs)
        target = parse_sentinel(url)
        return SentinelConnectionPool(
            target.master,
            _sentinel(target),
            db=target.db,
            password=target.password,
            connection_class=FollowingConnection,
            **kwargs,
        )


def describe(url: str) -> str:
    """The URL without its password (for logs and the health page's staff view)."""
    if is_sentinel(url):
        target = parse_sentinel(url)
        hosts = ",".join(f"{h}:{p}" for h, p in target.sentinels)
        return f"{SCHEME}://{hosts}/{target.master}/{target.db}"
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=f"***@{netloc}").geturl()
    return url
