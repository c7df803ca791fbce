"""Ids on every log record: the request's (``request_id``), and in a Celery task the task's
(``task_id``) and that of the row it works on (``run_id``, ``submission_id``, ...).

The ids live in a context variable, so everything a request or a task does in its own thread
or asyncio task carries them without passing them around; ``IdsFilter`` (on the console
handler, settings.LOGGING) copies them onto each record, and the JSON format
(``PLAYGROUND_LOG_FORMAT=json``) writes them as fields. A task sent while serving a request or
another task carries the sender's ids in its message's headers, so one id can be followed from
the click to the worker.

A client may send its own ``X-Request-ID`` (a proxy in front usually does): it is kept only when
it is a short token of safe characters, so no one writes newlines or megabytes into the logs.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

HEADER = "X-Request-ID"
# Room for a UUID, nginx's $request_id, an AWS trace header (Root=1-...); nothing that can
# break a line or a JSON value.
_SANE = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")

# Never changed in place: each binding sets a new mapping, which the reset puts back.
_ids: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "log_ids", default=MappingProxyType({})
)


def current() -> Mapping[str, str]:
    """The ids bound in this context."""
    return _ids.get()


@contextmanager
def bound(**ids: str) -> Iterator[None]:
    """Add ``ids`` to every record logged inside the block (and to tasks sent from it)."""
    token = _ids.set({**_ids.get(), **ids})
    try:
        yield
    finally:
        _ids.reset(token)


def without_ids() -> contextvars.Context:
    """A copy of this context with no ids, for a task that serves many requests (a run's room
    that every viewer shares) and so belongs to none of them."""
    context = contextvars.copy_context()
    context.run(_ids.set, {})
    return context


def sane(value: object) -> str | None:
    """``value`` if it may be written into a log as an id, else None."""
    return value if isinstance(value, str) and _SANE.fullmatch(value) else None


def request_id_from(header: str | None) -> str:
    """The client's (or proxy's) id when it is a sane token, else a new one."""
    return sane(header) or uuid.uuid4().hex


class IdsFilter(logging.Filter):
    """Copies the ids of the current context onto each record (it drops nothing)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = dict(_ids.get())
        if "request_id" not in ids:
            # Django logs a 4xx answer ("Not Found: /x") after the middleware has returned,
            # outside the context; the record holds the request, which the middleware marked.
            request_id = getattr(getattr(record, "request", None), "request_id", None)
            if isinstance(request_id, str):
                ids["request_id"] = request_id
        for name, value in ids.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object a line: time, level, logger, message, the ids and any ``extra``."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601 in UTC, which collectors read without being told a format
        # Not the request object Django attaches to its records (its repr), nor the arguments
        # and result Celery attaches to a task's (a user's program, a trace), which the plain
        # format never wrote either.
        reserved_attrs=[*RESERVED_ATTRS, "request", "data"],
    )


class RequestIdMiddleware:
    """Gives each HTTP request its id (``request.request_id``), binds it while the request is
    served (a streamed body included) and answers it in ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        with bound(request_id=request_id):
            response = self.get_response(request)
        response[HEADER] = request_id
        if isinstance(response, StreamingHttpResponse):
            # The body of an event stream is produced after this returns, chunk by chunk.
            if response.is_async:
                response.streaming_content = _abound(response.streaming_content, request_id)
            else:
                response.streaming_content = _bound(response.streaming_content, request_id)
        return response


def _bound(chunks: Any, request_id: str) -> Iterator[Any]:
    iterator = iter(chunks)
    try:
        while True:
            with bound(request_id=request_id):
                chunk = next(iterator, _END)
            if chunk is _END:
                return
            yield chunk
    finally:
        # A client gone mid-stream: the stream's own clean-up (its viewer's lease) runs now.
        close = getattr(iterator, "close", None)
        if close is not None:
            with bound(request_id=request_id):
                close()


async def _abound(chunks: Any, request_id: str) -> AsyncIterator[Any]:
    # Bound around each step only: between steps the generator may be resumed from another
    # context, where resetting a token set in this one would fail.
    iterator = aiter(chunks)
    try:
        while True:
            with bound(request_id=request_id):
                chunk = await anext(iterator, _END)
            if chunk is _END:
                return
            yield chunk
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with bound(request_id=request_id):
                await aclose()


_END = object()

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class WebsocketIds:
    """ASGI middleware of the websockets: each connection gets its request id (from its
    handshake's ``X-Request-ID`` when sane), bound for as long as it is open, in the scope
    (``scope["request_id"]``) and in the handshake's answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        sent = dict(scope.get("headers") or []).get(HEADER.lower().encode(), b"")
        request_id = request_id_from(sent.decode("latin-1"))

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.accept":
                headers = [*message.get("headers", []), (HEADER.encode(), request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        with bound(request_id=request_id):
            await self.app({**scope, "request_id": request_id}, receive, send_with_id)


# Celery. The tasks whose first argument names the row they work on, and the field it is
# logged under (task names never change: they are in queued messages).
SUBJECTS = {
    "playground.runs.tasks.execute_real_run": "run_id",
    "playground.runs.tasks.execute_emulation": "run_id",
    "playground.classroom.tasks.grade_puzzle_submission": "submission_id",
    "playground.benchmarks.tasks.run_evaluation": "evaluation_id",
    "playground.benchmarks.tasks.rescore_evaluation": "evaluation_id",
    "playground.benchmarks.tasks.evaluate_item": "result_id",
}
# The message header that carries the sender's ids (all but its own task id).
TASK_HEADER = "playground_log_ids"
_tokens: dict[str, contextvars.Token[Mapping[str, str]]] = {}


def before_task_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Celery's ``before_task_publish``: the sender's ids go with the message."""
    carried = {name: value for name, value in _ids.get().items() if name != "task_id"}
    if carried and headers is not None:
        headers[TASK_HEADER] = carried


def task_prerun(
    task_id: str = "", task: Any = None, args: Any = (), kwargs: Any = None, **_: Any
) -> None:
    """Celery's ``task_prerun``: bind the sender's ids, the task's and its row's."""
    ids = dict(_ids.get())  # run eagerly, the caller's ids are already here
    carried = getattr(getattr(task, "request", None), TASK_HEADER, None)
    if isinstance(carried, dict):
        ids.update({str(k): v for k, v in carried.items() if sane(k) and sane(v)})
    field = SUBJECTS.get(getattr(task, "name", ""))
    if field is not None:
        subject = args[0] if args else (kwargs or {}).get(field)
        if subject is not None:
            ids[field] = str(subject)
    ids["task_id"] = task_id
    _tokens[task_id] = _ids.set(ids)


def task_postrun(task_id: str = "", **_: Any) -> None:
    """Celery's ``task_postrun``: the next task of this thread starts without them."""
    token = _tokens.pop(task_id, None)
    if token is not None:
        try:
            _ids.reset(token)
        except ValueError:  # set in another context (never in Celery's pools): clear instead
            _ids.set({})


def celery_logging(logger: logging.Logger, json: bool) -> None:
    """Celery's ``after_setup_logger`` / ``after_setup_task_logger``: the worker replaced the
    console handler of settings.LOGGING with its own; give it the ids, and the JSON format."""
    for handler in logger.handlers:
        if not any(isinstance(f, IdsFilter) for f in handler.filters):
            handler.addFilter(IdsFilter())
        if json:
            handler.setFormatter(json_formatter())
