"""Each Redis role's URL, plain or through Sentinel, and what each client makes of it; then a real
failover under the clients (Debian's redis-server and redis-sentinel, tests/redis_ha.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
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
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            for n in range(300):
                published.append(events.publish(key, "token", text=f"t{n}")["seq"])
                time.sleep(0.01)
        except BaseException as exc:  # the test fails on it below
            errors.append(exc)

    writer = threading.Thread(target=publish)
    writer.start()
    while len(published) < 50:
        time.sleep(0.01)
    t0 = time.monotonic()
    group.kill_primary()
    writer.join(60)
    took = time.monotonic() - t0
    try:
        assert not errors, errors
        assert group.primary() == group.replica_port
        assert published == list(range(1, 301))
        stored = events.published(key)
        assert [e["seq"] for e in stored] == published
        assert [e["text"] for e in stored] == [f"t{n}" for n in range(300)]
        print(f"300 events across a failover: the last one published {took:.1f} s after the kill")
    finally:
        redis_roles.forget_clients()
