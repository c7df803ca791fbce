"""A prompt that, with the answer's token limit, cannot fit the model's context is refused before
anything is sent (review M7): counted by the engine's own tokenizer where it has one (llama.cpp
here, vLLM's /tokenize by its contract), else bounded from the bytes; a run fails with a message
that says so, never a hung run or the server's error."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import AnonymousUser

from playground.emulation.base import Item, Session
from playground.emulation.output_prediction import emulate_direct
from playground.llm.client import PromptTooLong, count_tokens, fit_prompt, stream_chat
from playground.llm.registry import ModelSpec
from playground.programs.models import Program
from playground.runs.models import Run
from playground.runs.services import start_run
from tests.llm.fake_server import chunk, fake_server, sse_headers, streaming

# About 24 KB of Python: far over SmolLM2's 2,048 tokens of context.
LONG_PROGRAM = (
    "def f(x):\n"
    + "".join(f"    x = x + {i}  # step {i}\n" for i in range(800))
    + ("    return x\n")
)
# About 3 KB of plain English: more bytes than the context holds, but about 600 tokens.
PROSE = "The quick brown fox jumps over the lazy dog near the river bank. " * 48


def _ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_the_embedded_model_counts_with_its_own_tokenizer(embedded_llm: ModelSpec) -> None:
    """Its registry entry (context 2,048, llama.cpp's tokenizer): a prompt with more bytes than
    the context but few tokens is counted by the server, not refused."""
    assert embedded_llm.context_length == 2048
    assert len(PROSE.encode()) > 2048
    counted = count_tokens(embedded_llm, _ask(PROSE))
    assert counted is not None
    assert 400 < counted < 1200, counted
    assert fit_prompt(embedded_llm, _ask(PROSE), 64) == (counted, 64)
    # An answer limit the prompt leaves no room for is lowered to the room (as the engine
    # would stop there): the trace method's 2,048 tokens on this 2,048-token model.
    assert fit_prompt(embedded_llm, _ask(PROSE), 2048) == (counted, 2048 - counted)


def test_a_prompt_over_the_embedded_models_context_is_refused(embedded_llm: ModelSpec) -> None:
    messages = _ask(f"[PYTHON]\n{LONG_PROGRAM}[/PYTHON]")
    with pytest.raises(PromptTooLong) as refused:
        stream_chat(embedded_llm, messages, max_tokens=64)
    message = str(refused.value)
    assert "too long for this model's context of 2,048 tokens" in message
    assert "the prompt is " in message
    assert "about" not in message
    # The answer's room counts too: a prompt that fits alone but leaves under 256 tokens.
    near = _ask(PROSE * 3)
    counted = count_tokens(embedded_llm, near)
    assert counted is not None
    assert 2048 - 256 < counted < 2048, counted
    with pytest.raises(
        PromptTooLong, match=r"leaves \d+ for the answer, and it needs at least 256"
    ):
        fit_prompt(embedded_llm, near, 512)
    assert fit_prompt(embedded_llm, near, 8) == (counted, 8)


def test_a_run_of_a_long_program_fails_with_the_reason(
    db: None,
    eager: None,
    embedded_llm: ModelSpec,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """The registry's own entry for the embedded model (no PLAYGROUND_MODELS): the run ends
    failed with the reason, its real run still done."""
    monkeypatch.delenv("PLAYGROUND_MODELS", raising=False)
    monkeypatch.delenv("PLAYGROUND_MODELS_FILE", raising=False)
    monkeypatch.setenv("PLAYGROUND_LLM_PORT", str(urlsplit(embedded_llm.base_url).port))
    program = Program.objects.create(title="long", source=LONG_PROGRAM, call="f(1)")
    with django_capture_on_commit_callbacks(execute=True):
        run = start_run(
            program=program,
            user=AnonymousUser(),
            anon_token="context-test",
            method="direct",
            model=embedded_llm.name,
            max_tokens=64,
        )
    run = Run.objects.get(pk=run.pk)
    assert run.status == Run.Status.FAILED
    assert "too long for this model's context of 2,048 tokens" in run.error
    assert run.model_calls == 0
    assert run.real_trace is not None
    assert run.real_trace.data["result"] == str(1 + sum(range(800)))


def test_without_a_tokenizer_the_bytes_bound_refuses_and_nothing_is_sent() -> None:
    with fake_server(streaming([chunk("4", finish="stop"), b"data: [DONE]\n\n"])) as (model, seen):
        small = replace(model, context_length=2048)
        session = Session(small)
        with pytest.raises(PromptTooLong) as refused:
            emulate_direct(Item(kind="program", source=LONG_PROGRAM, call="f(1)"), session)
        assert seen["requests"] == 0
        assert "the prompt is about" in str(refused.value)
        assert session.refused is refused.value
        # A short program goes through.
        reply = session.chat(_ask("def f(): return 4"), max_tokens=16)
    assert reply.text == "4"
    assert seen["requests"] == 1


def test_vllm_is_asked_through_its_tokenize_endpoint() -> None:
    """vLLM's contract: POST /tokenize beside /v1, with the messages; it applies the template."""
    asked: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append((self.path, body))
            if self.path == "/tokenize":
                data = json.dumps({"count": 5000, "max_model_len": 4096}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)
            else:
                sse_headers(self)
                self.wfile.write(chunk("ok", finish="stop") + b"data: [DONE]\n\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        model = ModelSpec(
            name="v", base_url=base, model="coder", label="v", tokenizer="vllm", api_key="k"
        )
        with pytest.raises(PromptTooLong, match="the prompt is 5,000 tokens"):
            stream_chat(model, _ask("x" * 5000), max_tokens=100)
    finally:
        server.shutdown()
        server.server_close()
    assert [path for path, _ in asked] == ["/tokenize"]
    assert asked[0][1] == {
        "model": "coder",
        "messages": _ask("x" * 5000),
        "add_generation_prompt": True,
    }
