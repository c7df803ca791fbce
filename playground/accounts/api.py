"""The accounts' part of the JSON API (a django-ninja ``Router``, mounted by ``playground/api.py``):
the CSRF token that a client sending cookies needs for its POSTs. A client with a personal API
token needs none: the token itself is read by the middleware of ``accounts/tokens.py``, before
any router. A file of its own because the routers of the other apps own their endpoints, and
this one is about who the requester is."""

from __future__ import annotations

from django.http import HttpRequest
from django.middleware.csrf import get_token
from ninja import Router, Schema

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
