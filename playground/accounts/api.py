"""The accounts' part of the JSON API (a django-ninja ``Router``, mounted by ``playground/api.py``):
the CSRF token that a client sending cookies needs for its POSTs. A client with a personal API
token needs none: the token itself is read by the middleware of ``accounts/tokens.py``, before
any router. A file of its own because the routers of the other apps own their endpoints, and
this one is about who the requester is."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.middleware.csrf import get_token
from ninja import Router, Schema
from ninja.errors import HttpError

from playground.accounts import tokens
from playground.lib import ratelimits
from playground.privacy.export import export_response
from playground.runs.api import ErrorOut

router = Router()


class CsrfOut(Schema):
    csrf_token: str
    header: str


@router.get("/csrf", response=CsrfOut, summary="The CSRF token for clients that send cookies")
def csrf(request: HttpRequest) -> dict[str, str]:
    """A client that keeps cookies (the session cookie the first run sets) sends this token in
    the ``X-CSRFToken`` header of every POST; the response also sets the ``csrftoken`` cookie.
    Clients with a personal API token need neither."""
    return {"csrf_token": get_token(request), "header": "X-CSRFToken"}


@router.get(
    "/account/export",
    response={200: dict[str, Any], 401: ErrorOut, 429: ErrorOut},
    summary="Everything the site holds about you, as one JSON document",
)
def account_export(request: HttpRequest) -> StreamingHttpResponse:
    """The same file as the account page's "Download my data" (docs/PRIVACY.md), counted
    against the same limit (``exports.user``). A personal API token only: with the session
    cookie alone, another site could spend a signed-in person's exports with a plain GET (an
    image's address), though never read the file; the account page's button is a POST with
    its CSRF token."""
    if not tokens.by_token(request):
        raise HttpError(
            401,
            "Send a personal API token (Authorization: Bearer ...); in a browser, use "
            "'Download my data' on your account page.",
        )
    ratelimits.hit(request, "exports")
    return export_response(request, request.user)
