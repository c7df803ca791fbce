"""/healthz reports the real state of PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from playground.lib import paths
from playground.lib.embedded import EmbeddedRedis

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real Redis of the test's own, so it can be stopped without disturbing the suite."""
    base = Path(tmp_path_factory.mktemp("redis", numbered=True))
    redis = EmbeddedRedis(base)
    redis.start()
    yield redis
    redis.stop()


def test_healthy_when_database_and_redis_answer(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["redis"]["ok"]


def test_stopped_redis_is_reported_as_503(
    client: Client, settings: Settings, own_redis: EmbeddedRedis
) -> None:
    settings.REDIS_URL = paths.embedded_redis_url(own_redis.base)
    assert client.get("/healthz").status_code == 200

    own_redis.stop()

    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["redis"]
    assert body["checks"]["database"]["ok"]
    assert "ConnectionError" in body["checks"]["redis"]["error"]
