"""People and programs for the moderation tests."""

from __future__ import annotations

import secrets
from typing import Any

from django.test import Client

from tests.factories import ProgramFactory, UserFactory


def fresh_ip() -> str:
    """An address no other test counted (the rate-limit counters live in the shared Redis)."""
    return f"198.51.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def client_for(user: Any = None, **extra: Any) -> Client:
    client = Client(REMOTE_ADDR=fresh_ip(), **extra)
    if user is not None:
        client.force_login(user)
    return client


def staff(**fields: Any) -> Any:
    return UserFactory(is_staff=True, **fields)


def public_program(**fields: Any) -> Any:
    return ProgramFactory(is_public=True, **fields)
