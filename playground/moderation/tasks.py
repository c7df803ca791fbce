"""Periodic upkeep of the session table (Celery beat: settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from playground.moderation.sessions import SessionStore


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def clear_expired_sessions() -> int:
    """Delete sessions past their expiry (what ``manage.py clearsessions`` does): nobody can use
    them, and each is a row read by every lookup of its account. Returns how many went."""
    model = SessionStore.get_model_class()
    deleted, _ = model.objects.filter(expire_date__lt=timezone.now()).delete()
    return int(deleted)
