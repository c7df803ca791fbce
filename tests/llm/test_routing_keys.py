"""Which routing key a run's model calls carry: the user's (opaque) for most methods, the plan's
for both calls of Think-and-Execute, so that a router keeps them on the replica that has their
prefix cached; never the user's id or an anonymous visitor's token itself."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from django.test import Client

from playground.emulation.tae import plan_digest
from playground.llm.registry import ModelSpec
from playground.llm.replicas import routing_key
from playground.runs.emulation_items import item_for_run
from playground.runs.models import Run
from tests.factories import ProgramFactory, UserFactory
from tests.llm.fake_server import chunk, fake_server, sse_headers

pytestmark = pytest.mark.django_db
SOURCE = "def f(a, b):\n    return a + b\n"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModelSpec, list[str | None]]]:
    """The only configured model, a server that records each call's X-Session-ID."""
    keys: list[str | None] = []
    lock = threading.Lock()

    def script(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            keys.append(handler.headers.get("X-Session-ID"))
        sse_headers(handler)
        handler.wfile.write(chunk("[ANSWER]5[/ANSWER]", finish="stop") + b"data: [DONE]\n\n")

    with fake_server(script) as (model, _):
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield model, keys


def test_a_users_runs_carry_an_opaque_key_of_the_user(
    client: Client, run_now: Any, served: tuple[ModelSpec, list[str | None]]
) -> None:
    model, keys = served
    user = UserFactory()
    client.force_login(user)
    program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
    run_now(client, program.pk, method="direct", model=model.name)
    run_now(client, program.pk, method="cot", model=model.name)
    assert keys == [routing_key("user", user.pk)] * 2
    assert str(user.pk) != keys[0]


def test_an_anonymous_visitors_token_is_not_sent(
    client: Client, run_now: Any, served: tuple[ModelSpec, list[str | None]]
) -> None:
    model, keys = served
    program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
    run_now(client, program.pk, method="direct", model=model.name)
    run = Run.objects.get()
    assert run.anon_owner  # the visitor's claim on the run: a secret, never sent
    assert keys == [routing_key("anon", run.anon_owner)]
    assert run.anon_owner not in keys[0]


def test_think_and_execute_calls_carry_the_plans_key(
    client: Client, run_now: Any, served: tuple[ModelSpec, list[str | None]]
) -> None:
    model, keys = served
    client.force_login(UserFactory())
    program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
    run_now(client, program.pk, method="tae", model=model.name)
    run = Run.objects.get()
    plan = routing_key("plan", plan_digest(item_for_run(run), model))
    assert keys == [plan, plan]  # Think and Execute meet the same replica
    # Another user's run of the same program shares the plan, and so the replica.
    client.force_login(UserFactory())
    run_now(client, program.pk, method="tae", model=model.name)
    assert set(keys) == {plan}
