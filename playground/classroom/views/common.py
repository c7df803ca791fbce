"""Helpers the classroom's staff pages share: form errors as messages, and this site's address.

Its own file so that every topic module of the views package imports them from one place instead
of writing them again."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest


def form_errors(request: HttpRequest, form: Any) -> None:
    """Each of the form's errors as an error message on the next page."""
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


def base_url(request: HttpRequest) -> str:
    """This site's address as the visitor reached it (for links sent by e-mail)."""
    return request.build_absolute_uri("/").rstrip("/")
