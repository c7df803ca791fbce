"""The mail backend comes from the environment: printed on the console by default, SMTP from
PLAYGROUND_EMAIL_URL on a server (django-environ's email_url), the sender from
PLAYGROUND_EMAIL_FROM. Each case is a fresh interpreter, as a server process starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from playground.lib import paths

_PRINT = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k) for k in ('EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', "
    "'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', 'EMAIL_USE_TLS', 'EMAIL_USE_SSL', "
    "'DEFAULT_FROM_EMAIL', 'EMAIL_TIMEOUT')}))"
)


def _settings(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_EMAIL")}
    result = subprocess.run(
        [sys.executable, "-c", _PRINT],
        env={**clean, "DJANGO_SETTINGS_MODULE": "playground.settings", **env},
        cwd=paths.REPO_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_development_prints_mail_on_the_console() -> None:
    got = _settings()
    assert got["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert got["DEFAULT_FROM_EMAIL"] == "playground@localhost"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp+tls://mailer:p%40ss%3Aword@mail.example.org:587",
            {"EMAIL_HOST": "mail.example.org", "EMAIL_PORT": 587, "EMAIL_HOST_USER": "mailer",
             "EMAIL_HOST_PASSWORD": "p@ss:word", "EMAIL_USE_TLS": True, "EMAIL_USE_SSL": False},
        ),
        (
            "smtp+ssl://mailer:secret@mail.example.org:465",
            {"EMAIL_PORT": 465, "EMAIL_USE_TLS": False, "EMAIL_USE_SSL": True},
        ),
    ],
)  # fmt: skip
def test_a_server_sends_through_smtp(url: str, expected: dict[str, object]) -> None:
    got = _settings(PLAYGROUND_EMAIL_URL=url, PLAYGROUND_EMAIL_FROM="Playground <play@uni.edu>")
    assert got["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert got["DEFAULT_FROM_EMAIL"] == "Playground <play@uni.edu>"
    assert {k: got[k] for k in expected} == expected
    assert got["EMAIL_TIMEOUT"] == 20
