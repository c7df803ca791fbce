"""With PLAYGROUND_DEBUG=true, Django's error page lists every setting, request.META and each
frame's variables. No password may appear there: not in the URLs of the database, Redis, Celery,
the cache or the channel layer, not in a model's api_key, not in a connection string a frame
holds (finding L3's second half)."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from pytest_django.fixtures import Settings

from playground.lib.redact import redact

SECRETS = [f"SECRET-{i}-x9" for i in range(10)]


def _boom(request: HttpRequest) -> HttpResponse:
    dsn = f"postgresql://playground:{SECRETS[6]}@db.internal:5432/playground"
    conninfo = f"host=db.internal user=playground password={SECRETS[7]}"
    raise RuntimeError(f"cannot connect to {dsn.split('@')[1]} ({len(conninfo)})")


urlpatterns = [path("boom/", _boom)]


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_the_debug_page_shows_no_password(settings: Settings) -> None:
    settings.DEBUG = True
    settings.DATABASE_URL = f"postgresql://playground:{SECRETS[0]}@db.internal:5432/playground"
    settings.REDIS_URL = f"redis://:{SECRETS[1]}@redis.internal:6379/0"
    settings.REDIS_ROLES = {
        "events": f"redis+sentinel://:{SECRETS[8]}@s1.internal:26379,s2.internal:26379/events/0"
        f"?sentinel_password={SECRETS[9]}",
    }
    settings.CELERY_BROKER_URL = f"redis://default:{SECRETS[2]}@redis.internal:6379/0"
    settings.CELERY_RESULT_BACKEND = f"rediss://:{SECRETS[3]}@redis.internal:6380/1"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"unix://:{SECRETS[4]}@/var/run/redis.sock?db=0",
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL]},
        }
    }
    client = Client(raise_request_exception=False)
    # Under a WSGI server request.META holds the process environment, models' keys included.
    models = '[{"name": "gpt", "base_url": "https://api.example/v1", "api_key": "%s"}]'
    response = client.get("/boom/", PLAYGROUND_MODELS=models % SECRETS[5])
    page = response.content.decode()
    assert response.status_code == 500
    for shown in (
        "RuntimeError",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "CHANNEL_LAYERS",
        "REDIS_ROLES",
    ):
        assert shown in page  # the page did list the settings
    assert "db.internal" in page  # the hosts stay visible for whoever debugs a connection
    assert "PLAYGROUND_MODELS" in page
    assert "conninfo" in page  # the frame's variables are listed
    for secret in SECRETS:
        assert secret not in page, secret


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:********************@host:6379/0"),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:********************@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),  # no password: nothing to hide
        ("https://h/v1?x=1&api_key=abc&y=2", "https://h/v1?x=1&api_key=********************&y=2"),
        ("host=h password=pw port=5432", "host=h password=******************** port=5432"),
        ("{'api_key': 'sk-1'}", "{'api_key': '********************'}"),
        ("STATIC_URL = static/", "STATIC_URL = static/"),
        (
            "redis+sentinel://:pw@h1:26379,h2:26379/main/0?sentinel_password=spw",
            "redis+sentinel://:********************@h1:26379,h2:26379/main/0"
            "?sentinel_password=********************",
        ),
        (
            "{'sentinels': [['h', 1]], 'password': 'pw'}",
            "{'sentinels': [['h', 1]], 'password': '********************'}",
        ),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown
