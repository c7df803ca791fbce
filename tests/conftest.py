"""Shared fixtures. The suite runs against real PostgreSQL and Redis (make test starts them)."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user_client(db: None) -> Client:
    """A client logged in as a fresh user (``client.user``)."""
    client = Client()
    user = UserFactory()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client
