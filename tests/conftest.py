"""Shared fixtures. The suite runs against real PostgreSQL and Redis (make test starts them)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.celery import app
from playground.lib import ratelimits
from playground.llm.embedded import EmbeddedServerFailed, serving
from playground.llm.registry import ModelSpec, embedded_model
from tests.factories import UserFactory


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="the long forms of the slow suites (fault, load, container, long browser runs): "
        "`make test-full`; `make test` runs their short forms",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full"):
        return
    skip = pytest.mark.skip(reason="long form only: `make test-full` runs it")
    for item in items:
        if "full_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def full(request: pytest.FixtureRequest) -> bool:
    """True under `make test-full`: a slow suite takes its long form (more items, more clients,
    longer runs); under `make test` its short form, which must still test the same thing."""
    return bool(request.config.getoption("--full"))


_COUNTERS = f"rl:{secrets.token_hex(4)}:"


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests start many runs, sign up many users, ... from 127.0.0.1: they run under the load-test
    # profile; each limit has a test of its own (tests/lib/test_ratelimits.py and beside the
    # endpoint), which switches to the public table.
    settings.PLAYGROUND_LIMITS = ratelimits.table("load-test")
    # Counters live in Redis, which outlives a test session, while a fresh test database hands
    # out the same user ids again: each session counts under its own prefix.
    settings.RATELIMIT_CACHE_PREFIX = _COUNTERS


@pytest.fixture
def user_client(db: None) -> Client:
    """A client logged in as a fresh user (``client.user``)."""
    client = Client()
    user = UserFactory()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client


@pytest.fixture(scope="session")
def embedded_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelSpec]:
    """The real embedded model (llama.cpp server + SmolLM2-135M) on a free port, for the session."""
    log = tmp_path_factory.mktemp("llm") / "server.log"
    try:
        with serving(threads=2, log=log) as base_url:
            yield replace(embedded_model(), base_url=base_url)
    except EmbeddedServerFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery tasks run in the calling process, at once (unit tests only)."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def run_now(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Any]:
    """POST to the run button; the tasks queued on commit run before it returns."""

    def post(client: Client, program_id: int, **data: str) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reverse("runs:start", args=[program_id]), data)

    return post
