"""Request bodies over the size limit are refused before anything reads them.

Django's ASGI handler reads the whole body into a spooled temporary file (on disk past
``FILE_UPLOAD_MAX_MEMORY_SIZE``) before the first middleware runs, and waits for all of it: a
client that announces ten gigabytes and sends a few bytes would hold a request open, and one
that sends them would fill the disk, before any form or the CSRF check could say no. So:

- :class:`BodyLimit` wraps the ASGI application (``playground/asgi.py``). A request whose
  ``Content-Length`` is over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` reaches Django with an empty body
  and never has its body read; a body without ``Content-Length`` (chunked) is counted as it
  arrives and cut at the limit. Either way the request is marked too large.
- :class:`TooLargeMiddleware`, early in ``MIDDLEWARE`` (before the session and CSRF middleware,
  which read the body of a POST), answers a marked request (or, under WSGI, one whose
  ``Content-Length`` is over the limit) with a 413 page that says the limit (JSON under
  ``/api/``).

Every legitimate upload here is far smaller (a program 100 kB, a roster 1 MB)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from playground.lib.params import whole_number

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOO_LARGE = "playground.too_large"  # the scope key that marks a refused body


def limit() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def _over_limit(content_length: str) -> bool:
    """Whether a declared ``Content-Length`` is over the limit (one too long to be read as a
    number is; one that is no number at all is left to the server and Django to refuse)."""
    text = content_length.strip()
    if not (text.isascii() and text.isdigit()):
        return False
    number = whole_number(text)
    return number is None or number > limit()


def _declared_over(scope: Scope) -> bool:
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            return _over_limit(value.decode("latin-1"))
    return False


class BodyLimit:
    """ASGI middleware: no request body past the limit is ever read (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_over(scope):
            scope[TOO_LARGE] = True
            await self.app(scope, _empty_then(receive), send)
            return
        await self.app(scope, _counted(scope, receive, limit()), send)


def _empty_then(receive: Receive) -> Receive:
    """An empty body, then only the client's disconnect (what it still sends is dropped unread
    into nothing: never buffered, never written)."""
    delivered = False

    async def receive_() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message

    return receive_


def _counted(scope: Scope, receive: Receive, cap: int) -> Receive:
    """The body as it comes, until it passes ``cap``: then it ends there, the request is
    marked too large, and the rest is dropped as in :func:`_empty_then`."""
    received = 0
    cut: Receive | None = None

    async def receive_() -> Message:
        nonlocal received, cut
        if cut is not None:
            return await cut()
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                scope[TOO_LARGE] = True
                cut = _empty_then(receive)
                return await cut()
        return message

    return receive_


def too_large_message() -> str:
    megabytes = limit() / (1024 * 1024)
    return (
        f"This request is too large: at most {megabytes:.1f} MB may be sent at once. Nothing "
        "was saved; send a smaller file or less text."
    )


class TooLargeMiddleware:
    """Answer a request whose body is over the limit with a 413, before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        scope = getattr(request, "scope", None)
        marked = bool(scope and scope.get(TOO_LARGE))
        if marked or _over_limit(str(request.META.get("CONTENT_LENGTH") or "")):
            message = too_large_message()
            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return render(request, "413.html", {"message": message}, status=413)
        return self.get_response(request)
