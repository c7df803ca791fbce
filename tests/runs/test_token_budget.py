"""Per-user and per-address budgets of model tokens (review M7), counted in Redis: a requester
over budget is refused at the start of a run (429 with Retry-After, pages and API), and a run
that reaches it stops before its next model call with a message that says so."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from playground.lib import ratelimits
from playground.programs.models import Program
from playground.runs.models import Run
from playground.runs.services import start_run
from tests.factories import ProgramFactory, UserFactory
from tests.oracle import Oracle, oracle_server

BUMP = (
    "def f():\n    total = 0\n    for i in range(30):\n        total = bump(total)\n"
    "    return total\n"
)


def _fresh_budget(name: str, key: str) -> None:
    """Counters outlive a test database (user ids repeat): start this one from zero."""
    ratelimits.spend(name, key, -ratelimits.used(name, key))


def _fresh_ip() -> str:
    return "10." + ".".join(str(random.randint(1, 254)) for _ in range(3))  # noqa: S311


@pytest.fixture
def oracle(db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    knows = Oracle(knowledge=lambda line, v: {"total": int(v["total"]) + 1})
    with oracle_server(knows) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield knows


def test_reservations_hold_the_budget_and_settle_to_what_was_used(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"model_tokens.user": "1000/h"})
    name, key = "model_tokens.user", f"user:{uuid.uuid4().hex}"
    assert ratelimits.budget_name(key) == name
    assert ratelimits.budget_name("ip:10.0.0.1") == "model_tokens.anon"
    counter = ratelimits.reserve(name, key, 600)
    with pytest.raises(ratelimits.Refused) as refused:
        ratelimits.reserve(name, key, 600)
    assert refused.value.message.startswith(
        "Too many language-model tokens used: at most 1,000 an hour, 400 left, and the next "
        "model call could use up to 600."
    )
    assert 1 <= refused.value.retry_after <= 3600
    assert ratelimits.used(name, key) == 600  # the refused reservation took nothing
    ratelimits.settle(counter, 150 - 600)  # the call used 150 of the 600 it reserved
    assert ratelimits.used(name, key) == 150
    ratelimits.reserve(name, key, 850)
    with pytest.raises(ratelimits.Refused):
        ratelimits.reserve(name, key, 1)


def test_a_requester_over_budget_is_refused_at_the_start_pages_and_api(
    db: None, oracle: Oracle, settings: Settings
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table(
        "load-test", {"model_tokens.user": "5000/h", "model_tokens.anon": "2000/h"}
    )
    program = ProgramFactory(is_public=True, source="def f():\n    return 1\n", call="f()")
    user = UserFactory()
    signed_in = Client(REMOTE_ADDR=_fresh_ip())
    signed_in.force_login(user)
    address = _fresh_ip()
    anonymous = Client(REMOTE_ADDR=address)
    _fresh_budget("model_tokens.user", f"user:{user.pk}")
    ratelimits.spend("model_tokens.user", f"user:{user.pk}", 5000)
    ratelimits.spend("model_tokens.anon", f"ip:{address}", 2000)
    for client, most in ((signed_in, "5,000"), (anonymous, "2,000")):
        page = client.post(f"/programs/{program.pk}/run/", {"method": "direct", "model": "oracle"})
        assert page.status_code == 429
        assert f"Too many language-model tokens used: at most {most} an hour" in (
            page.content.decode()
        )
        assert 1 <= int(page["Retry-After"]) <= 3600
        api = client.post(
            "/api/runs",
            {"program_id": program.pk, "method": "direct", "model": "oracle"},
            content_type="application/json",
        )
        assert api.status_code == 429, api.content
        assert api.json()["detail"].startswith("Too many language-model tokens used")
        assert 1 <= int(api["Retry-After"]) <= 3600
        # Running the program for real costs no model tokens: still allowed.
        assert client.post(f"/programs/{program.pk}/run/", {"method": "real"}).status_code == 302
    assert not Run.objects.exclude(method="real").exists()
    # Another account and another address are not touched.
    other = Client(REMOTE_ADDR=_fresh_ip())
    response = other.post(f"/programs/{program.pk}/run/", {"method": "direct", "model": "oracle"})
    assert response.status_code == 302


def test_a_run_that_reaches_the_budget_stops_before_its_next_call(
    db: None,
    eager: None,
    oracle: Oracle,
    settings: Settings,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """Chain of Code with 30 model calls to make and a budget for a few: the run fails with the
    reason after the calls that fitted; the tokens counted never pass the budget."""
    settings.PLAYGROUND_LIMITS = ratelimits.table("load-test", {"model_tokens.user": "3000/h"})
    user = UserFactory()
    _fresh_budget("model_tokens.user", f"user:{user.pk}")
    program = Program.objects.create(title="bump", source=BUMP, call="f()", owner=user)
    client = Client(REMOTE_ADDR=_fresh_ip())
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/programs/{program.pk}/run/", {"method": "coc", "model": "oracle"})
    assert response.status_code == 302
    run = Run.objects.get(owner=user, method="coc")
    assert run.budget_key == f"user:{user.pk}"
    assert run.status == Run.Status.FAILED
    assert run.error.startswith(
        "This run stopped before its next model call. Too many language-model tokens used: "
        "at most 3,000 an hour,"
    )
    assert 2 <= run.model_calls < 30
    assert oracle.seen["lmulator"] == run.model_calls  # the refused call was never sent
    spent = ratelimits.used("model_tokens.user", f"user:{user.pk}")
    # Each call reserved its prompt and its whole answer limit (256) and settled to what it
    # used (the answers stop early, so the prompt is our estimate): the last one refused
    # would have passed the budget; what was counted never did.
    assert (run.completion_tokens or 0) < spent <= 3000
    asked = int(re.search(r"could use up to ([\d,]+)", run.error)[1].replace(",", ""))  # type: ignore[index]
    assert asked > 256
    assert spent + asked > 3000
    # The page shows why.
    assert "stopped before its next model call" in client.get(f"/runs/{run.pk}/").content.decode()


def test_runs_of_staff_evaluations_and_the_command_line_are_not_counted(db: None) -> None:
    """Who a run's tokens count against when no request made it: a signed-in user who is not
    staff (their evaluations, their items' answer keys); nobody for staff and the CLI."""
    program = Program.objects.create(title="p", source="def f():\n    return 1\n", call="f()")
    user, staff = UserFactory(), UserFactory(is_staff=True)
    kwargs: dict[str, Any] = {"program": program, "anon_token": None, "method": "direct"}
    kwargs["enqueue"] = False
    assert start_run(user=user, model="m", **kwargs).budget_key == f"user:{user.pk}"
    assert start_run(user=staff, model="m", **kwargs).budget_key == ""
    assert start_run(user=None, model="m", **kwargs).budget_key == ""
