"""The classroom for everyone in a course (being written: each view answers 404 until it is)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse


def my_courses(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def join(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def course(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def assignment(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def item(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def submit(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404
