"""The streaming client against scripted failures, each with a message a user can act on."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from playground.llm.client import (
    Cancelled,
    ChatStream,
    ModelProtocolError,
    ModelTimeout,
    ModelUnavailable,
    Timeouts,
    stream_chat,
)
from playground.llm.registry import ModelSpec
from tests.llm.fake_server import chunk, fake_server, sse_headers, streaming

MESSAGES = [{"role": "user", "content": "hi"}]
QUICK = Timeouts(connect=2, first_token=1.0, total=5)


def _collect(model: ModelSpec, timeouts: Timeouts = QUICK) -> str:
    with stream_chat(model, MESSAGES, timeouts=timeouts) as stream:
        return "".join(stream)


def test_a_complete_stream_yields_its_text_and_counts() -> None:
    parts = [chunk("The "), chunk("answer "), chunk("is 4", "stop"), b"data: [DONE]\n\n"]
    with (
        fake_server(streaming(parts)) as (model, _),
        stream_chat(model, MESSAGES, timeouts=QUICK) as stream,
    ):
        deltas = list(stream)
    assert deltas == ["The ", "answer ", "is 4"]
    assert stream.text == "The answer is 4"
    assert stream.completion_tokens == 3
    assert stream.finish_reason == "stop"
    assert stream.ttft_s is not None


def test_http_500_is_reported_to_users_without_the_servers_words(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def script(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(500)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(b'{"error": "CUDA out of memory"}')

    with fake_server(script) as (model, seen), pytest.raises(ModelProtocolError) as exc:
        _collect(model)
    assert str(exc.value) == "The model server for Fake model returned an error (HTTP 500)."
    # The server's words are for the operator: in the exception's detail and in the log.
    assert "CUDA out of memory" in exc.value.detail
    assert "CUDA out of memory" in caplog.text
    assert model.base_url in caplog.text
    assert seen["requests"] == 1  # not retried: only connection errors are


def test_a_truncated_stream_is_an_error_not_an_answer() -> None:
    with (
        fake_server(streaming([chunk("The answ")])) as (model, _),
        pytest.raises(ModelProtocolError) as exc,
    ):
        _collect(model)
    assert "closed the stream before the answer was complete" in str(exc.value)


def test_a_stall_before_the_first_token_times_out() -> None:
    def script(handler: BaseHTTPRequestHandler) -> None:
        sse_headers(handler)
        time.sleep(3)

    t0 = time.monotonic()
    with fake_server(script) as (model, _), pytest.raises(ModelTimeout) as exc:
        _collect(model)
    assert "sent no first token within 1 s" in str(exc.value)
    assert time.monotonic() - t0 < 2.5


def test_invalid_utf8_is_refused() -> None:
    bad = b'data: {"choices": [{"delta": {"content": "\xff\xfe"}, "finish_reason": null}]}\n\n'
    with (
        fake_server(streaming([chunk("ok "), bad])) as (model, _),
        pytest.raises(ModelProtocolError) as exc,
    ):
        _collect(model)
    assert "not valid UTF-8" in str(exc.value)


def test_garbage_instead_of_json_is_refused() -> None:
    with (
        fake_server(streaming([b"data: <html>Bad gateway</html>\n\n"])) as (model, _),
        pytest.raises(ModelProtocolError) as exc,
    ):
        _collect(model)
    assert "not JSON" in str(exc.value)
    assert "Bad gateway" not in str(exc.value)
    assert "Bad gateway" in exc.value.detail


def test_a_server_that_is_down_is_retried_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    model = ModelSpec(
        name="down", base_url=f"http://127.0.0.1:{port}/v1", model="m", label="Down model"
    )
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailable) as exc:
        _collect(model)
    assert str(exc.value) == "The model server for Down model did not answer."
    assert model.base_url in caplog.text  # the address is for the operator only
    assert 0.2 < time.monotonic() - t0 < 5  # three attempts with backoff, then give up


def test_cancel_closes_the_connection_so_the_server_stops() -> None:
    parts = [chunk(f"token{i} ") for i in range(200)]
    cancel = threading.Event()
    received: list[str] = []

    def read_until_cancelled(stream: ChatStream) -> None:
        for text in stream:
            received.append(text)
            if len(received) == 4:
                cancel.set()

    with fake_server(streaming(parts, delay=0.02)) as (model, seen):
        stream = stream_chat(model, MESSAGES, timeouts=QUICK, cancel=cancel)
        with pytest.raises(Cancelled):
            read_until_cancelled(stream)
        deadline = time.monotonic() + 3
        while not seen["broken"] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert seen["broken"] == 1  # the server's next write failed: it stopped generating
    assert len(received) < 10
