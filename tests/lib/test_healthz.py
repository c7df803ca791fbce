"""/healthz reports the real state of PostgreSQL and Redis: ok/down to anyone, which part and why
only to staff and in the log (finding L2: error texts name hosts, sockets and users). /livez
answers as long as the process does, whatever they do (a liveness probe must not restart every
web process when the database blinks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from playground import views
from playground.lib import paths
from playground.local_services import EmbeddedRedis
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real Redis of the test's own, so it can be stopped without disturbing the suite."""
    base = Path(tmp_path_factory.mktemp("redis", numbered=True))
    redis = EmbeddedRedis(base)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    return client


def test_healthy_when_database_and_redis_answer(client: Client, staff_client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    body = staff_client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["redis"]["ok"]


def test_stopped_redis_is_reported_as_503(
    client: Client,
    staff_client: Client,
    user_client: Client,
    settings: Settings,
    own_redis: EmbeddedRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = paths.embedded_redis_url(own_redis.base)
    settings.REDIS_ROLES = dict.fromkeys(settings.REDIS_ROLES, url)
    settings.PLAYGROUND_REDIS_CHANNELS_URLS = [url]
    assert client.get("/healthz").status_code == 200

    own_redis.stop()

    # Anyone, signed in or not: only that the site is down.
    for visitor in (client, user_client):
        response = visitor.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "down"}
        assert str(own_redis.base) not in response.content.decode()
    # Staff: which part and why; the log has it too.
    response = staff_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["redis"]
    assert body["checks"]["database"]["ok"]
    assert "ConnectionError" in body["checks"]["redis"]["error"]
    assert "healthz: redis is down: ConnectionError" in caplog.text


def test_liveness_asks_neither_redis_nor_the_database(
    client: Client,
    settings: Settings,
    own_redis: EmbeddedRedis,
    django_assert_num_queries: Any,
) -> None:
    url = paths.embedded_redis_url(own_redis.base)
    settings.REDIS_ROLES = dict.fromkeys(settings.REDIS_ROLES, url)
    settings.PLAYGROUND_REDIS_CHANNELS_URLS = [url]
    own_redis.stop()
    assert client.get("/healthz").status_code == 503  # not ready
    with django_assert_num_queries(0):
        response = client.get("/livez")
    assert response.status_code == 200  # but alive
    assert response.json() == {"status": "alive"}
    assert "no-cache" in response["Cache-Control"]


def test_each_redis_role_on_its_own_server_is_checked_by_name(
    client: Client, staff_client: Client, settings: Settings, own_redis: EmbeddedRedis
) -> None:
    # The event streams on a server of their own (PLAYGROUND_REDIS_EVENTS_URL): when it stops,
    # the site is down, and staff see that it is the events' server, not the others.
    settings.REDIS_ROLES = {
        **settings.REDIS_ROLES,
        "events": paths.embedded_redis_url(own_redis.base),
    }
    body = staff_client.get("/healthz").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {
        "database",
        "redis:broker+results+cache+channels",
        "redis:events",
    }

    own_redis.stop()

    assert client.get("/healthz").status_code == 503
    body = staff_client.get("/healthz").json()
    assert body["down"] == ["redis:events"]
    assert body["checks"]["redis:broker+results+cache+channels"]["ok"]


def test_a_database_error_names_no_host_or_user_publicly(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A real server cannot be made to fail like a remote one on demand; its message is what
    # psycopg says when a remote PostgreSQL refuses a password.
    message = (
        'connection to server at "db.internal" (10.0.0.5), port 5432 failed: '
        'FATAL:  password authentication failed for user "playground"'
    )

    def refuse() -> None:
        raise psycopg.OperationalError(message)

    monkeypatch.setattr(views, "_check_database", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "down"}
    assert message in caplog.text
