"""When an anonymous visitor logs in or signs up, their programs move to the account; and the
signal that programs' text changed in bulk."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import Signal, receiver
from django.http import HttpRequest

from playground.programs.models import Program

ANON_TOKEN_KEY = "anon_owner"  # noqa: S105 - a session key name, not a secret

# Sent with ``program_ids`` after a bulk update (a library re-import) changed programs' text,
# which sends no post_save: whoever keeps something derived from the text (the classroom's item
# keys) brings it up to date, without programs importing the rooms above it.
sources_changed = Signal()


@receiver(user_logged_in)
def claim_anonymous_programs(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    token = request.session.get(ANON_TOKEN_KEY) if request is not None else None
    if token:
        Program.objects.filter(owner__isnull=True, anon_owner=token).update(
            owner=user, anon_owner=""
        )
