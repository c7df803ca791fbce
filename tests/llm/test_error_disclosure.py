"""Finding L3: a failing model server's address and words never reach a user. A run whose model
answers HTTP 500 with an internal URL and a secret in its body, or whose server cannot be
reached, fails with a generic message on the run page, in trace.json and in the JSON API; the
detail is in the log for the operator."""

from __future__ import annotations

import html
import json
import socket
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.llm.registry import ModelSpec
from playground.runs.models import Run
from tests.factories import ProgramFactory
from tests.llm.fake_server import fake_server

SOURCE = "def f(a, b):\n    return a + b\n"
# What an upstream error page may carry: an internal address and a credential.
UPSTREAM_BODY = (
    b'{"error": "upstream http://10.0.0.7:8000/internal/v1 refused: '
    b'token=sk-SECRET-upstream-token, see Traceback (most recent call last)"}'
)
LEAKS = ("10.0.0.7", "sk-SECRET", "Traceback", "/internal/v1")


def _register(monkeypatch: pytest.MonkeyPatch, model: ModelSpec) -> None:
    entry = {"name": model.name, "base_url": model.base_url, "model": model.model, "label": "Lab"}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))


def _answers_500(handler: Any) -> None:
    handler.send_response(500)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    handler.wfile.write(UPSTREAM_BODY)


def _what_the_user_sees(client: Client, run: Run) -> str:
    page = html.unescape(client.get(run.get_absolute_url()).content.decode())
    trace = client.get(reverse("runs:trace_json", args=[run.pk])).content.decode()
    api = client.get(f"/api/runs/{run.pk}").content.decode()
    return "\n".join((page, trace, api))


@pytest.mark.django_db
def test_an_upstream_error_body_reaches_the_log_not_the_user(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_server(_answers_500) as (model, _):
        _register(monkeypatch, model)
        program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
        run_now(client, program.pk, method="direct", model=model.name)
    run = Run.objects.get()
    assert run.status == Run.Status.FAILED
    assert run.error == (
        "The model could not answer: The model server for Lab returned an error (HTTP 500)."
    )
    seen = _what_the_user_sees(client, run)
    assert run.error in seen
    for leak in (*LEAKS, model.base_url, "127.0.0.1:"):
        assert leak not in seen, leak
    assert "sk-SECRET-upstream-token" in caplog.text  # the operator still learns why
    assert model.base_url in caplog.text


@pytest.mark.django_db
def test_an_unreachable_server_is_not_named_to_the_user(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    model = ModelSpec(name="down", base_url=f"http://127.0.0.1:{port}/v1", model="m", label="Lab")
    _register(monkeypatch, model)
    program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
    run_now(client, program.pk, method="direct", model=model.name)
    run = Run.objects.get()
    assert run.error == "The model could not answer: The model server for Lab did not answer."
    seen = _what_the_user_sees(client, run)
    assert str(port) not in seen
    assert model.base_url in caplog.text


@pytest.mark.django_db
def test_chain_of_code_steps_carry_no_upstream_words(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chain of Code catches a failed model call inside the program and records why in the
    trace (a step's error), a second path from the exception to the page."""
    source = "def f(w):\n    return is_fruit(w)\n"
    with fake_server(_answers_500) as (model, _):
        _register(monkeypatch, model)
        program = ProgramFactory(source=source, call="f('apple')", is_public=True)
        run_now(client, program.pk, method="coc", model=model.name)
    run = Run.objects.get()
    seen = _what_the_user_sees(client, run)
    for leak in (*LEAKS, model.base_url):
        assert leak not in seen, leak
    assert "returned an error (HTTP 500)" in seen  # the reason is there, in generic words
