"""The htmx request type and the partial chooser every view uses.

``django_htmx``'s middleware sets ``request.htmx``, which Django's ``HttpRequest`` does not
declare; views that read it take an ``HtmxHttpRequest`` instead of an ignore comment. Its own
file because pages of several apps (programs, classroom) render the same way: the whole page, or
one template partial when htmx asks for it."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request that went through ``django_htmx.middleware.HtmxMiddleware``."""

    htmx: HtmxDetails


def partial_for(request: HtmxHttpRequest, template: str, fragment: str) -> str:
    """The whole page, or only its ``fragment`` partial for an htmx request that targets it."""
    if request.htmx and request.htmx.target == fragment:
        return f"{template}#{fragment}"
    return template
