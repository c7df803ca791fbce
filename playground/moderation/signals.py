"""An account that is disabled, by the moderation pages or any other way (Django's admin, the
shell), loses every session and every API token at once (both stay ended if it is enabled
again: a stolen cookie or a leaked token must not come back with it)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from playground.accounts.tokens import revoke_all
from playground.moderation.sessions import end_sessions_of


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def end_sessions_of_disabled_accounts(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not instance.is_active:
        end_sessions_of(instance.pk)
        revoke_all(instance)
