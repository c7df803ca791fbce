"""Shared fixtures. The suite runs against real PostgreSQL and Redis (make test starts them)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.celery import app
from playground.llm.embedded import server_argv
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


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests start many runs from 127.0.0.1; the rate limit has a test of its own.
    settings.PLAYGROUND_RUN_RATE_ANON = settings.PLAYGROUND_RUN_RATE_USER = "100000/m"


@pytest.fixture
def user_client(db: None) -> Client:
    """A client logged in as a fresh user (``client.user``)."""
    client = Client()
    user = UserFactory()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def embedded_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelSpec]:
    """The real embedded model (llama.cpp server + SmolLM2-135M) on a free port, for the session."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    logfile = log.open("wb")  # a file, not a pipe: the server logs a lot and must never block
    proc = subprocess.Popen(
        server_argv(port=port, threads=2),
        stdout=logfile,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    spec = replace(embedded_model(), base_url=f"http://127.0.0.1:{port}/v1")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama.cpp server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{spec.base_url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not come up in 90 s")
    yield spec
    proc.terminate()
    proc.wait(10)
    logfile.close()


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
