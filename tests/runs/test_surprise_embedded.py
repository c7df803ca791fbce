"""The embedded model (SmolLM2-135M, llama.cpp in the worker's process with ``logits_all``)
scoring a run's real trace through the task, as a site without vLLM does. Long (a minute or
more on the 2-core machine): ``make test-full``; ``make test`` scores the same engine on a trace
in tests/llm/test_logprobs_backends.py, and the task's plumbing with the oracle in
tests/runs/test_surprise.py."""

from __future__ import annotations

import importlib.util

import pytest
from django.test import Client

from playground.emulation import trace as trace_method
from playground.llm.registry import embedded_model
from playground.runs import surprise
from playground.runs.models import RunSurprise
from tests.factories import UserFactory
from tests.runs.test_surprise import finished_run

pytestmark = [
    pytest.mark.full_only,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"
    ),
]


def test_the_embedded_model_scores_a_runs_real_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAYGROUND_MODELS", raising=False)
    monkeypatch.delenv("PLAYGROUND_MODELS_FILE", raising=False)
    user = UserFactory()
    run = finished_run(user)
    run.model = embedded_model().name
    run.save(update_fields=["model"])
    row, pending = surprise.request(run, send=False)
    assert pending
    assert surprise.score(run.pk) == "done"
    row.refresh_from_db()
    assert row.engine == "llama.cpp (logits_all)"
    called = trace_method.call_steps(run.real_trace.data["steps"])  # type: ignore[union-attr]
    assert [s["i"] for s in row.data["steps"]] == [s["i"] for s in called]
    assert row.tokens > 100
    assert row.mean is not None
    assert 0 < row.mean < 5
    assert all(s["total"] >= 0 for s in row.data["steps"])
    assert row.state == RunSurprise.State.DONE
    client = Client()
    client.force_login(user)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "llama.cpp (logits_all)" in page
    assert page.count('<tr id="surprise-step-') == len(called)
