"""A scripted vLLM-like server for prompt log-probabilities: ``/tokenize`` and ``/v1/completions``
with ``prompt_logprobs``, one token per character (its code point is its id).

It is an oracle that knows the text it will be asked about (``truth``): every character of it
is certain (log-probability 0) except those at ``doubts``, which it gives ``doubt_logprob``.
The prompt (everything up to the chat's end marker) is certain too."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playground.llm.registry import ModelSpec

# Where the chat template ends and the assistant's answer begins.
ASSISTANT = "\x01"


@dataclass
class Script:
    truth: str
    doubts: set[int] = field(default_factory=set)
    doubt_logprob: float = -2.0
    prompt_logprobs: bool = True  # False: an engine that ignores the parameter
    completions: list[int] = field(default_factory=list)  # the prompt length of each request


def _entries(script: Script, ids: list[int]) -> list[Any]:
    text = "".join(map(chr, ids))
    answer_at = text.rfind(ASSISTANT) + 1
    part = text[answer_at:]
    offset = script.truth.find(part) if part else 0
    entries: list[Any] = [None]
    for k in range(1, len(ids)):
        lp = 0.0
        if k >= answer_at and offset >= 0 and offset + k - answer_at in script.doubts:
            lp = script.doubt_logprob
        entries.append({str(ids[k]): {"logprob": lp, "rank": 1, "decoded_token": chr(ids[k])}})
    return entries


@contextmanager
def logprob_server(script: Script, context_length: int = 8192) -> Iterator[ModelSpec]:
    """The server on a free port; yields a spec for it, as vLLM's (``tokenizer: vllm``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if self.path == "/tokenize":
                if "messages" in body:
                    text = "".join(m["content"] + "\n" for m in body["messages"]) + ASSISTANT
                else:
                    text = body["prompt"]
                answer: dict[str, Any] = {"tokens": [ord(c) for c in text]}
            elif self.path == "/v1/completions":
                ids = body["prompt"]
                script.completions.append(len(ids))
                choice: dict[str, Any] = {"index": 0, "text": "x", "finish_reason": "length"}
                if script.prompt_logprobs and body.get("prompt_logprobs") is not None:
                    choice["prompt_logprobs"] = _entries(script, ids)
                answer = {"choices": [choice]}
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield ModelSpec(
            name="oracle",
            base_url=f"http://127.0.0.1:{port}/v1",
            model="oracle",
            label="Oracle model",
            tokenizer="vllm",
            context_length=context_length,
        )
    finally:
        server.shutdown()
        server.server_close()
