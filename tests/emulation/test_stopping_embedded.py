"""The real embedded model (SmolLM2-135M on llama.cpp) through the real path of a run: the trace
method on CRUXEval sample_3 ends with its answer, not at the token limit (the newcomer review of
2026-12 timed it at 87 s and 1,502 tokens, most of them filler after the JSON had closed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from playground.emulation.registry import REGISTRY
from playground.llm.registry import ModelSpec
from playground.programs.library import import_library
from playground.programs.models import Program
from playground.runs.models import Run
from playground.runs.services import start_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_the_trace_method_on_sample_3_stops_with_its_answer(
    eager: None,
    embedded_llm: ModelSpec,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    import_library()
    entry = {"name": embedded_llm.name, "base_url": embedded_llm.base_url, "model": "smollm2"}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([{**entry, "json_schema": "json_object"}]))
    program = Program.objects.get(title="CRUXEval sample_3")
    with django_capture_on_commit_callbacks(execute=True):
        run = start_run(
            program=program,
            user=AnonymousUser(),
            anon_token="stopping-test",
            method="trace",
            model=embedded_llm.name,
            max_tokens=REGISTRY["trace"].max_tokens,  # the run form's default: 2,048
        )
    run = Run.objects.get(pk=run.pk)
    assert run.status == Run.Status.DONE, run.error
    assert run.details["endings"] != ["length"]
    assert run.completion_tokens is not None
    # Timed in docs/BENCHMARKS.md (bench/early_stopping.py); tokens do not depend on the load.
    assert run.completion_tokens < 300, run.emulated_text
    assert "token limit" not in run.verdict.get("explanation", "")
