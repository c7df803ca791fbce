"""Runs where a model emulates the program: the real embedded model end to end, and the
failures a user must see clearly (a model server answering 500, an unknown model, cancel)."""

from __future__ import annotations

import html
import json
import threading
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.llm.registry import ModelSpec
from playground.runs.models import Run
from playground.runs.tasks import execute_emulation
from tests.factories import ProgramFactory
from tests.llm.fake_server import chunk, fake_server, streaming

SOURCE = "def f(a, b):\n    return a + b\n"


def _register(monkeypatch: pytest.MonkeyPatch, model: ModelSpec, label: str) -> None:
    monkeypatch.setenv(
        "PLAYGROUND_MODELS",
        json.dumps(
            [{"name": model.name, "base_url": model.base_url, "model": model.model, "label": label}]
        ),
    )


@pytest.mark.slow
@pytest.mark.django_db
def test_the_embedded_model_predicts_and_gets_a_verdict(
    client: Client, run_now: Any, embedded_llm: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, embedded_llm, "SmolLM2 demo")
    program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
    run_now(client, program.pk, method="direct", model=embedded_llm.name)
    run = Run.objects.get()
    assert run.status == Run.Status.DONE, run.error
    assert run.emulated_text.strip()
    assert run.completion_tokens
    assert run.verdict["status"] in {"correct", "wrong", "unparsable"}
    assert run.real_trace is not None
    assert run.real_trace.data["result"] == "5"
    page = html.unescape(client.get(run.get_absolute_url()).content.decode())
    assert "SmolLM2 demo" in page
    assert 'id="verdict"' in page
    body = client.get(reverse("runs:trace_json", args=[run.pk])).json()
    assert body["emulation"]["text"] == run.emulated_text
    assert body["emulation"]["verdict"]["status"] == run.verdict["status"]


@pytest.mark.django_db
def test_a_model_answering_the_right_value_is_judged_correct(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = [
        chunk("[ANSWER]\nassert f(2, 3) == "),
        chunk("5\n[/ANSWER]", "stop"),
        b"data: [DONE]\n\n",
    ]
    with fake_server(streaming(answer)) as (model, _):
        _register(monkeypatch, model, "Scripted")
        program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
        run_now(client, program.pk, method="cot", model="fake")
    run = Run.objects.get()
    assert run.status == Run.Status.DONE
    assert run.prediction == "5"
    assert run.verdict == {
        "status": "correct",
        "explanation": "Predicted 5, and the call returns 5.",
        "leakage": False,
    }


@pytest.mark.django_db
def test_a_failing_model_server_fails_the_run_with_its_reason(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(handler: Any) -> None:
        handler.send_response(500)
        handler.end_headers()
        handler.wfile.write(b"upstream exploded")

    with fake_server(script) as (model, _):
        _register(monkeypatch, model, "Broken")
        program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
        run_now(client, program.pk, method="direct", model="fake")
    run = Run.objects.get()
    assert run.status == Run.Status.FAILED
    assert run.error == (  # the server's words are logged, not shown (tests/llm: L3)
        "The model could not answer: The model server for Broken returned an error (HTTP 500)."
    )
    assert run.error in html.unescape(client.get(run.get_absolute_url()).content.decode())
    assert client.get(reverse("runs:trace_json", args=[run.pk])).json()["error"] == run.error


@pytest.mark.django_db
def test_an_unknown_model_is_refused(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_MODELS", "[]")
    program = ProgramFactory(is_public=True)
    response = client.post(
        reverse("runs:start", args=[program.pk]), {"method": "direct", "model": "gpt-9"}
    )
    assert response.status_code == 404
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_cancel_closes_the_models_stream(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [chunk(f"step {i}. ") for i in range(400)]
    with fake_server(streaming(parts, delay=0.02)) as (model, seen):
        _register(monkeypatch, model, "Slow")
        program = ProgramFactory(source=SOURCE, call="f(2, 3)", is_public=True)
        client.post(reverse("runs:start", args=[program.pk]), {"method": "direct", "model": "fake"})
        run = Run.objects.get()
        worker = threading.Thread(target=execute_emulation.run, args=[run.pk])
        worker.start()
        deadline = time.monotonic() + 10
        while not Run.objects.get(pk=run.pk).emulated_text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.post(reverse("runs:cancel", args=[run.pk])).status_code == 302
        worker.join(10)
        assert not worker.is_alive()
        deadline = time.monotonic() + 3
        while not seen["broken"] and time.monotonic() < deadline:
            time.sleep(0.05)
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED
    assert seen["broken"] == 1  # the server noticed: it stopped generating
    assert len(run.emulated_text.split(".")) < 200
