"""How many runs a requester may start per minute (django-ratelimit, counters in Redis)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited


def run_rate(group: str, request: HttpRequest) -> str:
    if request.user.is_authenticated:
        return str(settings.PLAYGROUND_RUN_RATE_USER)
    return str(settings.PLAYGROUND_RUN_RATE_ANON)


def _key(group: str, request: HttpRequest) -> str:
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', '')}"


def may_start_run(request: HttpRequest) -> bool:
    """Count one attempt; False once the requester is over their rate."""
    return not is_ratelimited(
        request, group="start-run", key=_key, rate=run_rate, method="POST", increment=True
    )
