"""Each Redis role's URL, plain or through Sentinel, and what each client makes of it; then a real
failover under the clients (Debian's redis-server and redis-sentinel, tests/redis_ha.py)."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.cache.backends.redis import RedisCache
from pytest_django.fixtures import Settings
from redis.sentinel import SentinelConnectionPool

from playground.lib import redis_roles
from playground.runs import events
from tests.redis_ha import SentinelGroup, sentinel_group

URL = "redis+sentinel://:p%40ss@s1.internal:26379,s2.internal:26380/main/2?sentinel_password=spw"


def test_a_sentinel_url_names_the_sentinels_the_primary_and_its_database() -> None:
    target = redis_roles.parse_sentinel(URL)
    assert target.sentinels == (("s1.internal", 26379), ("s2.internal", 26380))
    assert (target.master, target.db) == ("main", 2)
    assert (target.password, target.sentinel_password) == ("p@ss", "spw")
    assert (
        redis_roles.describe(URL) == "redis+sentinel://s1.internal:26379,s2.internal:26380/main/2"
    )


def test_a_list_of_role_urls_keeps_each_sentinel_url_whole() -> None:
    text = "redis://a:6379/0, redis+sentinel://s1:26379,s2:26379/main/1,redis://b:6379/0"
    assert redis_roles.split_urls(text) == [
        "redis://a:6379/0", "redis+sentinel://s1:26379,s2:26379/main/1", "redis://b:6379/0",
    ]  # fmt: skip
    assert redis_roles.split_urls("") == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://s1:26379", "the master's name is missing"),
        ("redis+sentinel://s1/main", "each sentinel must be host:port"),
        ("redis+sentinel://s1:26379/main/x", "/<master name>[/<db number>]"),
        ("redis+sentinel://s1:26379/main?pasword=x", "unknown option(s) pasword"),
        ("redis-cluster://r1:7000", "Redis Cluster is not supported"),
        ("http://r1:6379", "must be redis://"),
    ],
)
def test_a_malformed_url_is_refused_with_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(redis_roles.RedisURLError) as refused:
        redis_roles.check(url, "PLAYGROUND_REDIS_EVENTS_URL")
    assert says in str(refused.value)
    assert str(refused.value).startswith("PLAYGROUND_REDIS_EVENTS_URL")


def test_each_client_gets_the_sentinels_in_its_own_spelling() -> None:
    # Celery (kombu): one sentinel:// per sentinel, the master in the transport options.
    url, options = redis_roles.celery_url(URL)
    assert url == "sentinel://:p%40ss@s1.internal:26379;sentinel://:p%40ss@s2.internal:26380/2"
    assert options == {"master_name": "main", "sentinel_kwargs": {"password": "spw"}}
    # channels_redis: its Sentinel host dict.
    assert redis_roles.channels_host(URL) == {
        "sentinels": [["s1.internal", 26379], ["s2.internal", 26380]],
        "master_name": "main", "db": 2, "password": "p@ss",
        "sentinel_kwargs": {"password": "spw"},
    }  # fmt: skip
    # Django's cache: a pool that follows the primary.
    cache = RedisCache(
        [URL], {"OPTIONS": {"pool_class": "playground.lib.redis_roles.SentinelPool"}}
    )
    pool = cache._cache._get_connection_pool(write=True)
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "main"
    # Plain URLs stay as they were (the embedded server's unix socket in kombu's spelling).
    assert redis_roles.celery_url("unix:///v/redis.sock?db=3") == (
        "redis+socket:///v/redis.sock?virtual_host=3",
        {},
    )
    assert redis_roles.channels_host("redis://r:6379/0") == "redis://r:6379/0"


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    with sentinel_group(Path(tmp_path_factory.mktemp("sentinel"))) as started:
        yield started


@pytest.mark.full_only  # `make test-full` (about 20 s); make test kills a primary in tests/fault
@pytest.mark.django_db
def test_events_published_across_a_failover_keep_every_number_once(
    group: SentinelGroup, settings: Settings
) -> None:
    """A run's events published while the primary is killed: the publisher waits for the new
    primary (no error), every event is stored once, and the numbers run on without a gap or a
    repeat, because each event was on the replica before it was announced."""
    settings.REDIS_ROLES = {**settings.REDIS_ROLES, "events": group.url}
    redis_roles.forget_clients()
    key = "run-failover-test"
    published: list[int] = []
    errors: list[str] = []

    def publish() -> None:
        try:
            for n in range(300):
                published.append(events.publish(key, "token", text=f"t{n}")["seq"])
                time.sleep(0.01)
        except BaseException:  # the test fails on it below, with where it was raised
            errors.append(traceback.format_exc())

    writer = threading.Thread(target=publish)
    writer.start()
    while len(published) < 50:
        time.sleep(0.01)
    t0 = time.monotonic()
    group.kill_primary()
    writer.join(60)
    took = time.monotonic() - t0
    try:
        assert not errors, errors[0]
        assert group.primary() == group.replica_port
        assert published == list(range(1, 301))
        stored = events.published(key)
        assert [e["seq"] for e in stored] == published
        assert [e["text"] for e in stored] == [f"t{n}" for n in range(300)]
        print(f"300 events across a failover: the last one published {took:.1f} s after the kill")
    finally:
        redis_roles.forget_clients()


def test_a_replica_that_lags_is_waited_for_again_and_one_that_hangs_is_not() -> None:
    """The events' replica wait (runs/events.py) on its own: a wait no replica acknowledged is
    made again while a replica is connected (before, the event went out unreplicated and the
    waits were off for 10 s: a window where a dying primary takes events with it); no replica
    connected, or one that misses REPLICA_MISSES waits in a row, turns them off for
    REPLICA_RETRY_S."""
    replicas = events._Replicas()
    assert replicas.wait_again(lambda: 1)  # late, a loaded host
    replicas.acknowledged()
    for _ in range(events.REPLICA_MISSES - 1):
        assert replicas.wait_again(lambda: 1)
        assert replicas.wanted()
    assert not replicas.wait_again(lambda: 1)  # the fifth miss in a row: hung, or far behind
    assert not replicas.wanted()

    alone = events._Replicas()
    assert not alone.wait_again(lambda: 0)  # no replica to wait for
    assert not alone.wanted()


@pytest.mark.full_only  # `make test-full` (about 10 s)
@pytest.mark.django_db
def test_events_wait_for_a_paused_replica_and_go_on_without_a_hung_one(
    tmp_path: Path, settings: Settings
) -> None:
    """Against Debian's redis-server: with the replica paused for 0.5 s (more than two waits),
    the events published meanwhile wait for it (each is on the replica when it goes out); paused
    for good, publishing goes on after REPLICA_MISSES waits, without waiting again for
    REPLICA_RETRY_S."""
    with sentinel_group(tmp_path) as fresh:
        settings.REDIS_ROLES = {**settings.REDIS_ROLES, "events": fresh.url}
        redis_roles.forget_clients()
        events._replicas = events._Replicas()
        replica = redis.Redis(port=fresh.replica_port)
        paused = fresh.procs["replica"].pid
        key = "run-replica-wait-test"
        try:
            events.publish(key, "token", text="t0")
            os.kill(paused, signal.SIGSTOP)
            threading.Timer(0.5, os.kill, (paused, signal.SIGCONT)).start()
            t0 = time.monotonic()
            for n in range(1, 4):
                events.publish(key, "token", text=f"t{n}")
            waited = time.monotonic() - t0
            stream = f"playground:{{{key}}}:events"
            assert replica.xlen(stream) == 4  # every one replicated before it was announced
            assert waited > 0.4, waited

            os.kill(paused, signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                for n in range(4, 4 + events.REPLICA_MISSES + 20):
                    events.publish(key, "token", text=f"t{n}")
                took = time.monotonic() - t0
            finally:
                os.kill(paused, signal.SIGCONT)
            # REPLICA_MISSES waits of REPLICA_WAIT_MS, then none: 20 events more in no time.
            assert took < events.REPLICA_MISSES * events.REPLICA_WAIT_MS / 1000 + 1.0, took
            assert not events._replicas.wanted()
        finally:
            events._replicas = events._Replicas()
            redis_roles.forget_clients()


@pytest.mark.full_only  # `make test-full` (about 8 s)
def test_a_connection_that_reconnects_in_a_command_finds_the_new_primary(
    tmp_path: Path,
) -> None:
    """redis/redis-py#3874: a connection that drops in the middle of a command (the retry
    disconnects it, then sends again) reconnected to the old primary's address until its
    retries ran out (about 30 s) and the command failed; redis_roles.FollowingConnection asks
    the sentinels first, and the command goes to the new primary at once."""
    with sentinel_group(tmp_path) as fresh:
        client = redis_roles.new_client(fresh.url)
        client.set("k", "before")
        connection = client.connection_pool.get_connection()
        try:
            connection.send_command("PING")
            assert connection.read_response() in (b"PONG", "PONG")
            fresh.kill_primary()
            deadline = time.monotonic() + 30
            while fresh.primary() != fresh.replica_port:
                assert time.monotonic() < deadline, "the sentinels did not fail over"
                time.sleep(0.1)
            # What a command's retry does after a broken send: disconnect, send again.
            connection.disconnect()
            t0 = time.monotonic()
            connection.send_command("ROLE")
            role = connection.read_response()
            took = time.monotonic() - t0
        finally:
            client.connection_pool.release(connection)
        assert role[0] in (b"master", "master")
        assert connection.port == fresh.replica_port
        assert took < 2, took
        assert client.get("k") == b"before"  # replicated before the kill
