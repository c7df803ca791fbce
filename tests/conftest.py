"""Shared fixtures. The suite runs against real PostgreSQL and Redis (make test starts them)."""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
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
from tests.stack import Stack, serving_stack


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="the long forms of the slow suites (fault, load, container, long browser runs): "
        "`make test-full`; `make test` runs their short forms",
    )


# Fixtures that start the embedded model (a llama.cpp server of about 400 MB, busy on every core
# while it answers): under pytest-xdist (`make test` runs two workers) the tests that use them
# share one worker, so that the model starts once and two models never compete for the cores.
_MODEL_FIXTURES = {"embedded_llm"}
# Costly fixtures of a wider scope that several modules share: their users share one worker, so
# the work is done once (tests/sandbox/conftest.py's 800 plain CRUXEval traces took about 40 s
# on each of the two workers when test_cruxeval.py and test_coc.py ran apart).
_SHARED_FIXTURE_GROUPS = {"cruxeval_plain_traces": "cruxeval-plain-traces"}


# tryfirst: before xdist reads the groups (its hook would otherwise run first).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # `--dist loadgroup`: a module's tests stay together on one worker (its module-scoped
        # fixtures, such as a private site or a browser, start once), and so do the model's.
        fixtures = set(getattr(item, "fixturenames", ()))
        shared = sorted(_SHARED_FIXTURE_GROUPS[f] for f in fixtures & _SHARED_FIXTURE_GROUPS.keys())
        if fixtures & _MODEL_FIXTURES or _uses_the_shared_site(item):
            group = "embedded-model"
        elif shared:
            group = shared[0]
        else:
            group = item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
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


# The whole site (tests/stack.py) takes 10-15 s to start: the modules that need it under no
# settings of their own share one. It starts with the first test that asks for ``stack`` and
# stops after the last one (pytest_runtest_teardown below), not at the end of the session: it
# holds pre-started sandboxes that later suites (tests/sandbox/test_hostile.py's check for
# leftover sandbox processes) must not find, and memory and CPU they should have.
_SHARED_SITE = ExitStack()
_LAST_USER_OF_THE_SHARED_SITE: list[str] = []


def _reads_the_output(stack: Stack) -> None:
    """Keep reading the launcher's output, as `make run`'s terminal does: a site that runs for
    minutes would otherwise fill the pipe and block. (Nobody calls ``wait_for`` on the shared
    site: it is ready when handed out.)"""
    assert stack.proc is not None
    assert stack.proc.stdout is not None
    while stack.proc.poll() is None:
        line = stack.proc.stdout.readline()
        if line:
            stack.output.append(line)
        else:
            time.sleep(0.2)


@pytest.fixture(scope="session")
def mail_dir() -> Iterator[Path]:
    """Where the shared site's mail lands, one file per message (Django's file backend)."""
    with tempfile.TemporaryDirectory(prefix="pgl-mail-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def stack(mail_dir: Path) -> Iterator[Stack]:
    """The whole product, ready (web, the workers, the embedded model), shared by every test
    that asks for it: each test signs up or seeds users and data of its own and counts only
    those. A module that needs the site under other settings (limits, another model), or
    whose data changes what others see (an open assignment hides its program's share links),
    defines its own ``stack`` with ``serving_stack()`` and says why."""
    saved = os.environ.get("PLAYGROUND_EMAIL_URL")
    os.environ["PLAYGROUND_EMAIL_URL"] = f"filemail:///{mail_dir}"  # the launcher inherits it
    try:
        site = _SHARED_SITE.enter_context(serving_stack(model=True))
    finally:
        if saved is None:
            os.environ.pop("PLAYGROUND_EMAIL_URL", None)
        else:
            os.environ["PLAYGROUND_EMAIL_URL"] = saved
    threading.Thread(target=_reads_the_output, args=(site,), daemon=True).start()
    yield site
    _SHARED_SITE.close()


def _uses_the_shared_site(item: pytest.Item) -> bool:
    # The ``stack`` a test gets is the last definition that applies to it: this module's, or
    # its own module's (a private site).
    if not isinstance(item, pytest.Function):
        return False
    definitions = item._fixtureinfo.name2fixturedefs.get("stack", ())
    return bool(definitions) and definitions[-1].func.__module__ == __name__


def pytest_collection_finish(session: pytest.Session) -> None:
    users = [item.nodeid for item in session.items if _uses_the_shared_site(item)]
    _LAST_USER_OF_THE_SHARED_SITE[:] = users[-1:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Stop the shared site once the last test that uses it is torn down."""
    try:
        return (yield)
    finally:
        if [item.nodeid] == _LAST_USER_OF_THE_SHARED_SITE:
            _SHARED_SITE.close()
