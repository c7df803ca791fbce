"""The verdict a user reads on a run page, a share link and its embed: one headline per status,
"no model call was needed" for Chain of Code runs Python finished alone, the real value beside
the model's, and an explanation of a broken trace that matches the comparison shown under it.
Real sandbox, real Celery task bodies, a scripted model server (the only fake: a model that
writes malformed JSON on demand)."""

from __future__ import annotations

import copy
import html
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground import sandbox
from playground.compare import same_repr
from playground.emulation.literals import same_value
from playground.llm.registry import ModelSpec
from playground.runs.models import Run, Trace
from playground.runs.pipeline import finish_if_complete, save_trace
from playground.sharing.models import ShareLink
from tests.factories import ProgramFactory
from tests.llm.fake_server import chunk, fake_server, streaming

pytestmark = pytest.mark.django_db

SOURCE = "def f(s):\n    t = s + 'q'\n    return t\n"
CALL = "f('ab')"


def _register(monkeypatch: pytest.MonkeyPatch, model: ModelSpec) -> None:
    entry = {"name": model.name, "base_url": model.base_url, "model": model.model, "label": "Fake"}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))


def _text(response: Any) -> str:
    page = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(page).split())


def _usage(completion_tokens: int) -> bytes:
    body = {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": completion_tokens}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _run(client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch, parts: list[bytes],
         method: str, **data: str) -> Run:  # fmt: skip
    with fake_server(streaming([*parts, b"data: [DONE]\n\n"])) as (model, _):
        _register(monkeypatch, model)
        program = ProgramFactory(source=SOURCE, call=CALL, is_public=True)
        run_now(client, program.pk, method=method, model="fake", **data)
    run = Run.objects.get()
    assert run.status == Run.Status.DONE, run.error
    return run


def test_chain_of_code_without_a_model_call_is_not_the_model_being_right(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_server(streaming([])) as (model, seen):
        _register(monkeypatch, model)
        program = ProgramFactory(source=SOURCE, call=CALL, is_public=True)
        run_now(client, program.pk, method="coc", model="fake")
        assert seen["requests"] == 0  # Python ran every line: the model was never asked
    run = Run.objects.get()
    assert run.model_calls == 0
    assert run.verdict["status"] == "no_model"
    page = _text(client.get(run.get_absolute_url()))
    assert "No model call was needed · Python ran every line of this program itself" in page
    assert "got it right" not in page
    # The share link and its embed say the same.
    link = ShareLink.objects.create(run=run)
    for url in (link.get_absolute_url(), reverse("sharing:embed", args=[link.token])):
        shared = _text(Client().get(url))
        assert "No model call was needed" in shared
        assert "got it right" not in shared
    body = client.get(reverse("runs:trace_json", args=[run.pk])).json()
    assert body["emulation"]["verdict"]["status"] == "no_model"


def test_direct_shows_the_real_value_beside_the_prediction(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = [chunk("[ANSWER]\nassert f('ab') == "), chunk("'abz'\n[/ANSWER]", "stop")]
    run = _run(client, run_now, monkeypatch, answer, "direct")
    assert run.verdict["status"] == "wrong"
    page = html.unescape(client.get(run.get_absolute_url()).content.decode())
    values = re.search(r'<dl class="verdict-values" id="verdict-values">(.*?)</dl>', page, re.S)
    assert values is not None
    cells = " ".join(re.sub(r"<[^>]+>", " ", values.group(1)).split())
    assert cells == "The call returns 'abq' The model predicted 'abz'"
    assert "The model got it wrong" in page


def test_a_trace_with_a_malformed_step_says_so_under_an_accurate_headline(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two good steps, a third with an unbalanced quote, then filler the model would write
    # until its token limit if the run did not stop where the JSON broke.
    steps = (
        '{"line": 1, "event": "call", "func": "f", "changed": {"s": "\'ab\'"}}\n'
        '{"line": 2}\n'
        '{"line": 3, "changed": {"t": "\'a\'\'}}\n'
    )
    filler = [chunk("This is a JSON object that describes the trace. ") for _ in range(20)]
    parts = [chunk(steps), *filler, chunk("And", "length"), _usage(2048)]
    run = _run(client, run_now, monkeypatch, parts, "trace")
    assert run.verdict["status"] == "unparsable"
    # The answer was closed where step 3 broke (early stopping): the filler was never read.
    assert run.completion_tokens is not None
    assert run.completion_tokens < run.max_tokens
    assert run.details["endings"] == ["complete"]
    page = _text(client.get(run.get_absolute_url()))
    headline = "The model's trace gives no result · The trace stops before the call returns"
    assert f"{headline}: step 3 is not valid JSON" in page
    assert "No readable answer" not in page  # its readable steps are compared right below
    assert "cut off" not in page
    assert "Step by step against the real run" in page
    assert "token limit" not in page  # the limit had nothing to do with it


def test_a_verdict_stored_with_a_guessed_token_limit_no_longer_guesses(user_client: Client) -> None:
    program = ProgramFactory(source=SOURCE, call=CALL, is_public=True)
    guessed = "The answer stops in the middle of a step (cut off at the token limit?)."

    def run(tokens: int) -> Run:
        return Run.objects.create(
            program=program, source=SOURCE, call=CALL, method="trace", model="m",
            status=Run.Status.DONE, emulation_done=True, max_tokens=2048, model_calls=1,
            completion_tokens=tokens, owner=user_client.user,  # type: ignore[attr-defined]
            verdict={"status": "unparsable", "explanation": guessed, "leakage": False},
        )  # fmt: skip

    page = _text(user_client.get(run(80).get_absolute_url()))
    assert "No readable answer · The answer stops in the middle of a step. " in page
    assert "token limit" not in page
    page = _text(user_client.get(run(2048).get_absolute_url()))
    assert "in the middle of a step (the answer reached its token limit)." in page


def test_a_float_close_but_not_equal_is_wrong_and_the_page_says_close(user_client: Client) -> None:
    """Two equality rules, one page that does not contradict itself: the verdict is exact ==
    (CRUXEval's ``assert f(x) == prediction``), the step comparison lets floats differ by a
    tolerance. Where only the comparison's rule holds, the verdict is wrong and the comparison
    says the result is close, not equal: never "matches" beside "wrong"."""
    source, call = "def f(x):\n    return x + 0.2\n", "f(0.1)"
    assert not same_value(0.3, 0.30000000000000004)
    assert same_repr("0.30000000000000004", "0.3")
    program = ProgramFactory(source=source, call=call, is_public=True)
    real = sandbox.run(source, call=call)
    assert real["result"] == "0.30000000000000004"
    emulated = copy.deepcopy(real)  # every step right, the value written with fewer digits
    emulated.update(source="emulated", method="trace", result="0.3")
    emulated["steps"][-1]["locals"]["__return__"] = "0.3"
    run = Run.objects.create(
        program=program, source=source, call=call, method="trace", model="m",
        status=Run.Status.RUNNING, emulation_done=True, prediction="0.3", model_calls=1,
        owner=user_client.user,  # type: ignore[attr-defined]
    )  # fmt: skip
    save_trace(run.pk, Trace.Kind.REAL, real)
    save_trace(run.pk, Trace.Kind.EMULATED, emulated)
    finish_if_complete(run.pk)
    run.refresh_from_db()
    assert run.verdict["status"] == "wrong"
    assert run.comparison["result_match"] is True
    page = _text(user_client.get(run.get_absolute_url()))
    assert "The model got it wrong" in page
    assert "Result close, not equal" in page
    assert "Result matches" not in page
