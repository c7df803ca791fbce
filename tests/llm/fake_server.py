"""A scripted OpenAI-compatible server, only for the failures a real one cannot produce on demand
(a truncated stream, HTTP 500, a stall, invalid UTF-8, garbage)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playground.llm.registry import ModelSpec

Script = Callable[[BaseHTTPRequestHandler], None]


def chunk(text: str, finish: str | None = None) -> bytes:
    body = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def sse_headers(handler: BaseHTTPRequestHandler, status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()


def streaming(parts: list[bytes], delay: float = 0.0) -> Script:
    def script(handler: BaseHTTPRequestHandler) -> None:
        sse_headers(handler)
        for part in parts:
            handler.wfile.write(part)
            handler.wfile.flush()
            time.sleep(delay)

    return script


@contextmanager
def fake_server(script: Script) -> Iterator[tuple[ModelSpec, dict[str, int]]]:
    """A server on a free port that answers every POST with ``script``; yields a model spec
    for it and counters (requests seen, connections the client closed early)."""
    seen = {"requests": 0, "broken": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen["requests"] += 1
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                script(self)
            except (BrokenPipeError, ConnectionResetError):
                seen["broken"] += 1

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    model = ModelSpec(
        name="fake", base_url=f"http://127.0.0.1:{port}/v1", model="fake", label="Fake model"
    )
    try:
        yield model, seen
    finally:
        server.shutdown()
        server.server_close()
