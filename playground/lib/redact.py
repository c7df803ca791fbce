"""Passwords out of Django's error pages and reports (DEFAULT_EXCEPTION_REPORTER_FILTER).

Django hides settings whose *names* look secret (KEY, PASS, TOKEN...). This project's secrets
also travel inside URLs whose names do not: DATABASE_URL, REDIS_URL, CELERY_BROKER_URL,
CELERY_RESULT_BACKEND, CACHES' LOCATION, CHANNEL_LAYERS' hosts, and a model's api_key inside
PLAYGROUND_MODELS (request.META holds the environment under a WSGI server). So every string is
also searched for a URL's password or a ``password=``/``api_key:`` pair, and only that part is
replaced: the host stays visible, which is what a developer debugging a connection needs.
"""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

SUBSTITUTE = SafeExceptionReporterFilter.cleansed_substitute
# scheme://user:PASSWORD@host (user may be empty: redis://:PASSWORD@host).
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/@\s:]*:)([^@\s/]+)(?=@)", re.I)
# password=..., "api_key": "...", 'token': '...' (conninfo strings, query strings, JSON, reprs).
_PAIR = re.compile(
    r"""(\b(?:[a-z]+_)?(?:password|passwd|pwd|api_?key|access_?token|token|secret)["']?\s*[=:]\s*["']?)"""
    r"""([^\s"'&,;}]+)""",
    re.I,
)


def redact(text: str) -> str:
    """``text`` with every password or key found in it replaced by stars."""
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + SUBSTITUTE, text)
    return _PAIR.sub(lambda m: m.group(1) + SUBSTITUTE, text)


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: passwords inside any string of a setting, of request.META, and of
    a traceback's local variables are replaced (also when DEBUG is on)."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)  # recurses into dicts/lists through us
        return redact(cleansed) if isinstance(cleansed, str) else cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            variables.append((name, _redacted_value(value)))
        return variables


def _redacted_value(value: Any) -> Any:
    """The value itself when its text holds no secret, else its redacted repr (a string)."""
    if isinstance(value, str):
        return redact(value)
    try:
        text = repr(value)
    except Exception:  # the debug page shows such a value as unprintable anyway
        return value
    cleaned = redact(text)
    return value if cleaned == text else cleaned
