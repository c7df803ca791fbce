"""When an anonymous visitor logs in or signs up, their programs move to the account."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from playground.programs.models import Program

ANON_TOKEN_KEY = "anon_owner"  # noqa: S105 - a session key name, not a secret


@receiver(user_logged_in)
def claim_anonymous_programs(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    token = request.session.get(ANON_TOKEN_KEY) if request is not None else None
    if token:
        Program.objects.filter(owner__isnull=True, anon_owner=token).update(
            owner=user, anon_owner=""
        )
