"""The real embedded model (SmolLM2-135M on llama.cpp's server): streaming, cancel, JSON schema,
and ``manage.py llm check``."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from django.core.management import CommandError, call_command

from playground.llm.client import Cancelled, ChatStream, Timeouts, stream_chat
from playground.llm.embedded import server_argv
from playground.llm.registry import ModelSpec, embedded_model

pytestmark = pytest.mark.slow
PROMPT = [{"role": "user", "content": "Count from one to ten in words."}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelSpec]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    logfile = log.open("wb")  # a file, not a pipe: the server logs a lot and must never block
    proc = subprocess.Popen(
        server_argv(port=port, threads=2),
        stdout=logfile,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    spec = replace(embedded_model(), base_url=f"http://127.0.0.1:{port}/v1")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama.cpp server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{spec.base_url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not come up in 90 s")
    yield spec
    proc.terminate()
    proc.wait(10)
    logfile.close()


def test_tokens_stream_in_and_are_counted(model: ModelSpec) -> None:
    with stream_chat(model, PROMPT, max_tokens=24, timeouts=Timeouts(first_token=30)) as stream:
        deltas = list(stream)
    assert len(deltas) >= 3
    assert "".join(deltas) == stream.text
    assert stream.text.strip()
    assert stream.finish_reason in {"stop", "length"}
    assert 0 < stream.completion_tokens <= 24
    assert stream.ttft_s is not None
    assert stream.ttft_s < 10


def test_cancel_stops_the_answer_and_the_server_carries_on(model: ModelSpec) -> None:
    cancel = threading.Event()
    received: list[str] = []

    def read(stream: ChatStream) -> None:
        for text in stream:
            received.append(text)
            if len(received) == 3:
                cancel.set()

    stream = stream_chat(model, PROMPT, max_tokens=400, cancel=cancel)
    with pytest.raises(Cancelled):
        read(stream)
    assert len(received) < 10
    with stream_chat(model, PROMPT, max_tokens=4) as again:
        assert "".join(again)


def test_json_schema_constrains_the_output(model: ModelSpec) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    messages = [{"role": "user", "content": "What is 2 + 2? Answer in JSON."}]
    with stream_chat(model, messages, max_tokens=40, json_schema=schema) as stream:
        text = "".join(stream)
    assert text.lstrip().startswith("{")
    if stream.finish_reason == "stop":  # a tiny model can run out of tokens mid-object
        assert isinstance(json.loads(text)["answer"], int)


def test_llm_check_reports_up_and_down(model: ModelSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    down = {"name": "down", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    up = {"name": model.name, "base_url": model.base_url, "model": model.model}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([up, down]))
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 model"):
        call_command("llm", "check", "--timeout", "20", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("UP    smollm2-135m")
    assert "first token" in lines[0]
    assert lines[1].startswith("DOWN  down")
    assert "cannot be reached" in lines[1]
