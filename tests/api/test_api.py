"""The JSON API: models, creating and reading runs, with the pages' access rules and rate limit."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from playground.lib import ratelimits
from playground.programs.models import Program
from playground.runs.models import Run
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db
SOURCE = "def f(xs):\n    return sorted(xs)[-1]\n"


def _post(client: Client, **data: Any) -> Any:
    return client.post("/api/runs", data, content_type="application/json")


def _fresh_ip() -> str:
    """Rate-limit counters live in Redis for a minute: a new address starts from zero."""
    return "10." + ".".join(str(random.randint(1, 254)) for _ in range(3))  # noqa: S311


def test_models_are_listed() -> None:
    body = Client().get("/api/models").json()
    assert body[0]["name"] == "smollm2-135m"
    assert body[0]["embedded"] is True


def test_a_run_of_new_code_is_created_and_read_back_by_its_session(
    eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client(REMOTE_ADDR=_fresh_ip())
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, source=SOURCE, call="f([3, 9, 4])")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["method"] == "real"
    assert created["events_url"] == f"/runs/{created['id']}/events"

    run = client.get(f"/api/runs/{created['id']}").json()
    assert run["status"] == "done"
    assert run["trace"]["result"] == "9"
    assert run["trace"]["schema"] == 3
    assert Client().get(f"/api/runs/{created['id']}").status_code == 404  # another visitor


def test_a_saved_program_must_be_visible_to_the_requester() -> None:
    private = ProgramFactory(is_public=False)
    response = _post(Client(REMOTE_ADDR=_fresh_ip()), program_id=private.pk)
    assert response.status_code == 404
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"source": "def f(:\n"}, "Syntax error on line 1"),
        ({"source": SOURCE, "call": "x = f([1])"}, "not a single Python expression"),
        ({"source": SOURCE, "call": "f([1])", "method": "guess"}, "'guess' does not apply"),
        ({"source": SOURCE, "call": "f([1])", "method": "puzzle"}, "one of real, direct"),
        ({"puzzle": "Study_1:0", "method": "trace"}, "does not apply to a puzzle"),
        (
            {"source": SOURCE, "call": "f([1])", "method": "direct", "model": "gpt-9"},
            "Unknown model 'gpt-9'",
        ),
        ({}, "Give program_id, or source"),
    ],
)
def test_bad_requests_say_what_is_wrong(data: dict[str, Any], message: str) -> None:
    response = _post(Client(REMOTE_ADDR=_fresh_ip()), **data)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert not Run.objects.exists()


def test_a_session_cookie_without_the_csrf_token_is_refused() -> None:
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=_fresh_ip())
    client.force_login(UserFactory())
    response = _post(client, source=SOURCE, call="f([1])")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_starting_runs_is_rate_limited(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"runs.anon": "2/m"})
    client = Client(REMOTE_ADDR=_fresh_ip())
    assert [_post(client, source=SOURCE, call="f([1])").status_code for _ in range(3)] == [
        201,
        201,
        429,
    ]
    refused = _post(client, source=SOURCE, call="f([1])")
    assert refused.json()["detail"].startswith("Too many runs started: at most 2 a minute.")
    assert 1 <= int(refused["Retry-After"]) <= 60
    page_program = ProgramFactory(is_public=True)
    response = client.post(f"/programs/{page_program.pk}/run/")
    assert response.status_code == 429
    assert "Too many runs started" in response.content.decode()
    assert int(response["Retry-After"]) >= 1


def test_the_openapi_schema_describes_the_api() -> None:
    schema = Client().get("/api/openapi.json").json()
    assert {"/api/models", "/api/runs", "/api/runs/{run_id}"} <= set(schema["paths"])
    assert Client().get("/api/docs").status_code == 200


def test_a_puzzle_and_a_task_instance_are_run_through_the_api(
    eager: None, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from playground.programs.library import import_library
    from playground.programs.models import Puzzle, TaskExample
    from tests.oracle import Oracle, oracle_server

    import_library()
    puzzle = Puzzle.objects.get(name="Study_4:0")  # a list of 10 whose 4th item occurs twice
    example = TaskExample.objects.get(task__name="boolean_expressions", index=0)
    oracle = Oracle(solutions={puzzle.sat: "[0, 1, 2, 3, 3, 5, 6, 7, 8, 9]"})
    oracle.targets[example.input] = example.target
    client = Client(REMOTE_ADDR=_fresh_ip())
    with oracle_server(oracle) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        with django_capture_on_commit_callbacks(execute=True):
            solved = _post(client, puzzle=puzzle.name, method="puzzle", model="oracle")
            answered = _post(
                client, task="boolean_expressions", task_index=0, method="tae", model="oracle"
            )
        assert _post(client, puzzle="Nope:0", method="puzzle", model="oracle").status_code == 404
    assert solved.status_code == 201, solved.content
    run = client.get(f"/api/runs/{solved.json()['id']}").json()
    assert run["kind"] == "puzzle"
    assert run["puzzle"] == "Study_4:0"
    assert run["emulation"]["verdict"]["status"] == "correct"
    assert run["trace"]["result"] == "True"  # sat(answer), run in the sandbox
    run = client.get(f"/api/runs/{answered.json()['id']}").json()
    assert run["kind"] == "task"
    assert run["emulation"]["verdict"]["status"] == "correct"
    assert run["emulation"]["details"]["plan"]["pseudocode"]


def test_a_broken_model_configuration_is_not_shown_to_visitors(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Security review L3: the configuration's own words (a file path) go to the log only."""
    monkeypatch.setenv("PLAYGROUND_MODELS_FILE", "/srv/secret-place/models.toml")
    response = client.get("/api/models")
    assert response.status_code == 503
    assert response.json() == {"detail": "The site's model configuration is broken."}
    assert "secret-place" not in response.content.decode()


def test_a_bom_at_the_start_of_the_source_is_accepted_as_cpython_does() -> None:
    response = _post(Client(), source="\ufeffdef f():\n    return 1\n", call="f()")
    assert response.status_code == 201, response.content
    assert Program.objects.get(pk=response.json()["program_id"]).source.startswith("def f")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"puzzle": "Study_1:0\x00", "method": "puzzle", "model": "smollm2-135m"}, "NUL"),
        ({"task": "navigate\x00", "task_index": 0, "method": "coc"}, "NUL"),
        ({"source": SOURCE, "call": "f([1])", "stdin": "a\x00"}, "NUL"),
        ({"source": SOURCE, "call": "f([1])", "stdin": "\ud800"}, "lone surrogate"),
    ],
    ids=["puzzle", "task", "stdin-nul", "stdin-surrogate"],
)
def test_text_no_database_can_store_is_a_422_not_a_500(data: dict[str, Any], message: str) -> None:
    response = _post(Client(REMOTE_ADDR=_fresh_ip()), **data)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert not Run.objects.exists()
