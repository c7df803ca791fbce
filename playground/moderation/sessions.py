"""The session engine (``SESSION_ENGINE``): Django's database sessions, each row tagged with the
account signed in on it, so that disabling an account deletes all its sessions at once."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.sessions.backends.db import SessionStore as DBStore


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls) -> Any:
        # Through the app registry, not an import: the model names this store as its own
        # (AccountSession.get_session_store_class), so an import would make a circle.
        return apps.get_model("moderation", "AccountSession")

    def create_model_instance(self, data: dict[str, Any]) -> Any:
        obj: Any = super().create_model_instance(data)
        try:
            obj.account_id = int(data["_auth_user_id"])
        except (KeyError, TypeError, ValueError):
            obj.account_id = None
        return obj


def end_sessions_of(user_id: int) -> int:
    """Delete every session of this account; returns how many there were."""
    model = SessionStore.get_model_class()
    deleted, _ = model.objects.filter(account_id=user_id).delete()
    return int(deleted)
