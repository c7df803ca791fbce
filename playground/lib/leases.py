"""Leases in Redis that expire when their holder dies: counted places shared by every process on
every host.

A lease is a holder's id in a Redis sorted set, scored by when it expires. Taking one is a Lua
script that first drops the expired members of each set, then checks every set's cap and adds
the holder to all of them, or to none: two processes asking for the last place at once cannot
both get it. A holder that lives refreshes its lease (``Held`` does it from a thread); one that
dies (a SIGKILL, an out-of-memory kill, a lost host) stops refreshing and its place is free
again ``ttl_s`` later, with no one to clean up after it.

Used for: one worker at a time on a part of a run or an evaluation (cap 1, ``runs.pipeline``,
``benchmarks.execution``), a model's concurrent streams across every worker (cap
``max_concurrency``, ``llm.client``) and on each of its replicas (``join``, ``llm.replicas``),
and a requester's open live views (``streaming.leases``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

import redis

from playground.lib import redis_roles

log = logging.getLogger(__name__)

# KEYS: the sets; ARGV: now, expiry, holder, then one cap per key. Returns 0 when the lease is
# taken (or the holder already had it: then it is refreshed), else the 1-based number of the
# first set that is full.
_TAKE = """
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local full = redis.call('ZCARD', key) >= tonumber(ARGV[3 + i])
  if full and not redis.call('ZSCORE', key, ARGV[3]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[3])
  redis.call('EXPIRE', key, math.ceil(ARGV[2] - ARGV[1]) + 1)
end
return 0
"""
# KEYS: the sets; ARGV: now, expiry, holder. Pushes the expiry on where the holder still has its
# place (an expired one is not taken back: someone else may hold it by now); returns how many.
_REFRESH = """
local held = 0
for _, key in ipairs(KEYS) do
  local score = redis.call('ZSCORE', key, ARGV[3])
  if score and tonumber(score) > tonumber(ARGV[1]) then
    redis.call('ZADD', key, ARGV[2], ARGV[3])
    redis.call('EXPIRE', key, math.ceil(ARGV[2] - ARGV[1]) + 1)
    held = held + 1
  end
end
return held
"""


# Where the leases live: set once per process by ``configure`` (the llm app does it as Django
# starts, from settings), so that this module, which the model client uses, needs no Django.
_CONFIG: dict[str, Callable[[], str]] = {}


def configure(*, redis_url: Callable[[], str], namespace: Callable[[], str]) -> None:
    """``redis_url()``: the site's Redis; ``namespace()``: what keeps two sites (or a test
    database and a real one) sharing one Redis apart. Read when used, not now."""
    _CONFIG.update(redis_url=redis_url, namespace=namespace)


def configured() -> bool:
    """Whether leases can be used in this process (a script without Django cannot)."""
    return bool(_CONFIG)


def redis_client() -> redis.Redis:
    """This process's connection pool to the Redis that holds the leases (the broker's role:
    lib/redis_roles.py), thread-safe, riding through a failover."""
    if not _CONFIG:
        raise RuntimeError("leases.configure() was not called in this process")
    return redis_roles.client(_CONFIG["redis_url"]())


def prefix() -> str:
    """The site's namespace in Redis: ``playground:<database name>``."""
    if not _CONFIG:
        raise RuntimeError("leases.configure() was not called in this process")
    namespace = "".join(c for c in _CONFIG["namespace"]() if c.isalnum())[:30]
    return f"playground:{namespace}"


def new_holder() -> str:
    return secrets.token_hex(8)


def take(keys: Sequence[str], caps: Sequence[int], holder: str, ttl_s: float) -> int:
    """Take a place in every set of ``keys`` (each at most ``caps[i]`` live holders): 0 when
    taken, else the 1-based number of the first set that is full (nothing taken)."""
    now = time.time()
    return int(redis_client().eval(_TAKE, len(keys), *keys, now, now + ttl_s, holder, *caps))


def refresh(keys: Sequence[str], holder: str, ttl_s: float) -> int:
    """Push the holder's expiry on in every set where it still holds a place; how many."""
    now = time.time()
    return int(redis_client().eval(_REFRESH, len(keys), *keys, now, now + ttl_s, holder))


def release(keys: Sequence[str], holder: str) -> None:
    pipe = redis_client().pipeline()
    for key in keys:
        pipe.zrem(key, holder)
    pipe.execute()


def live(key: str) -> int:
    """How many holders have a place in ``key`` now."""
    return int(redis_client().zcount(key, time.time(), "+inf"))


def live_many(keys: Sequence[str]) -> list[int]:
    """``live`` of each key, in one round trip."""
    if not keys:
        return []
    now = time.time()
    pipe = redis_client().pipeline(transaction=False)
    for key in keys:
        pipe.zcount(key, now, "+inf")
    return [int(n) for n in pipe.execute()]


class Held:
    """A lease held for a block of work: taken on entry (``taken`` says whether) or by ``wait``,
    refreshed every ``ttl_s / 3`` from a daemon thread while held, released on exit or by
    ``release``. The thread only talks to Redis (no database connection), so a thousand held
    leases cost a thousand small writes every few seconds and nothing else."""

    def __init__(self, keys: Sequence[str], caps: Sequence[int], ttl_s: float) -> None:
        self.keys, self.caps, self.ttl_s = list(keys), list(caps), ttl_s
        self.holder = new_holder()
        self.taken = False
        self.full = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self) -> bool:
        """One try: whether the lease is held now."""
        if not self.taken:
            self.full = take(self.keys, self.caps, self.holder, self.ttl_s)
            self.taken = self.full == 0
            if self.taken:
                self._thread = threading.Thread(target=self._beat, daemon=True, name="lease")
                self._thread.start()
        return self.taken

    def join(self, key: str, cap: int) -> bool:
        """Also take a place in ``key`` (at most ``cap`` holders) while the lease is held: it is
        refreshed and released with the others. Whether taken (nothing changes if not)."""
        if not self.taken or key in self.keys:
            return key in self.keys
        if take([key], [cap], self.holder, self.ttl_s):
            return False
        self.keys = [*self.keys, key]  # rebound, not mutated: the beat thread reads it
        self.caps = [*self.caps, cap]
        return True

    def leave(self, key: str) -> None:
        """Give back the place in ``key`` taken by ``join``; the rest stays held."""
        if key not in self.keys[1:]:
            return
        at = self.keys.index(key)
        self.keys = self.keys[:at] + self.keys[at + 1 :]
        self.caps = self.caps[:at] + self.caps[at + 1 :]
        try:
            release([key], self.holder)
        except redis.RedisError as error:  # it expires by itself within ttl_s
            log.warning("could not release lease %s on %s: %s", self.holder, key, error)

    def wait(self, timeout_s: float, cancel: threading.Event | None = None) -> bool:
        """Try until the lease is taken (True), ``timeout_s`` passes or ``cancel`` is set
        (False): every 50 ms at first, backing off to 1 s, with jitter so that many waiters do
        not ask in step."""
        deadline = time.monotonic() + timeout_s
        pause = 0.05
        while not self.take():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            nap = min(left, pause * (0.5 + secrets.randbelow(1000) / 1000))
            if cancel is None:
                time.sleep(nap)
            elif cancel.wait(nap):
                return False
            pause = min(1.0, pause * 2)
        return True

    def __enter__(self) -> Held:
        self.take()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not refresh(self.keys, self.holder, self.ttl_s):
                    log.warning("lease %s on %s lapsed while held", self.holder, self.keys)
            except redis.RedisError as exc:  # the next beat tries again; the lease lasts ttl_s
                log.warning("could not refresh lease %s: %s", self.holder, exc)

    def release(self) -> None:
        self._stop.set()
        if self.taken:
            self.taken = False
            try:
                release(self.keys, self.holder)
            except redis.RedisError as error:  # it expires by itself within ttl_s
                log.warning("could not release lease %s: %s", self.holder, error)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
