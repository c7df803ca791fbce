"""The upgrade that moves sessions to the account-aware store (moderation 0001) keeps everyone
signed in: sessions that have not expired are copied with their account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.migrations import migrate

AFTER = [("moderation", "0001_initial")]


@pytest.fixture
def before_moderation(transactional_db: None) -> Iterator[None]:
    """The database without the moderation app (Django's sessions table is still there)."""
    MigrationExecutor(connection).migrate([("moderation", None)])
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.usefixtures("before_moderation")
def test_live_sessions_are_copied_with_their_account() -> None:
    from django.contrib.auth.models import User
    from django.contrib.sessions.models import Session

    user = User.objects.create(username="kept")
    store = SessionStore()
    later, earlier = timezone.now() + timedelta(days=1), timezone.now() - timedelta(days=1)
    rows = {
        "signed-in-session-0000000000000000": ({"_auth_user_id": str(user.pk)}, later),
        "visitor-session-00000000000000000000": ({"anon_owner": "t"}, later),
        "expired-session-00000000000000000000": ({"_auth_user_id": str(user.pk)}, earlier),
        "garbage-session-00000000000000000000": (None, later),
    }
    for key, (data, expires) in rows.items():
        encoded = store.encode(data) if data is not None else "not a session"
        Session.objects.create(session_key=key, session_data=encoded, expire_date=expires)

    AccountSession = migrate(AFTER).get_model("moderation", "AccountSession")
    copied = dict(AccountSession.objects.values_list("session_key", "account_id"))
    assert copied == {
        "signed-in-session-0000000000000000": user.pk,
        "visitor-session-00000000000000000000": None,
        "garbage-session-00000000000000000000": None,
    }
    kept = AccountSession.objects.get(session_key="signed-in-session-0000000000000000")
    assert SessionStore().decode(kept.session_data) == {"_auth_user_id": str(user.pk)}
