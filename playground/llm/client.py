"""One streaming client for every OpenAI-compatible chat server (vLLM, llama.cpp, transformers
serve, hosted APIs).

    with stream_chat(model, messages, max_tokens=256) as stream:
        for text in stream:          # text deltas as the server produces them
            ...
    stream.text, stream.completion_tokens, stream.ttft_s

Timeouts for connecting, for the first token (and any later stall) and in total; a model with
several replicas (``base_urls``) is balanced over those not marked down (``llm/replicas.py``), and
a refused or broken connection or an answer 429/502/503/504 is sent again, to another replica or
after the server's ``Retry-After``, a bounded number of times within the first-token timeout and
only before the answer began (never once a token has arrived); ``routing_key`` travels in the
model's ``routing_header`` for a router's session affinity; ``close()`` (or a set
``cancel`` event) closes the connection so the engine stops generating; ``stop()`` does the same
for an answer the caller has read complete (it then ends normally, ``stopped_early``); at most
``max_concurrency`` streams per model at once across the whole site (a lease each in Redis,
which lapses if its process dies). Every failure is an ``LLMError`` whose
message can be shown to any user: it never holds the server's address nor what the server said
(an internal URL, a stack trace, a prompt echoed back); those go to the log and to ``detail``.

One file of about 500 lines because ``ChatStream`` is one state machine (connect, first token,
stalls, early stop, cancel, usage) whose timeouts and error wording are read together; the
structure review of 2026-12 judged it big but cohesive.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx
import redis
from httpx_sse._decoders import SSEDecoder  # the parser of the well-kept httpx-sse package

from playground.lib import leases, process_metrics
from playground.lib.worktimes import LEASE_S
from playground.llm import replicas
from playground.llm.registry import ModelSpec, chat_url

_MAX_ERROR_BODY = 2000
log = logging.getLogger(__name__)


class LLMError(Exception):
    """A model call failed. ``str(exc)`` is a message for any user, ``detail`` what an operator
    needs (the server's address, its status and words), which is also logged where it is raised."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class ModelUnavailable(LLMError):
    """The server could not be reached."""


class ModelTimeout(LLMError):
    """No first token in time, a stall, or the whole answer took too long."""


class ModelProtocolError(LLMError):
    """The server answered, but not with a valid OpenAI-compatible stream."""


class Cancelled(LLMError):
    """The caller cancelled the stream."""


class Refused(LLMError):
    """The call was not sent: it could not fit the model's context, or the requester's token
    budget is spent. The message says which, for the user; nothing reached the server."""


class PromptTooLong(Refused):
    """The prompt and the answer's token limit together exceed the model's context length."""


_E = TypeVar("_E", bound=LLMError)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    first_token: float = 60.0  # also the longest allowed pause between two chunks
    total: float = 300.0


# Outside the site (a benchmark script with no Django, so no leases: lib/leases.py), the limit
# is this process's own.
_local_slots: dict[str, threading.BoundedSemaphore] = {}
_local_lock = threading.Lock()


class _LocalSlot:
    """A place among the model's streams in this process only (``wait``/``release``, as a
    lease)."""

    def __init__(self, model: ModelSpec) -> None:
        with _local_lock:
            cap = max(1, model.max_concurrency)
            self.semaphore = _local_slots.setdefault(model.name, threading.BoundedSemaphore(cap))
        self.taken = False

    def wait(self, timeout_s: float, cancel: threading.Event | None = None) -> bool:
        self.taken = self.semaphore.acquire(timeout=timeout_s)
        return self.taken

    def release(self) -> None:
        if self.taken:
            self.taken = False
            self.semaphore.release()


class _Retry(Exception):
    """An attempt failed before the answer began, in a way another attempt may not: the error
    to report if none succeeds, and the server's Retry-After, if it gave one."""

    def __init__(self, error: LLMError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def slot_key(model: ModelSpec) -> str:
    """The Redis set of a model's open streams (lib/leases.py): ``max_concurrency`` is a limit
    of the whole site, every worker on every host together, not of one process."""
    return f"{leases.prefix()}:model:{model.name}:streams"


class ChatStream:
    """An open streaming chat completion (use ``stream_chat``)."""

    def __init__(
        self,
        model: ModelSpec,
        payload: dict[str, Any],
        timeouts: Timeouts,
        cancel: threading.Event | None,
        routing_key: str = "",
    ) -> None:
        self.model = model
        self.payload = payload
        self.timeouts = timeouts
        self.cancel = cancel
        self.routing_key = routing_key
        self.text = ""
        self.finish_reason: str | None = None
        self.stopped_early = False  # the caller read a complete answer and ended it there
        self.prompt_tokens: int | None = None
        self.prompt_estimate = 0  # our own count, for budgets where the server reports none
        self.completion_tokens = 0  # content chunks, until the server reports its own count
        self._reported_completion: int | None = None
        self.ttft_s: float | None = None
        self.elapsed_s = 0.0
        self.url = model.base_url  # the replica that answers (the last one asked, on failure)
        self.attempts = 0
        self._response: httpx.Response | None = None
        self._slot: leases.Held | _LocalSlot | None = None  # its place among the model's
        self._balancer: replicas.Balancer | None = None
        self._closed = False

    # -- opening -----------------------------------------------------------------------------
    def open(self) -> ChatStream:
        cap = max(1, self.model.max_concurrency)
        slot: leases.Held | _LocalSlot = (
            leases.Held([slot_key(self.model)], [cap], LEASE_S)
            if leases.configured()
            else _LocalSlot(self.model)
        )
        try:
            free = slot.wait(self.timeouts.total, cancel=self.cancel)
        except redis.RedisError as exc:
            raise self._failure(
                ModelUnavailable,
                f"The model {self.model.label} cannot be asked now: the site could not reserve "
                "a place in its queue.",
                f"Redis: {exc}",
            ) from None
        if not free:
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled("The run was cancelled.")
            raise ModelTimeout(f"The model {self.model.label} is busy: no free slot in time.")
        self._slot = slot
        self._started = time.monotonic()
        self._balancer = replicas.Balancer(
            self.model, slot if isinstance(slot, leases.Held) else None
        )
        try:
            self._response = self._connect()
        except BaseException:
            self.close()
            raise
        return self

    def _connect(self) -> httpx.Response:
        """Send the request to a replica. A refused or broken connection or a "not now" status
        marks that replica down and sends it again, to another replica (or, the only one left,
        after its Retry-After or a backoff): at most ``replicas.max_attempts`` times, and not
        past the first-token timeout. Nothing is sent again once an answer has begun."""
        assert self._balancer is not None
        deadline = self._started + self.timeouts.first_token
        tried: list[str] = []
        error: LLMError | None = None
        for attempt in range(replicas.max_attempts(self.model)):
            replica, wait = self._balancer.choose(self.routing_key, tried, attempt)
            if time.monotonic() + wait > deadline:
                error = error or self._failure(
                    ModelUnavailable,
                    f"The model server for {self.model.label} is busy or unavailable. Try "
                    "again in a minute.",
                    f"every replica is down, the first back in {wait:.1f} s (Retry-After)",
                )
                break
            if wait > 0:
                log.info("model %s: waiting %.2f s for %s", self.model.name, wait, replica.url)
                if self.cancel is not None:
                    if self.cancel.wait(wait):
                        raise Cancelled("The run was cancelled.")
                else:
                    time.sleep(wait)
            self.url = replica.url
            self.attempts += 1
            self._balancer.claim(replica.url)
            try:
                response = self._send(replica.url)
            except _Retry as failed:
                self._balancer.release()
                self._balancer.mark_down(replica.url, failed.retry_after)
                tried.append(replica.url)
                error = failed.error
                continue
            if replica.down_s:  # it was marked down and answers: up again for every process
                self._balancer.mark_up(replica.url)
            return response
        assert error is not None
        raise error

    def _send(self, url: str) -> httpx.Response:
        """One attempt at ``url``: the response, once it streams; ``_Retry`` for a failure that
        another attempt may not meet; an LLMError for any other."""
        headers = {"Accept": "text/event-stream"}
        if self.model.api_key:
            headers["Authorization"] = f"Bearer {self.model.api_key}"
        if self.routing_key and self.model.routing_header:
            headers[self.model.routing_header] = self.routing_key
        client = replicas.http_client()
        request = client.build_request(
            "POST",
            chat_url(url),
            json=self.payload,
            headers=headers,
            timeout=httpx.Timeout(
                connect=self.timeouts.connect,
                read=self.timeouts.first_token,
                write=self.timeouts.connect,
                pool=self.timeouts.connect,
            ),
        )
        try:
            response = client.send(request, stream=True)
        except httpx.ConnectError as exc:
            raise _Retry(
                self._failure(
                    ModelUnavailable,
                    f"The model server for {self.model.label} did not answer.",
                    f"cannot connect ({exc.__class__.__name__}: {exc})",
                )
            ) from None
        except httpx.ConnectTimeout:
            raise _Retry(
                self._failure(
                    ModelUnavailable,
                    f"The model server for {self.model.label} did not accept a connection "
                    f"within {self.timeouts.connect:g} s.",
                    "connect timeout",
                )
            ) from None
        except httpx.ReadTimeout:
            raise self._failure(
                ModelTimeout,
                f"The model server for {self.model.label} sent no answer within "
                f"{self.timeouts.first_token:g} s.",
                "no response headers in time",
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            # Closed before the answer's headers (a server that died, a stale keep-alive
            # connection): nothing was generated, so it may be sent again.
            raise _Retry(
                self._failure(
                    ModelUnavailable,
                    f"The model server for {self.model.label} closed the connection before "
                    "answering.",
                    f"connection closed before the response ({exc.__class__.__name__}: {exc})",
                )
            ) from None
        if response.status_code != 200:
            body = response.read()[:_MAX_ERROR_BODY].decode("utf-8", "replace")
            response.close()
            status = response.status_code
            detail = f"HTTP {status}: {_summary(body)}"
            if status in replicas.RETRY_STATUSES:
                wait = replicas.retry_after_s(response.headers.get("retry-after"))
                if wait is not None:
                    detail += f" (Retry-After {wait:g} s)"
                raise _Retry(
                    self._failure(
                        ModelUnavailable,
                        f"The model server for {self.model.label} is busy or unavailable "
                        f"(HTTP {status}). Try again in a minute.",
                        detail,
                    ),
                    wait,
                )
            raise self._failure(
                ModelProtocolError,
                f"The model server for {self.model.label} returned an error (HTTP {status}).",
                detail,
            )
        kind = response.headers.get("content-type", "")
        if "text/event-stream" not in kind:
            response.close()
            raise self._failure(
                ModelProtocolError,
                f"The model server for {self.model.label} did not stream its answer.",
                f"content type {kind[:100]!r} instead of text/event-stream",
            )
        return response

    def _failure(self, kind: type[_E], message: str, detail: str) -> _E:
        """``kind(message)``, a message for anyone; ``detail``, which may hold the server's own
        words, goes to the log with the model's address, for the operator only."""
        log.warning("model %s at %s: %s", self.model.name, self.url, detail)
        return kind(message, detail)

    # -- reading -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        assert self._response is not None, "open() first"
        decoder = SSEDecoder()
        complete = False
        try:
            for line in self._lines():
                event = decoder.decode(line)
                if event is None:
                    continue
                if event.data.strip() == "[DONE]":
                    break
                delta = self._parse(event.data)
                if delta:
                    if self.ttft_s is None:
                        self.ttft_s = time.monotonic() - self._started
                    self.text += delta
                    self.completion_tokens += 1
                    yield delta
                    if self.stopped_early:
                        complete = True
                        return
            if self.finish_reason is None:
                raise ModelProtocolError(
                    "The model server closed the stream before the answer was complete."
                )
            if self._reported_completion is not None:
                self.completion_tokens = self._reported_completion
            complete = True
        finally:
            self.elapsed_s = time.monotonic() - self._started
            self.close()
            process_metrics.model_stream_ended(
                self.model.name, ok=complete, seconds=self.elapsed_s, first_token_s=self.ttft_s,
                tokens=self.completion_tokens,
            )  # fmt: skip

    def _lines(self) -> Iterator[str]:
        assert self._response is not None
        pending = b""
        try:
            for chunk in self._response.iter_raw():
                if self.cancel is not None and self.cancel.is_set():
                    raise Cancelled("The run was cancelled.")
                if time.monotonic() - self._started > self.timeouts.total:
                    raise ModelTimeout(
                        f"The model took longer than {self.timeouts.total:g} s in total."
                    )
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    yield self._decoded(raw)
        except httpx.ReadTimeout:
            what = "first token" if self.ttft_s is None else "next token"
            raise ModelTimeout(
                f"The model server sent no {what} within {self.timeouts.first_token:g} s."
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if self._balancer is not None:  # the replica died mid-answer, most likely
                self._balancer.mark_down(self.url)
            raise self._failure(
                ModelProtocolError,
                "The connection to the model server broke mid-answer.",
                f"connection broke ({exc.__class__.__name__}: {exc})",
            ) from None
        if pending.strip():
            yield self._decoded(pending)
            yield ""

    def _decoded(self, raw: bytes) -> str:
        """One line of the event stream as text; bytes that are not UTF-8 end the answer."""
        try:
            return raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise self._failure(
                ModelProtocolError,
                "The model server sent bytes that are not valid UTF-8.",
                f"invalid UTF-8 in {_summary(repr(raw))}",
            ) from None

    def _parse(self, data: str) -> str:
        try:
            message = json.loads(data)
        except ValueError:
            raise self._failure(
                ModelProtocolError,
                "The model server sent something that is not JSON.",
                f"not JSON: {_summary(data)}",
            ) from None
        if not isinstance(message, dict):
            raise self._failure(
                ModelProtocolError,
                "The model server sent an unexpected message.",
                f"not an object: {_summary(data)}",
            )
        if "error" in message:
            raise self._failure(
                ModelProtocolError,
                "The model server reported an error while answering.",
                f"error in the stream: {_summary(str(message['error']))}",
            )
        usage = message.get("usage")
        if isinstance(usage, dict):  # servers that report usage: trust their token counts
            if isinstance(usage.get("prompt_tokens"), int):
                self.prompt_tokens = usage["prompt_tokens"]
            if isinstance(usage.get("completion_tokens"), int):
                self._reported_completion = usage["completion_tokens"]
        choices = message.get("choices")
        if not isinstance(choices, list) or not choices:
            if isinstance(usage, dict):
                return ""
            raise ModelProtocolError("The model server sent a chunk without choices.")
        choice = choices[0] if isinstance(choices[0], dict) else {}
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if content is not None and not isinstance(content, str):
            raise ModelProtocolError("The model server sent content that is not text.")
        return content or ""

    # -- closing -----------------------------------------------------------------------------
    def stop(self) -> None:
        """End the answer here because it is complete: the connection closes (the engine stops
        generating, as on cancel) and iteration ends normally with finish_reason "stop"."""
        self.stopped_early = True
        if self.finish_reason is None:
            self.finish_reason = "stop"
        self.elapsed_s = time.monotonic() - self._started
        self.close()

    def close(self) -> None:
        """Close the connection (the server stops generating) and free the model's slot."""
        if self._closed:
            return
        self._closed = True
        if self._response is not None:
            # An unread answer's connection is closed, not pooled: the server sees it go.
            self._response.close()
        if self._balancer is not None:
            self._balancer.release()
        if self._slot is not None:
            self._slot.release()
            self._slot = None

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


# Tokens a chat template adds around each message (role markers, separators) and to open the
# answer, where the prompt is counted without the template (llama.cpp, the bytes bound).
_TEMPLATE_TOKENS_PER_MESSAGE = 8
_TEMPLATE_TOKENS = 8
TOKENIZE_TIMEOUT_S = 5.0


def _server_root(model: ModelSpec) -> str:
    """A replica's address without its OpenAI prefix (``/tokenize`` lives beside ``/v1``)."""
    base = replicas.first_up(model).rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _template_overhead(messages: list[dict[str, str]]) -> int:
    return _TEMPLATE_TOKENS + _TEMPLATE_TOKENS_PER_MESSAGE * len(messages)


def prompt_bytes(messages: list[dict[str, str]]) -> int:
    return sum(len(m.get("content", "").encode("utf-8", "surrogatepass")) for m in messages)


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """A prompt's tokens without asking the server: one per two bytes (code and English run
    at three to four bytes a token in the tokenizers we serve, so this over-counts), plus the
    chat template's markers."""
    return -(-prompt_bytes(messages) // 2) + _template_overhead(messages)


def count_tokens(model: ModelSpec, messages: list[dict[str, str]]) -> int | None:
    """The prompt's tokens as the model's own tokenizer counts them (its server's endpoint), or
    None when the model has none or it did not answer (the caller then estimates)."""
    headers = {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}
    try:
        if model.tokenizer == "vllm":
            body: dict[str, Any] = {
                "model": model.model,
                "messages": messages,
                "add_generation_prompt": True,
            }
            response = httpx.post(
                f"{_server_root(model)}/tokenize",
                json=body,
                headers=headers,
                timeout=TOKENIZE_TIMEOUT_S,
            )
            extra = 0  # vLLM applies the chat template itself
        elif model.tokenizer == "llama.cpp":
            text = "\n".join(m.get("content", "") for m in messages)
            response = httpx.post(
                f"{_server_root(model)}/extras/tokenize/count",
                json={"input": text, "model": model.model},
                headers=headers,
                timeout=TOKENIZE_TIMEOUT_S,
            )
            extra = _template_overhead(messages)
        else:
            return None
        response.raise_for_status()
        count = response.json().get("count")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        log.warning("model %s: cannot count tokens (%s); estimating", model.name, exc)
        return None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        log.warning("model %s: the tokenizer answered %r; estimating", model.name, count)
        return None
    return count + extra


# An answer gets at least this many tokens (or all it asked for, when it asked for fewer): with
# less room left by its prompt, the call is refused rather than sent.
MIN_ANSWER_TOKENS = 256


def fit_prompt(
    model: ModelSpec, messages: list[dict[str, str]], max_tokens: int
) -> tuple[int, int]:
    """The prompt's tokens (counted, or estimated) and the answer's token limit: ``max_tokens``,
    lowered to the room the prompt leaves in the model's context (as the engine would end the
    answer there anyway). Raises PromptTooLong, before anything is sent, when that room is
    under MIN_ANSWER_TOKENS (or under ``max_tokens``, if smaller). A prompt whose bytes alone
    fit needs no count (no token is shorter than a byte, so its bytes bound its tokens)."""
    size = prompt_bytes(messages) + _template_overhead(messages)
    if size + max_tokens <= model.context_length:
        return estimate_tokens(messages), max_tokens
    counted = count_tokens(model, messages)
    tokens = counted if counted is not None else estimate_tokens(messages)
    room = model.context_length - tokens
    if room >= max_tokens:
        return tokens, max_tokens
    needed = min(max_tokens, MIN_ANSWER_TOKENS)
    if room < needed:
        how = "" if counted is not None else "about "
        raise PromptTooLong(
            f"The program is too long for this model's context of {model.context_length:,} "
            f"tokens: the prompt is {how}{tokens:,} tokens, which leaves "
            f"{max(room, 0):,} for the answer, and it needs at least {needed:,}. Shorten the "
            "program (or its input), or choose a model with a longer context."
        )
    return tokens, room


def stream_chat(
    model: ModelSpec,
    messages: list[dict[str, str]],
    *,
    max_tokens: int = 512,
    temperature: float = 0.0,
    seed: int | None = None,
    json_schema: dict[str, Any] | None = None,
    strict_schema: bool = True,
    timeouts: Timeouts | None = None,
    cancel: threading.Event | None = None,
    prompt_tokens: int | None = None,
    routing_key: str = "",
) -> ChatStream:
    """Open a streaming chat completion; iterate the result for text deltas. ``max_tokens`` is
    lowered to the room the prompt leaves in the model's context; PromptTooLong is raised,
    before anything is sent, when that room is too small (``fit_prompt``).
    ``strict_schema=False`` leaves out what makes llama-cpp-python honour ``json_schema`` (only
    to measure the old behaviour). ``prompt_tokens``: the caller has already checked the prompt
    and ``max_tokens`` with ``fit_prompt`` and counted this many. ``routing_key``: an opaque key
    shared by calls that should meet the same replica (``replicas.routing_key``)."""
    if prompt_tokens is None:
        prompt_tokens, max_tokens = fit_prompt(model, messages, max_tokens)
    estimate = prompt_tokens
    payload: dict[str, Any] = {
        "model": model.model,
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream_options": {"include_usage": True},
    }
    if seed is not None:
        payload["seed"] = seed
    if json_schema is not None and model.json_schema == "openai":
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": json_schema, "strict": True},
        }
    elif json_schema is not None and model.json_schema == "json_object":
        payload["response_format"] = {"type": "json_object", "schema": json_schema}
        if strict_schema:
            # llama-cpp-python 0.3's server applies its default repeat penalty (1.1) in a way
            # that lets tokens outside the grammar through: the model then leaves the JSON and
            # writes filler up to the token limit. Without the penalty the grammar holds and the
            # answer ends where the JSON value ends (tests/llm/test_embedded_model.py).
            payload["repeat_penalty"] = 1.0
    default = Timeouts(first_token=model.first_token_s, total=model.total_s)
    stream = ChatStream(model, payload, timeouts or default, cancel, routing_key)
    stream.prompt_estimate = estimate
    return stream.open()
