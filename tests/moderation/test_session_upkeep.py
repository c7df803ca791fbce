"""Expired sessions are deleted once a day (Celery beat), as `clearsessions` would; live ones,
and the accounts' other sessions, are kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from playground.celery import app
from playground.moderation.models import AccountSession
from playground.moderation.tasks import clear_expired_sessions
from tests.factories import UserFactory


@pytest.mark.django_db
def test_expired_sessions_are_deleted_and_live_ones_kept() -> None:
    user = UserFactory()
    live, stale = Client(), Client()
    live.force_login(user)
    stale.force_login(user)
    stale_key = stale.session.session_key
    AccountSession.objects.filter(session_key=stale_key).update(
        expire_date=timezone.now() - timedelta(days=1)
    )
    assert AccountSession.objects.filter(account_id=user.pk).count() == 2
    assert clear_expired_sessions() == 1
    assert list(AccountSession.objects.values_list("account_id", flat=True)) == [user.pk]
    assert not AccountSession.objects.filter(session_key=stale_key).exists()
    assert clear_expired_sessions() == 0


def test_beat_sends_it_every_day_to_a_queue_a_worker_takes() -> None:
    entry = app.conf.beat_schedule["clear-expired-sessions"]
    assert entry["task"] == "playground.moderation.tasks.clear_expired_sessions"
    assert entry["schedule"] == 86400.0
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "default"
