"""Request hygiene before any view runs, and styled pages for the errors Django answers with an
empty body.

PostgreSQL refuses a NUL character in any text it is given, so a NUL in an address (``?q=%00``,
``/s/%00/``) used to reach a query and end in a 500. It is refused here, once, for every view,
with a page (or, under ``/api/``, JSON) that says what was wrong. A cookie holding a NUL is
dropped instead (the visitor simply has no session), since a visitor cannot easily remove it."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from playground.lib.ratelimits import Refused

NUL = "\x00"
BAD_ADDRESS = (
    "The address contains a NUL character (%00), which no page of this site can use. "
    "Remove it and try again."
)


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def bad_request(request: HttpRequest, message: str) -> HttpResponse:
    """A 400 that says why; it reads no session and no database (templates/400.html)."""
    if _is_api(request):
        return JsonResponse({"detail": message}, status=400)
    return render(request, "400.html", {"message": message}, status=400)


class RefuseNulMiddleware:
    """Refuse a NUL in the path or the query string (400 with the reason); drop a cookie that
    holds one. Placed before the session middleware: the answer needs neither."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for name in [k for k, v in request.COOKIES.items() if NUL in k or NUL in v]:
            del request.COOKIES[name]
        if NUL in request.path_info or NUL in request.path or self._query_has_nul(request):
            return bad_request(request, BAD_ADDRESS)
        return self.get_response(request)

    @staticmethod
    def _query_has_nul(request: HttpRequest) -> bool:
        return any(NUL in key or NUL in "".join(values) for key, values in request.GET.lists())


class MethodNotAllowedPageMiddleware:
    """Django answers a method a view does not take (``GET /evaluations/start/``) with a blank
    405: this one says which methods the address takes, on the site's page (templates/405.html).
    JSON clients keep Django's empty body and its Allow header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.content or _is_api(request):
            return response
        allowed = response.get("Allow", "")
        methods = [m.strip() for m in allowed.split(",") if m.strip()]
        context = {"method": request.method, "allowed": methods, "form_only": methods == ["POST"]}
        page = render(request, "405.html", context, status=405)
        page["Allow"] = allowed
        return page


def too_many(request: HttpRequest, refused: Refused) -> HttpResponse:
    """429 with ``Retry-After`` and the sentence that says which limit and when to come back:
    JSON under ``/api/``, else the site's page (templates/429.html)."""
    if _is_api(request):
        response: HttpResponse = JsonResponse({"detail": refused.message}, status=429)
    else:
        context = {"message": refused.message, "retry_after": refused.retry_after}
        response = render(request, "429.html", context, status=429)
        if getattr(request, "htmx", False):
            # A whole page, not the fragment the element asked for: it replaces the page's
            # body (htmx swaps a 429, see htmx-config in templates/base.html).
            response["HX-Retarget"] = "body"
            response["HX-Reswap"] = "innerHTML"
    return with_refusal(response, refused)


def with_refusal(response: HttpResponse, refused: Refused) -> HttpResponse:
    """Make ``response`` (a form shown again with the refusal in it, what was typed kept) the
    429 that it is, with ``Retry-After``."""
    response.status_code = 429
    response["Retry-After"] = str(refused.retry_after)
    return response


class RateLimitedMiddleware:
    """A view that calls ``ratelimits.hit`` and finds the requester over a limit raises
    ``Refused``; this answers it with :func:`too_many`, the same way for every view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Refused):
            return too_many(request, exception)
        return None
